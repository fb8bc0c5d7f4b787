#!/bin/bash
# make deb's package (build/numafollow_VERSION_amd64.deb): lintian reports no
# errors (its tags are printed); the package holds what make install installs
# with PREFIX=/usr (README.md's list, parsed as tests/host/t-install.sh does;
# the units in /lib/systemd/system, where bookworm's debhelper wants them, the
# man pages compressed) and its documentation; the settings are conffiles; the
# version is the programs'; the unit and the hooks.d file name the installed
# programs; the agent's unit is enabled at install, the NRI plugin's is not.
set -eu -o pipefail
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

[ -x build/numafollow ] || fail "build/numafollow is not built (make)"
ver=$(build/numafollow --version | awk '{ print $2 }')
deb=build/numafollow_${ver}_$(dpkg --print-architecture).deb
if [ ! -e "$deb" ]; then
	command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null ||
		{ echo "dpkg-buildpackage or debhelper not installed: no package (make deb)"; exit 77; }
	fail "$deb is not built (make deb; make check builds it when t-deb is in TESTS)"
fi
command -v lintian >/dev/null || { echo "lintian not installed (deploy/install-deps.sh --tests)"; exit 77; }

# lintian: no error; the rest is shown
rc=0
lintian --allow-root --info --display-info --pedantic "$deb" >"$T/lintian" 2>&1 || rc=$?
grep -E '^[EWIPX]: ' "$T/lintian" || true
e=$(grep -c '^E: ' "$T/lintian" || true)
echo "-- lintian $(lintian --version | awk '{ print $2 }'): $e errors, $(grep -c '^W: ' "$T/lintian" || true) warnings, $(grep -c '^[IP]: ' "$T/lintian" || true) info and pedantic"
[ "$rc" = 0 ] && [ "$e" = 0 ] || { cat "$T/lintian"; fail "lintian (exit $rc)"; }

# the files: README.md's make install list with PREFIX=/usr
awk '/^`make install` installs/ { on = 1; next }
     on && /^    [^ ]/ { print $1; seen = 1; next }
     on && seen && !/^    / { exit }' README.md |
	sed -e 's|^PREFIX/lib/systemd/|/lib/systemd/|' -e 's|^PREFIX/|/usr/|' \
		-e 's|^HOOKS_DIR/|/usr/share/containers/oci/hooks.d/|' -e 's|/share/man/.*|&.gz|' |
	sort >"$T/want"
[ "$(wc -l <"$T/want")" -ge 7 ] || fail "README.md's list not found"
dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$' | sed 's|^\.||' >"$T/all"
grep -v '^/usr/share/doc/numafollow/' "$T/all" | sort >"$T/got"
diff -u "$T/want" "$T/got" || fail "the package's files (+) against README.md's list (-)"
grep -qx /usr/share/doc/numafollow/copyright "$T/all" || fail "no copyright file"
echo "-- the $(wc -l <"$T/got") files README.md lists, and the documentation"

expect() { [ "$2" = "$3" ] || fail "$1: '$2', want '$3'"; echo "-- $1: $2"; }
expect Version "$(dpkg-deb -f "$deb" Version)" "$ver"
expect conffiles "$(dpkg-deb -I "$deb" conffiles | sort | tr '\n' ' ')" \
	"/etc/numafollow/hook.conf /etc/numafollow/numafollowd.conf "
dpkg-deb -x "$deb" "$T/root"
expect "numafollowd.service ExecStart" \
	"$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$T/root/lib/systemd/system/numafollowd.service")" /usr/sbin/numafollowd
expect "numafollow-nri.service ExecStart" \
	"$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$T/root/lib/systemd/system/numafollow-nri.service")" /usr/sbin/numafollow-nri
expect "hooks.d hook.path" "$(jq -r .hook.path "$T/root/usr/share/containers/oci/hooks.d/50-numafollow.json")" \
	/usr/libexec/numafollow/numafollow-hook
dpkg-deb -e "$deb" "$T/ctl"
grep -q "deb-systemd-helper enable 'numafollowd.service'" "$T/ctl/postinst" ||
	fail "postinst does not enable numafollowd.service"
grep -q "deb-systemd-invoke \$_dh_action 'numafollowd.service'" "$T/ctl/postinst" ||
	fail "postinst does not start numafollowd.service"
# debhelper's --no-enable snippet: enable only what the admin had enabled
grep -q "deb-systemd-helper debian-installed 'numafollow-nri.service'" "$T/ctl/postinst" &&
	! grep -q "deb-systemd-helper debian-installed 'numafollowd.service'" "$T/ctl/postinst" ||
	fail "postinst: numafollow-nri.service should be installed disabled, numafollowd.service enabled"
grep -q "deb-systemd-invoke stop 'numafollow-nri.service'" "$T/ctl/prerm" ||
	fail "prerm does not stop numafollow-nri.service"
echo "-- maintainer scripts: numafollowd enabled and started; numafollow-nri disabled (deb-systemd-invoke then starts it not), stopped at removal"
echo PASS
