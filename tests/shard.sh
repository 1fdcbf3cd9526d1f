#!/bin/sh
# Shards, merge and resumption on the bundled model (docs/CLUSTER.md): ids extract unsharded and as 3
# shards run by GNU parallel, merged, compared byte for byte apart from the provenance record; the
# same for every experiment with per-item statistics (their per-item CSVs and intervals; deviation's
# Mann-Whitney test, mask's random boxes), merged and resumed (after a torn last record); stimulus
# sets (images, variants, frame folders, MP4, the COCO format) from 3 shards joined into the files
# of one run; merges with a shard missing, repeated or from another command line fail naming it; a
# run killed with SIGKILL after some items were kept, then rerun, gives the uninterrupted run's
# files. Without GNU parallel the parallel runs are reported as skipped. The shards of a command are
# run at the same time (3 single-threaded processes).
# Usage: tests/shard.sh path/to/idscope
set -u
BIN=${1:-build/release/idscope}
HERE=$(cd "$(dirname "$0")" && pwd)
SAME="${PYTHON:-python3} $HERE/same_but_prov.py"
. "$(dirname "$0")/lib.sh"
# same NAME DIR_A DIR_B: the result files agree apart from provenance
same() {
    if out=$($SAME "$2" "$3" 2>&1); then ok "$1"; else ko "$1: $out"; fi
}

expect merge_help 0 "usage: idscope merge PART_DIR... --out DIR" -- "$BIN" merge --help
expect merge_listed 0 "^  merge " -- "$BIN" --help
expect merge_no_parts 2 "missing PART_DIR..." -- "$BIN" merge --out "$TMP/x"
mkdir -p "$TMP/notapart"
expect merge_not_a_part 1 "notapart/part.json: cannot read" -- "$BIN" merge "$TMP/notapart" --out "$TMP/x"
expect shard_help 0 "--shard I/N" -- "$BIN" steer grid --help

# the 3 default objects, a 2 x 2 grid, 2 sizes: 144 items (under a second on one thread)
X="ids extract --grid 2 --sizes 0.9,0.6 --threads 1"
expect extract_whole 0 "wrote" -- "$BIN" $X --out "$TMP/whole"
if [ -e "$TMP/whole/items.bin" ]; then ko extract_whole_items_removed; else ok extract_whole_items_removed; fi

expect shard_out_of_range 2 "--shard 3/3 is not I/N" -- "$BIN" $X --out "$TMP/bad" --shard 3/3
expect shard_not_a_fraction 2 "--shard 2 is not I/N" -- "$BIN" $X --out "$TMP/bad" --shard 2

# the comparison can fail: another size list gives other IDs
expect extract_other 0 "wrote" -- "$BIN" ids extract --grid 2 --sizes 0.9 --threads 1 --out "$TMP/sids"
if $SAME "$TMP/whole" "$TMP/sids" >/dev/null 2>&1; then ko compare_detects_difference; else ok compare_detects_difference; fi

if command -v parallel >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    if parallel --will-cite -j 3 "$BIN" $X --out "$TMP/part{}" --shard {}/3 ::: 0 1 2 >"$TMP/par.out" 2>&1; then
        ok extract_shards_parallel
    else
        ko extract_shards_parallel
        tail -5 "$TMP/par.out"
    fi
    if grep -q '"index":[[:space:]]*1' "$TMP/part1/part.json" && grep -q '"count":[[:space:]]*3' "$TMP/part1/part.json" &&
       grep -q '"items":[[:space:]]*48,' "$TMP/part1/part.json" && [ ! -e "$TMP/part1/ids.json" ]; then
        ok extract_part_json
    else
        ko extract_part_json
    fi
    expect merge_extract 0 "wrote" -- "$BIN" merge "$TMP/part0" "$TMP/part1" "$TMP/part2" --out "$TMP/merged"
    same merge_extract_same_files "$TMP/whole" "$TMP/merged"
    expect merge_missing 1 "shard 1/3 is missing" -- "$BIN" merge "$TMP/part0" "$TMP/part2" --out "$TMP/m2"
    expect merge_twice 1 "shard 2/3 is given twice" -- "$BIN" merge "$TMP/part0" "$TMP/part1" "$TMP/part2" "$TMP/part2" \
        --out "$TMP/m3"
    if [ -e "$TMP/m2/ids.json" ] || [ -e "$TMP/m3/ids.json" ]; then ko merge_failed_writes_nothing; else ok merge_failed_writes_nothing; fi
    # a part of another run (other sizes) does not join
    expect extract_other_shard 0 "shard 1/3" -- "$BIN" ids extract --grid 2 --sizes 0.9,0.5 --threads 1 \
        --out "$TMP/otherpart1" --shard 1/3
    expect merge_other_run 1 "different command lines" -- "$BIN" merge "$TMP/part0" "$TMP/otherpart1" "$TMP/part2" \
        --out "$TMP/m4"

else
    for t in extract_shards_parallel merge_extract merge_missing merge_twice; do
        skipped "$t" "GNU parallel is not installed (make deps)"
    done
fi

# Per-item statistics: every experiment that keeps per-item values (swap, swap --hue, steer belief
# with greedy verdicts, steer grid, depth on drawn scenes and on an image set, temporal swap and
# steer) run whole, as 3 shards merged, and resumed (shard 1's kept items, then the whole run in its
# folder): the merged and the resumed folder equal the whole run's files apart from provenance,
# the per-item CSVs (*-items.csv) and the bootstrap intervals (*_ci) included.
# stats_sharded NAME ARGS...   (TORN=1: the kept log's last record cut short first, as a kill while
# writing it leaves it)
stats_sharded() {
    sn=$1
    shift
    expect "${sn}_whole" 0 "" -- "$BIN" "$@" --out "$TMP/$sn"
    if ls "$TMP/$sn"/*-items.csv "$TMP/$sn/$sn.csv" 2>/dev/null | grep -q . && grep -q '_ci"' "$TMP/$sn"/*.json; then
        ok "${sn}_has_items_csv_and_ci"
    else
        ko "${sn}_has_items_csv_and_ci"
    fi
    for i in 0 1 2; do
        "$BIN" "$@" --out "$TMP/${sn}_p$i" --shard "$i/3" >"$TMP/${sn}_p$i.log" 2>&1 &
    done
    for i in 0 1 2; do wait; done
    for i in 0 1 2; do
        [ -e "$TMP/${sn}_p$i/part.json" ] || { ko "${sn}_shard_$i"; tail -3 "$TMP/${sn}_p$i.log"; }
    done
    expect "${sn}_merge" 0 "" -- "$BIN" merge "$TMP/${sn}_p0" "$TMP/${sn}_p1" "$TMP/${sn}_p2" --out "$TMP/${sn}_m"
    same "${sn}_merged_same_files" "$TMP/$sn" "$TMP/${sn}_m"
    [ "${TORN:-0}" = 0 ] || truncate -s -7 "$TMP/${sn}_p1/items.bin"
    expect "${sn}_resume" 0 "items kept by an earlier run of the same request are reused" -- "$BIN" "$@" \
        --out "$TMP/${sn}_p1"
    same "${sn}_resumed_same_files" "$TMP/$sn" "$TMP/${sn}_p1"
}
"$BIN" temporal extract --frames 4 --threads 1 --out "$TMP/tids" >/dev/null 2>&1 || ko stats_temporal_ids
"$BIN" stimuli grid --out "$TMP/gset" --grid 2 --limit 6 >/dev/null 2>&1 || ko stats_set
stats_sharded swap swap --n 2 --threads 1
stats_sharded hue swap --hue --n 2 --threads 1
stats_sharded belief steer belief --ids "$TMP/sids/ids.safetensors" --n 2 --greedy 2 --threads 1
stats_sharded grid steer grid --ids "$TMP/sids/ids.safetensors" --n 2 --threads 1
stats_sharded depth depth --ids "$TMP/sids/ids.safetensors" --n 2 --threads 1
stats_sharded depthset depth --ids "$TMP/sids/ids.safetensors" --set "$TMP/gset" --threads 1
stats_sharded tswap temporal swap --frames 4 --n 2 --threads 1
stats_sharded tsteer temporal steer --ids "$TMP/tids/temporal.safetensors" --n 2 --threads 1

# Stimulus sets: whole vs 3 shards joined (manifest or COCO files apart from the provenance, every
# image, frame and MP4 byte for byte: the images are linked from the parts)
# stim_sharded NAME RESULT ARGS...
files_same() { # every file but the JSON ones, by content
    (cd "$1" && find . -type f ! -name '*.json' | sort | xargs -r cksum) >"$TMP/fa" &&
        (cd "$2" && find . -type f ! -name '*.json' | sort | xargs -r cksum) >"$TMP/fb" && cmp -s "$TMP/fa" "$TMP/fb" &&
        [ -s "$TMP/fa" ]
}
stim_sharded() {
    sn=$1 res=$2
    shift 2
    expect "${sn}_whole" 0 "" -- "$BIN" stimuli "$@" --out "$TMP/$sn"
    for i in 0 1 2; do "$BIN" stimuli "$@" --out "$TMP/${sn}_p$i" --shard "$i/3" >"$TMP/${sn}_p$i.log" 2>&1 & done
    for i in 0 1 2; do wait; done
    expect "${sn}_merge" 0 "3 parts joined" -- "$BIN" merge "$TMP/${sn}_p2" "$TMP/${sn}_p0" "$TMP/${sn}_p1" --out "$TMP/${sn}_m"
    if [ "$res" = manifest.json ]; then
        same "${sn}_merged_same_manifest" "$TMP/$sn" "$TMP/${sn}_m" manifest.json
    elif cmp -s "$TMP/$sn/$res" "$TMP/${sn}_m/$res" && cmp -s "$TMP/$sn/instances.json" "$TMP/${sn}_m/instances.json"; then
        ok "${sn}_merged_same_coco_files"
    else
        ko "${sn}_merged_same_coco_files"
    fi
    if files_same "$TMP/$sn" "$TMP/${sn}_m"; then ok "${sn}_merged_same_images"; else ko "${sn}_merged_same_images"; fi
}
stim_sharded stgrid manifest.json grid --grid 2 --mirror --recolor --limit 7
stim_sharded stvideo manifest.json video --frames 4 --mp4 --limit 4
stim_sharded stcoco coco_qa_two_obj.json grid --grid 2 --coco-format --all-pairs --objects "red circle,blue square,green triangle" --limit 10
if grep -q '"items":[[:space:]]*7' "$TMP/stgrid_p1/manifest.json" && [ ! -e "$TMP/stgrid_p1/grid_00000.png" ] &&
   [ -e "$TMP/stgrid_p1/grid_00001_mirror.png" ]; then ok stimuli_shard_has_its_items; else ko stimuli_shard_has_its_items; fi
expect merge_stimuli_missing 1 "shard 1/3 is missing" -- "$BIN" merge "$TMP/stgrid_p0" "$TMP/stgrid_p2" --out "$TMP/sm2"
expect merge_stimuli_other 1 "different command lines" -- "$BIN" merge "$TMP/stgrid_p0" "$TMP/stvideo_p1" "$TMP/stgrid_p2" --out "$TMP/sm3"
# a part whose manifest is not its shard's (moved around by hand) is refused by the library's check
sed 's/"index":[[:space:]]*1/"index":\t2/' "$TMP/stgrid_p1/part.json" >"$TMP/p1fake"
mkdir -p "$TMP/swapped" && cp "$TMP/stgrid_p1/manifest.json" "$TMP/swapped/" && cp "$TMP/p1fake" "$TMP/swapped/part.json"
expect merge_stimuli_wrong_part 1 "is shard 1/3, expected shard 2/3" -- "$BIN" merge "$TMP/stgrid_p0" "$TMP/stgrid_p1" "$TMP/swapped" --out "$TMP/sm4"
expect stimuli_coco_no_shard 2 "nothing to shard" -- "$BIN" stimuli coco --shard 0/2 --out "$TMP/x"
# the whole command run in a shard's folder writes the whole set (and drops part.json)
expect stimuli_rerun_whole 0 "" -- "$BIN" stimuli grid --grid 2 --mirror --recolor --limit 7 --out "$TMP/stgrid_p1"
if [ ! -e "$TMP/stgrid_p1/part.json" ] && files_same "$TMP/stgrid" "$TMP/stgrid_p1"; then ok stimuli_rerun_whole_same; else ko stimuli_rerun_whole_same; fi

# Fig. 8: deviation on the 6-record set (its Mann-Whitney test between the items answered right and
# wrong: both groups are there) and mask on the COCO-Spatial import of the 10-image COCO-format set
# (the real-image path: --coco-instances boxes), their statistics computed at the merge as in one run
TORN=1
stats_sharded deviation deviation --ids "$TMP/sids/ids.safetensors" --set "$TMP/gset" --threads 1
if grep -q '"method":[[:space:]]*"exact"' "$TMP/deviation_m/deviation.json"; then ok deviation_merged_has_test; else ko deviation_merged_has_test; fi
"$BIN" stimuli coco --coco-json "$TMP/stcoco/coco_qa_two_obj.json" --coco-images "$TMP/stcoco/images" \
    --coco-instances "$TMP/stcoco/instances.json" --out "$TMP/cocoset" >/dev/null 2>&1 || ko stats_coco_set
stats_sharded mask mask --set "$TMP/cocoset" --random 2 --threads 1
TORN=0
expect merge_mask_missing 1 "shard 1/3 is missing" -- "$BIN" merge "$TMP/mask_p0" "$TMP/mask_p2" --out "$TMP/mm2"
expect merge_mask_twice 1 "shard 0/3 is given twice" -- "$BIN" merge "$TMP/mask_p0" "$TMP/mask_p0" "$TMP/mask_p2" --out "$TMP/mm3"

# eval with --out: 7/12 on the golden model's left-right questions, the same from 3 shards
SH=${IDSCOPE_SHARED:-../shared}
E="eval -m $SH/golden/llava-tiny/text.gguf --mmproj $SH/golden/llava-tiny/mmproj.gguf --task left-right --n 12 --threads 1"
expect eval_whole 0 "^left-right accuracy 7/12$" -- "$BIN" $E --out "$TMP/eval"
for i in 0 1 2; do "$BIN" $E --out "$TMP/epart$i" --shard "$i/3" >/dev/null 2>&1 & done
for i in 0 1 2; do wait; done
expect merge_eval 0 "^left-right accuracy 7/12$" -- "$BIN" merge "$TMP/epart0" "$TMP/epart1" "$TMP/epart2" --out "$TMP/emerged"
same merge_eval_same_files "$TMP/eval" "$TMP/emerged"
expect eval_shard_needs_out 2 "--shard needs --out" -- "$BIN" $E --shard 0/2

# SIGKILL after some items were kept, a torn last record, then the same command again: the 144
# items of $X take about 2 s on one thread; killed once 20 are kept (1.8 kB each)
"$BIN" $X --out "$TMP/killed" >/dev/null 2>&1 &
pid=$!
n=0
while [ "$n" -lt 400 ]; do # (at most 20 s)
    size=$(stat -c %s "$TMP/killed/items.bin" 2>/dev/null || echo 0)
    [ "$size" -gt 40000 ] && break
    sleep 0.02
    n=$((n + 1))
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ -e "$TMP/killed/ids.json" ]; then
    skipped kill_resume "the run ended before it was killed"
else
    size=$(stat -c %s "$TMP/killed/items.bin" 2>/dev/null || echo 0)
    if [ "$size" -gt 40000 ]; then ok kill_left_items; else ko "kill_left_items ($size bytes)"; fi
    truncate -s -100 "$TMP/killed/items.bin" # as if killed while writing a record
    expect kill_rerun_resumes 0 "items kept by an earlier run of the same request are reused" -- "$BIN" $X --out "$TMP/killed"
    same kill_rerun_same_files "$TMP/whole" "$TMP/killed"
    if [ -e "$TMP/killed/items.bin" ]; then ko kill_items_removed; else ok kill_items_removed; fi
fi
# a kept log of another request is not reused
mkdir -p "$TMP/stale"
cp "$TMP/otherpart1/items.bin" "$TMP/stale/items.bin" 2>/dev/null || printf 'IDSITEMS' >"$TMP/stale/items.bin"
expect stale_items_restart 0 "starting over" -- "$BIN" $X --out "$TMP/stale"
same stale_items_same_files "$TMP/whole" "$TMP/stale"

echo "shard: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
