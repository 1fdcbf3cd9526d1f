#!/bin/sh
# Whole test suite: unit tests (release build), CLI tests, shards/merge/resumption, the install, the Python package (against
# build/release's shared library, made here when missing or stale), unit tests under ASan+UBSan, and a
# short smoke of every fuzz harness (skipped, not passed, without clang's libFuzzer).
# The suites are independent (each works in its own temporary folder), so they run in TEST_JOBS lanes at
# once (default: the number of cores); each suite's output is kept and printed whole, in the order below,
# with its closing line and its time; then one total line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
export IDSCOPE_SHARED="${IDSCOPE_SHARED:-../shared}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
case $jobs in '' | *[!0-9]* | 0) jobs=1 ;; esac
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

python_suite() {
    make --no-print-directory -s shared >/dev/null || { echo "python: make shared failed"; return 1; }
    "${PYTHON:-/usr/bin/python3}" tests/python/run.py
}

# id|label|command. The longest suites first, so that the lanes end close together.
SUITES='asan|unit tests (asan+ubsan)|build/asan/test_idscope
cli|cli tests|tests/cli.sh build/release/idscope
shard|shards and resumption|tests/shard.sh build/release/idscope
hf|hf folders|tests/cli_hf.sh build/release/idscope
hffam|hf folders: gemma3, internvl, qwen3vl|tests/cli_hf_families.sh build/release/idscope
onevision|llava-onevision|tests/cli_onevision.sh build/release/idscope
mllama|llama-3.2-vision|tests/cli_mllama.sh build/release/idscope
unit|unit tests (release)|build/release/test_idscope
python|python|python_suite
fuzz|fuzz smoke|tests/fuzz/smoke.sh build/fuzz
layers|layer rule|tests/check_layers.sh build/release/obj
install|install|tests/install.sh'

# Runs one suite into its log; its exit status and seconds beside it.
run_one() {
    id=$1
    cmd=$2
    t0=$(date +%s)
    # shellcheck disable=SC2086
    eval "$cmd" </dev/null >"$logs/$id.log" 2>&1
    echo $? >"$logs/$id.rc"
    echo $(($(date +%s) - t0)) >"$logs/$id.sec"
}

# A lane takes the next suite nobody has claimed (mkdir is the atomic claim), until none is left.
lane() {
    printf '%s\n' "$SUITES" | while IFS='|' read -r id label cmd; do
        mkdir "$logs/claim.$id" 2>/dev/null && run_one "$id" "$cmd"
    done
}

t_start=$(date +%s)
echo "running $(printf '%s\n' "$SUITES" | wc -l) suites in $jobs lane(s)"
k=0
while [ "$k" -lt "$jobs" ]; do
    lane &
    k=$((k + 1))
done
wait

total_pass=0
total_fail=0
# The suites in a fixed order, as the list gives them
for id in unit layers cli hf hffam onevision mllama shard install python asan fuzz; do
    label=$(printf '%s\n' "$SUITES" | awk -F'|' -v id="$id" '$1 == id { print $2 }')
    echo "== $label ($(cat "$logs/$id.sec" 2>/dev/null || echo '?') s)"
    cat "$logs/$id.log" 2>/dev/null
    rc=$(cat "$logs/$id.rc" 2>/dev/null || echo 127)
    line=$(grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed' "$logs/$id.log" 2>/dev/null | tail -n 1)
    if [ -z "$line" ]; then
        echo "$label: no closing line (exit $rc)"
        total_fail=$((total_fail + 1))
        continue
    fi
    p=$(printf '%s' "$line" | sed -E 's/^[a-z]+: ([0-9]+) passed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$label: exit $rc without a counted failure"
        total_fail=$((total_fail + 1))
    fi
done
echo "suites took $(($(date +%s) - t_start)) s in $jobs lane(s)"
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
