#!/bin/sh
# The fuzz harnesses' smoke for the test suite: each harness runs its seed corpus, then a fixed
# number of mutations (FUZZ_SMOKE_RUNS, default 1000 executions in all) from a fixed seed, a few
# seconds at most, under ASan and UBSan. One check per harness; the closing line is "fuzz: N passed, N failed". Without
# clang's libFuzzer the harnesses are not built and every check is reported skipped (neither passed
# nor failed).
# A unit may take up to 30 s of wall time before it counts as a hang: on a loaded machine (the suites
# run side by side) a video input that needs 3 s of CPU under ASan was seen to take 12 s.
# Usage: tests/fuzz/smoke.sh [BUILD_DIR (default build/fuzz)]
set -u
cd "$(dirname "$0")/../.."
dir=${1:-build/fuzz}
names=$(for f in tests/fuzz/fuzz_*.c; do n=${f#tests/fuzz/fuzz_}; echo "${n%.c}"; done)
count=$(echo "$names" | wc -l)
if ! tests/fuzz/have_libfuzzer.sh "${FUZZ_CC:-clang}"; then
    echo "fuzz: ${FUZZ_CC:-clang} with libFuzzer not found: $count harnesses skipped (make deps installs clang)"
    echo "fuzz: 0 passed, 0 failed, $count skipped"
    exit 0
fi
export IDSCOPE_SHARED="${IDSCOPE_SHARED:-../shared}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
for n in $names; do
    bin=$dir/fuzz_$n
    if [ ! -x "$bin" ]; then
        echo "FAIL fuzz_$n: $bin not built (make fuzz-build)"
        fail=$((fail + 1))
        continue
    fi
    mkdir -p "$tmp/$n" "$dir/artifacts"
    set -- -seed=1 -runs="${FUZZ_SMOKE_RUNS:-1000}" -max_total_time=5 -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/smoke-$n-"
    [ -f "tests/fuzz/$n.dict" ] && set -- "$@" -dict="tests/fuzz/$n.dict"
    # the first folder takes the new inputs: a scratch one, so that the seed corpus stays as committed
    "$bin" "$@" "$tmp/$n" "tests/fuzz/corpus/$n" >"$tmp/$n.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$n.log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "ok   fuzz_$n (${execs:-?} executions)"
        pass=$((pass + 1))
    else
        echo "FAIL fuzz_$n (exit $rc after ${execs:-?} executions):"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$tmp/$n.log" | head -n 6 | sed 's/^/    /'
        fail=$((fail + 1))
    fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
