#!/bin/bash
# make install into a temporary DESTDIR installs what README.md lists (its
# "make install" block, parsed), and nothing else: with the defaults and with
# another PREFIX and HOOKS_DIR. The unit and the hooks.d file name the
# programs under PREFIX, the programs are executable, and a second install
# keeps the settings files an admin edited.
set -eu -o pipefail
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for f in build/numafollow build/numafollowd build/numafollow-hook build/numafollow-nri; do
	[ -x "$f" ] || { echo "FAIL: $f is not built (make all)"; exit 1; }
done

# README's list: the indented lines after "`make install` installs", their
# first word, with PREFIX and HOOKS_DIR put in.
listed() {
	awk '/^`make install` installs/ { on = 1; next }
	     on && /^    [^ ]/ { print $1; seen = 1; next }
	     on && seen && !/^    / { exit }' README.md |
		sed -e "s|^PREFIX/|$1/|" -e "s|^HOOKS_DIR/|$2/|" | sort
}

# check ROOT PREFIX HOOKS_DIR [MAKE VARIABLES...]
check() {
	local root=$1 prefix=$2 hooks=$3
	shift 3
	make --no-print-directory -s install DESTDIR="$root" "$@" >"$T/log" 2>&1 ||
		{ cat "$T/log"; echo "FAIL: make install $*"; exit 1; }
	listed "$prefix" "$hooks" >"$T/want"
	[ "$(wc -l <"$T/want")" -ge 7 ] || { echo "FAIL: README.md's list not found"; exit 1; }
	(cd "$root" && find . -type f -printf '/%P\n' | sort) >"$T/got"
	diff -u "$T/want" "$T/got" || { echo "FAIL: installed (+) against README.md (-), $*"; exit 1; }
	for p in bin/numafollow sbin/numafollowd libexec/numafollow/numafollow-hook sbin/numafollow-nri; do
		[ -x "$root$prefix/$p" ] || { echo "FAIL: $prefix/$p is not executable"; exit 1; }
	done
	grep -qx "ExecStart=$prefix/sbin/numafollowd .*" "$root$prefix/lib/systemd/system/numafollowd.service" ||
		{ echo "FAIL: the unit does not start $prefix/sbin/numafollowd"; exit 1; }
	grep -qx "ExecStart=$prefix/sbin/numafollow-nri .*" "$root$prefix/lib/systemd/system/numafollow-nri.service" ||
		{ echo "FAIL: the NRI unit does not start $prefix/sbin/numafollow-nri"; exit 1; }
	[ "$(jq -r .hook.path "$root$hooks/50-numafollow.json")" = "$prefix/libexec/numafollow/numafollow-hook" ] ||
		{ echo "FAIL: the hooks.d file does not run $prefix/libexec/numafollow/numafollow-hook"; exit 1; }
	echo "-- make install $*: the $(wc -l <"$T/got") files README.md lists"
}

check "$T/a" /usr/local /usr/share/containers/oci/hooks.d
check "$T/b" /opt/nf /etc/containers/oci/hooks.d PREFIX=/opt/nf HOOKS_DIR=/etc/containers/oci/hooks.d

# Settings an admin edited survive a second install.
echo "workers = 7" >>"$T/b/etc/numafollow/numafollowd.conf"
echo "strict = true" >>"$T/b/etc/numafollow/hook.conf"
check "$T/b" /opt/nf /etc/containers/oci/hooks.d PREFIX=/opt/nf HOOKS_DIR=/etc/containers/oci/hooks.d
grep -qx "workers = 7" "$T/b/etc/numafollow/numafollowd.conf" &&
	grep -qx "strict = true" "$T/b/etc/numafollow/hook.conf" ||
	{ echo "FAIL: a second install overwrote the settings"; exit 1; }
echo "-- a second install kept the edited settings"
echo PASS
