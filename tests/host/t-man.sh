#!/bin/bash
# The man pages (docs/man/*.scd, built by make into build/man): each lints
# clean with mandoc and groff, and each program's --help and its page name the
# same long options, both ways (an option --help prints is in the page; one the
# page's OPTIONS describe is in --help), so the two stay in step. The settings
# in the shipped deploy/numafollowd.conf and deploy/hook.conf are in
# numafollowd.conf(5).
set -eu -o pipefail
command -v mandoc >/dev/null || { echo "mandoc not installed (deploy/install-deps.sh --tests)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

pages="numafollow.8 numafollowd.8 numafollow-hook.8 numafollow-nri.8 numafollowd.conf.5"
for p in $pages; do
	[ -s "build/man/$p" ] || fail "build/man/$p is not built (make)"
done

# Lint. scdoc writes a .P before and after each .SH, which mandoc reports as
# "skipping paragraph macro" and drops: no effect on the page. Style notes
# (mandoc's STYLE level, below -W warning) are not counted.
for p in $pages; do
	mandoc -T lint -W warning "build/man/$p" 2>&1 | grep -v 'skipping paragraph macro' >"$T/lint" || true
	[ ! -s "$T/lint" ] || { cat "$T/lint"; fail "mandoc -T lint: $p"; }
	if command -v groff >/dev/null; then
		groff -man -ww -z "build/man/$p" >"$T/lint" 2>&1 || true
		[ ! -s "$T/lint" ] || { cat "$T/lint"; fail "groff -ww: $p"; }
	fi
	echo "-- $p: mandoc -T lint$(command -v groff >/dev/null && echo " and groff -ww") clean"
done

# A page as text, one paragraph a line (no line breaks inside an option).
text() { mandoc -T ascii -O width=1000 "build/man/$1" | col -bx; }
# The long options a text names, one a line.
longs() { grep -oE -- '--[a-z][a-z0-9-]*' | sort -u; }
# The options that the page's OPTIONS section (and its subsections) describe:
# the lines at the tag's indentation that start with a dash.
described() {
	text "$1" | awk '/^[A-Z]/ { on = ($0 ~ /OPTIONS/) } on && /^       -/' | longs
}

for prog in numafollow numafollowd numafollow-hook numafollow-nri; do
	"build/$prog" --help | longs >"$T/help"
	text "$prog.8" >"$T/page"
	[ "$(wc -l <"$T/help")" -ge 5 ] || fail "$prog --help: too few options found"
	while read -r o; do
		grep -qE -- "(^|[^a-z-])$o([^a-z0-9-]|\$)" "$T/page" ||
			fail "$prog --help prints $o, $prog($(echo "$prog.8" | sed 's/.*\.//')) does not describe it"
	done <"$T/help"
	described "$prog.8" >"$T/described"
	[ -s "$T/described" ] || fail "$prog.8: no OPTIONS section found"
	extra=$(comm -13 "$T/help" "$T/described")
	[ -z "$extra" ] || fail "$prog(8) describes $(echo $extra), which $prog --help does not print"
	echo "-- $prog(8): the $(wc -l <"$T/help") long options of --help, and no other"
done

# Every setting of the shipped files, as "name =" in numafollowd.conf(5).
text numafollowd.conf.5 >"$T/page"
for f in deploy/numafollowd.conf deploy/hook.conf; do
	n=0
	for s in $(sed -n 's/^# *\([a-z][a-z-]*\) = .*/\1/p' "$f" | sort -u); do
		grep -qE "(^|[^a-z-])$s =" "$T/page" || fail "$f's setting $s is not in numafollowd.conf(5)"
		n=$((n + 1))
	done
	[ "$n" -ge 6 ] || fail "$f: too few settings found"
	echo "-- numafollowd.conf(5): the $n settings of $f"
done
# and every option of the agent but --config, --help, --version, as a setting
build/numafollowd --help | longs | sed 's/^--//' | grep -vxE 'config|help|version' |
	while read -r s; do
		grep -qE "(^|[^a-z-])$s =" "$T/page" || fail "numafollowd --$s is not a setting in numafollowd.conf(5)"
	done
echo PASS
