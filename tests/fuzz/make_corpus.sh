#!/bin/sh
# Rebuild the seed corpora under tests/fuzz/corpus/ (make fuzz-corpus). Binary seeds come from
# make_corpus.c (built against the release library); the JSON result seeds from a short demo on the
# golden LLaVA-shaped model (--n 1); the rest from tests/fixtures, configs/ and $IDSCOPE_SHARED.
set -eu
cd "$(dirname "$0")/../.."
SH="${IDSCOPE_SHARED:-../shared}"
C=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/release/make_corpus "$tmp/gen"
for d in gguf safetensors npy image video; do
    rm -rf "${C:?}/$d"
    mkdir -p "$C/$d"
    cp "$tmp/gen/$d"/* "$C/$d/"
done
# GGUF: the broken fixtures (each one defect)
cp tests/fixtures/broken/*.gguf "$C/gguf/"
# images: the golden prompts' images; video: still images and a GIF are one-frame videos to FFmpeg
cp "$SH/golden/llava-tiny/image.png" "$C/image/golden_llava.png"
cp "$SH/golden/qwen2vl-tiny/image.png" "$C/image/golden_qwen2vl.png"
cp "$tmp/gen/image/c4.gif" "$tmp/gen/image/c3.png" "$tmp/gen/image/rgb.ppm" "$tmp/gen/image/c3.jpg" "$C/video/"
# tokenizer: llama.cpp's vocabulary test texts, one seed each, and a chat prompt with special tokens
rm -rf "$C/tokenizer"
mkdir -p "$C/tokenizer"
awk -v dir="$C/tokenizer" 'BEGIN { n = 0; f = sprintf("%s/vocab_test_%02d.txt", dir, n) }
    /^__ggml_vocab_test__$/ { close(f); n++; f = sprintf("%s/vocab_test_%02d.txt", dir, n); printf "" > f; next }
    { print > f }' "$SH/vocab/ggml-vocab-llama-spm.gguf.inp"
printf '<|im_start|>user\n<image>\nIs the red circle to the left or right of the blue square?<|im_end|>\n<|im_start|>assistant\n' \
    >"$C/tokenizer/chat_qwen.txt"
printf '<s>[INST] Is the red circle left of the blue square? [/INST] left</s>' >"$C/tokenizer/chat_llama.txt"
# JSON readers
rm -rf "$C/train_config" "$C/coco" "$C/score" "$C/report"
mkdir -p "$C/train_config" "$C/coco" "$C/score" "$C/report"
cp tests/fixtures/tiny-train.json configs/*.json "$C/train_config/"
cp tests/fixtures/coco/coco_qa_two_obj.json "$C/coco/"
build/release/idscope demo --out "$tmp/demo" -m "$SH/golden/llava-tiny/text.gguf" \
    --mmproj "$SH/golden/llava-tiny/mmproj.gguf" --n 1 --threads 1 >/dev/null 2>&1
for f in ids/ids.json ids/stats.json swap/swap.json steer/steer-belief.json steer/steer-grid-left_right.json \
    depth/depth.json temporal/temporal.json temporal/temporal-swap.json temporal/temporal-steer.json score.json \
    summary.json; do
    cp "$tmp/demo/$f" "$C/report/$(basename "$f")"
done
cp "$tmp/demo/temporal/temporal.safetensors" "$C/safetensors/"
{ cat "$tmp/demo/ids/stats.json"; printf '\0'; cat "$tmp/demo/steer/steer-belief.json"; } >"$C/score/stats_steer.json"
cp "$tmp/demo/ids/stats.json" "$C/score/stats_only.json"
# image sets: a synthetic manifest and a COCO-Spatial one with instance boxes (first byte 0), the
# instances file (first byte 1)
rm -rf "$C/set"
mkdir -p "$C/set"
build/release/idscope stimuli grid --out "$tmp/set" --size 32 --grid 2 --limit 2 >/dev/null 2>&1
build/release/idscope stimuli coco --coco-json tests/fixtures/coco/coco_qa_two_obj.json --coco-images images \
    --coco-instances tests/fixtures/coco/instances.json --out "$tmp/cocoset" >/dev/null 2>&1
{ printf '\0'; cat "$tmp/set/manifest.json"; } >"$C/set/grid_manifest.json"
{ printf '\0'; cat "$tmp/cocoset/manifest.json"; } >"$C/set/coco_manifest.json"
{ printf '\1'; cat tests/fixtures/coco/instances.json; } >"$C/set/instances.json"
# the MVBench seeds are written by hand (tests/fuzz/corpus/mvbench/) and kept as they are
echo "seed corpora: $(find "$C" -type f | wc -l) files, $(find "$C" -type f -printf '%s\n' | awk '{s += $1} END {print s}') bytes"
