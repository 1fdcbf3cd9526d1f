#!/bin/sh
# Held-out accuracy of a model folder (text.gguf + mmproj.gguf) with the engine: 500 fresh
# questions per task, evaluation seed 2026, on all object pairs and on the held-out pairs alone.
# usage: scripts/eval-model.sh DIR [N]
set -eu
DIR=${1:?usage: scripts/eval-model.sh DIR [N]}
N=${2:-500}
BIN=${IDSCOPE_BIN:-build/release/idscope}
for mode in all only; do
    printf '%s: ' "held-out=$mode"
    "$BIN" eval -m "$DIR/text.gguf" --mmproj "$DIR/mmproj.gguf" --task all --n "$N" --seed 2026 --held-out "$mode" --json
done
