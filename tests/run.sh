#!/bin/bash
# Runs tests and ends with one line: "N passed, N failed, N skipped".
#   build/tests/unit-* and build/asan/unit-*: cmocka binaries (each test counted)
#   build/fuzz-NAME: libFuzzer harnesses, run for FUZZ_SECONDS (default 20) from
#   tests/fuzz/seeds-NAME (and tests/fuzz/NAME.dict, if any) into build/fuzz-corpus-NAME
#   tests/host/t-*.sh: run here (checks of files, no VM)
#   tests/vm/t-*.sh: run inside the NUMA VM; a line "# vm: OPTIONS" gives vm.sh's
#   options. Exit 0 passes, 77 skips, anything else fails.
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 skipped=0
failures=()
log_dir=build/test-logs
mkdir -p "$log_dir"

# Says why VM tests cannot run here, or nothing.
vm_missing() {
	command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 not installed"; return; }
	[ -e /bin/busybox ] || { echo "busybox-static not installed"; return; }
	[ "$(id -u)" = 0 ] || echo "not root (qemu's 9p export of / needs it)"
}

run_unit() {
	local t=$1 log=$2 out p f rc=0
	out=$("$t" 2>&1) || rc=$? # a sanitizer's report (a leak, say) exits non-zero after PASSED
	echo "$out" >"$log"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -n 1)
	[ "$rc" = 0 ] || [ -n "$f" ] || f=1 # e.g. a leak found after the tests: one failure
	passed=$((passed + ${p:-0}))
	if [ -n "$f" ] || [ -z "$p" ]; then
		failed=$((failed + ${f:-1}))
		failures+=("$t")
		echo "FAIL $t"
		cat "$log"
	else
		echo "ok   $t (${p} tests)"
	fi
}

# A short libFuzzer run: any crash, leak or failed check fails it.
run_fuzz() {
	local t=$1 log=$2 name=${1##*/fuzz-} dict=()
	local corpus=build/fuzz-corpus-$name
	[ -e "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
	mkdir -p "$corpus"
	if "$t" -max_total_time="${FUZZ_SECONDS:-20}" -max_len=4096 "${dict[@]}" \
		-artifact_prefix="build/fuzz-$name-" "$corpus" \
		"tests/fuzz/seeds-$name" >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "ok   $t ($(grep -o 'Done [0-9]* runs in [0-9]* second' "$log"))"
	else
		failed=$((failed + 1))
		failures+=("$t")
		echo "FAIL $t:"
		tail -n 40 "$log" | sed 's/^/    /'
	fi
}

# tally TEST LOG RC NOTE: counts a script's exit (0 passes, 77 skips, else
# fails, its log shown); NOTE follows its name ("12s", or nothing).
tally() {
	local t=$1 log=$2 rc=$3 note=$4
	case $rc in
	0) passed=$((passed + 1)); echo "ok   $t${note:+ ($note)}" ;;
	77) skipped=$((skipped + 1)); echo "skip $t: $(tail -n 1 "$log")" ;;
	*)
		failed=$((failed + 1))
		failures+=("$t")
		echo "FAIL $t (exit $rc${note:+, $note}):"
		sed 's/^/    /' "$log"
		;;
	esac
}

# A test that needs no VM.
run_host() {
	local rc=0
	"$1" >"$2" 2>&1 || rc=$?
	tally "$1" "$2" "$rc" ""
}

run_vm() {
	local t=$1 log=$2 opts why start rc
	why=$(vm_missing)
	if [ -n "$why" ]; then
		skipped=$((skipped + 1))
		echo "skip $t: $why"
		return
	fi
	opts=$(sed -n 's/^# vm: //p' "$t" | head -n 1)
	start=$(date +%s)
	# shellcheck disable=SC2086
	tests/vm/vm.sh --timeout 600 $opts -- "$t" >"$log" 2>&1
	rc=$?
	local note="$(($(date +%s) - start))s"
	# a failure with the guest kernel stuck under the emulator (vm.sh says so):
	# once more, the first run's log kept and named
	if [ "$rc" != 0 ] && [ "$rc" != 77 ] && grep -q '^vm.sh: the guest kernel reported' "$log"; then
		mv "$log" "$log.stuck"
		echo "rerun $t: the guest kernel reported a lockup or a stall (log: $log.stuck)"
		start=$(date +%s)
		# shellcheck disable=SC2086
		tests/vm/vm.sh --timeout 600 $opts -- "$t" >"$log" 2>&1
		rc=$?
		note="$(($(date +%s) - start))s, rerun after a guest kernel stall"
	fi
	tally "$t" "$log" "$rc" "$note"
}

[ $# -gt 0 ] || { echo "usage: tests/run.sh TEST..." >&2; exit 2; }
case " $* " in
*tests/vm/*.sh\ *) [ -n "$(vm_missing)" ] || tests/vm/vm.sh --prepare ||
	echo "warning: preparing the test VM failed; VM tests will fail" ;;
esac
for t in "$@"; do
	log="$log_dir/$(echo "$t" | tr '/' '_').log"
	case "$t" in
	tests/host/*.sh) run_host "$t" "$log" ;;
	*.sh) run_vm "$t" "$log" ;;
	*/fuzz-*) run_fuzz "$t" "$log" ;;
	*) run_unit "$t" "$log" ;;
	esac
done
[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
