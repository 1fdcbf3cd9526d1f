#!/bin/sh
# Run libFuzzer harnesses: tests/fuzz/run.sh SECONDS NAME... (make fuzz runs every harness).
# Each runs for SECONDS over its seed corpus (tests/fuzz/corpus/NAME, read only) and the inputs it
# found before (build/fuzz/corpus/NAME, where new ones go), with its dictionary
# (tests/fuzz/NAME.dict). Any finding (crash, leak, sanitizer report, a unit slower than 10 s,
# more than 2048 MB) stops that harness; its input lands in build/fuzz/artifacts/NAME/ and its log
# in build/fuzz/logs/NAME.log. Prints the executions of each; exits 1 when any harness failed.
# Extra libFuzzer flags: FUZZ_FLAGS="-jobs=2 ..." in the environment.
set -u
cd "$(dirname "$0")/../.."
secs=${1:?usage: run.sh SECONDS NAME...}
shift
export IDSCOPE_SHARED="${IDSCOPE_SHARED:-../shared}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=""
for n in "$@"; do
    bin=build/fuzz/fuzz_$n
    work=build/fuzz/corpus/$n
    art=build/fuzz/artifacts/$n
    log=build/fuzz/logs/$n.log
    mkdir -p "$work" "$art" build/fuzz/logs
    set -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$art/"
    [ -f "tests/fuzz/$n.dict" ] && set -- "$@" -dict="tests/fuzz/$n.dict"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    "$bin" "$@" ${FUZZ_FLAGS:-} "$work" "tests/fuzz/corpus/$n" >"$log" 2>&1
    rc=$?
    t1=$(date +%s)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    units=$(find "$work" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz_$n: ${execs:-?} executions in $((t1 - t0)) s, ${units} inputs in $work, peak RSS ${rss:-?} MB: ok"
    else
        echo "fuzz_$n: FAILED (exit $rc) after ${execs:-?} executions in $((t1 - t0)) s; log $log; input:"
        sed -n 's/.*Test unit written to /    /p' "$log"
        grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log" | head -n 8 | sed 's/^/    /'
        failed="$failed $n"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: findings in:$failed"
    exit 1
fi
echo "fuzz: no findings"
