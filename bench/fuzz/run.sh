#!/usr/bin/env bash
# bench/fuzz: build the libFuzzer harnesses (tests/fuzz) with clang, ASan
# and UBSan in build-fuzz/ and run each for SECONDS; fails if any harness
# reports a crash, a leak, UB or a hang.  CI (tests/run.sh) runs it with a
# short time; a long run by hand gives the figures for issue 14.
#
#   bench/fuzz/run.sh SECONDS [HARNESS...]      (default: all of them)
#
# Env: BUILD (default build-fuzz), CC_FUZZ (clang, else clang-14), FUZZ_SEEDS (the Barev transcripts,
#      default ../shared/barev-transcripts when present).
# The corpus grows in $BUILD/fuzz/corpus/<harness> across runs; anything
# found lands in $BUILD/fuzz/artifacts/ (copy it to tests/fuzz/regress/
# <harness>/ with the fix).  Per harness: its log in $BUILD/fuzz/<h>.log,
# and a summary line with executions and executions per second.
set -uo pipefail

main() {
secs=${1:?usage: bench/fuzz/run.sh SECONDS [HARNESS...]}
shift
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD:-$top/build-fuzz}
src=$top/tests/fuzz
work=$build/fuzz
seeds=${FUZZ_SEEDS:-$top/../shared/barev-transcripts}
all=(xmlstream pipe pipehdr blhdr component socks5 config avatar addr chatcmd slot)
harnesses=("${@:-${all[@]}}")

# Debian 12: clang-14 + libclang-rt-14-dev (libFuzzer); "clang" if present
cc=${CC_FUZZ:-$(command -v clang || command -v clang-14 || echo clang)}
CC=$cc cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBAREV_FUZZ=ON -DBAREV_WERROR=ON >/dev/null || exit 1
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null || exit 1

mkdir -p "$work/artifacts" "$work/seeds"
if [ -d "$seeds" ]; then
	python3 "$src/seeds.py" "$seeds" "$work/seeds" || exit 1
else
	echo "note: no transcripts at $seeds: committed seeds only"
fi

# leaks and UB end the run like a crash; libFuzzer's own timeout catches
# hangs (every harness bounds its waits well below it)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=0
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# the harnesses' files (the fixture's SQLite store, the config harness's
# file) on tmpfs when there is one: a commit then costs no disk flush
if [ -w /dev/shm ] && scratch=$(mktemp -d /dev/shm/barev-fuzz.XXXXXX); then
	trap 'rm -rf "$scratch"' EXIT
else
	scratch=$work
fi

failed=0
summary=()
for h in "${harnesses[@]}"; do
	bin=$build/tests/fuzz/fuzz_$h
	corpus=$work/corpus/$h
	log=$work/$h.log
	mkdir -p "$corpus" "$scratch/tmp-$h"
	dirs=("$corpus")
	for d in "$work/seeds/$h" "$src/corpus/$h" "$src/regress/$h"; do
		[ -d "$d" ] && dirs+=("$d")
	done
	echo "=== fuzz_$h for ${secs}s"
	TEST_TMPDIR=$scratch/tmp-$h "$bin" -max_total_time="$secs" -timeout=60 \
	    -rss_limit_mb=2560 -dict="$src/xmpp.dict" -print_final_stats=1 \
	    -artifact_prefix="$work/artifacts/$h-" "${dirs[@]}" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p' "$log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		res=ok
	else
		res="FAILED (exit $rc, see $log)"
		failed=1
		grep -E "ERROR:|SUMMARY:|runtime error|Test unit written" "$log" | head -8
	fi
	summary+=("$(printf '%-10s %12s execs %8s exec/s  cov %6s  %s' "$h" \
	    "${execs:-?}" "${rate:-?}" "${cov:-?}" "$res")")
done
echo "=== summary (${secs}s each)"
printf '%s\n' "${summary[@]}"
return "$failed"
}

# main is parsed in full before anything runs, and `exit` on the same
# line as the call is read with it: editing the script during a long run
# cannot make bash read on into a half-changed file afterwards (a bare
# `exit` on the next line was read from the edited file at the old offset).
main "$@"; exit
