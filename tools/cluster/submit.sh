#!/bin/sh
# Submit an idscope sweep as a Slurm job array of N shards and a merge that runs once all succeeded.
# Usage: tools/cluster/submit.sh N PARTS_DIR OUT_DIR IDSCOPE COMMAND [OPTIONS...]
#   e.g. tools/cluster/submit.sh 8 parts/ids out/ids build/release/idscope ids extract -m text.gguf --mmproj mmproj.gguf
# Prints the two job ids ("array JOBID", "merge JOBID"). sbatch options (partition, account, time,
# memory) can be added through SBATCH_* environment variables or edited in the .sbatch files.
set -eu
[ $# -ge 5 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
N=$1 PARTS=$2 OUT=$3 IDSCOPE=$4
shift 4
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$PARTS"
array=$(sbatch --parsable --array="0-$((N - 1))" "$HERE/shard.sbatch" "$N" "$PARTS" "$IDSCOPE" "$@")
array=${array%%;*}
merge=$(sbatch --parsable --dependency="afterok:$array" "$HERE/merge.sbatch" "$PARTS" "$OUT" "$IDSCOPE")
echo "array $array"
echo "merge ${merge%%;*}"
