#!/bin/sh
# Whole test suite: unit tests (release build), CLI tests, shards/merge/resumption, the install, the Python package (against
# build/release's shared library, made here when missing or stale), unit tests under ASan+UBSan, and a
# short smoke of every fuzz harness (skipped, not passed, without clang's libFuzzer).
# Prints each suite's closing line, then one total line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
export IDSCOPE_SHARED="${IDSCOPE_SHARED:-../shared}"
total_pass=0
total_fail=0
run_suite() {
    label=$1
    shift
    echo "== $label"
    out=$("$@" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        echo "$label: no closing line (exit $rc)"
        total_fail=$((total_fail + 1))
        return
    fi
    p=$(printf '%s' "$line" | sed -E 's/^[a-z]+: ([0-9]+) passed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$label: exit $rc without a counted failure"
        total_fail=$((total_fail + 1))
    fi
}
run_suite "unit tests (release)" build/release/test_idscope
run_suite "layer rule" tests/check_layers.sh build/release/obj
run_suite "cli tests" tests/cli.sh build/release/idscope
run_suite "hf folders" tests/cli_hf.sh build/release/idscope
run_suite "llama-3.2-vision" tests/cli_mllama.sh build/release/idscope
run_suite "shards and resumption" tests/shard.sh build/release/idscope
run_suite "install" tests/install.sh
python_suite() {
    make --no-print-directory -s shared >/dev/null || { echo "python: make shared failed"; return 1; }
    "${PYTHON:-/usr/bin/python3}" tests/python/run.py
}
run_suite "python" python_suite
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
run_suite "unit tests (asan+ubsan)" build/asan/test_idscope
run_suite "fuzz smoke" tests/fuzz/smoke.sh build/fuzz
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
