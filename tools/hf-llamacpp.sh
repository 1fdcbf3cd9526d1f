#!/bin/sh
# llama.cpp reads what 'idscope convert' writes. The golden GGUF pairs (../shared/golden: llava-tiny,
# qwen2vl-tiny; tests/golden: gemma3-tiny, internvl-tiny (as OpenGVLab's layout and as transformers'),
# qwen3vl-tiny) are written as Hugging Face folders by tests/golden/make_hf.py and
# make_hf_families.py, converted back with
# 'idscope convert', and run in llama.cpp beside the originals: llama-eval-callback on the text model
# (every tensor's printed values and sums, the tokens) and llama-mtmd-cli with the image (8 greedy
# tokens, the chat template named explicitly: vicuna, chatml, gemma). Each pair of runs must print the same.
# Usage: tools/hf-llamacpp.sh [LLAMA_CPP_DIR]
#   LLAMA_CPP_DIR: a llama.cpp checkout built by ../shared/tools/llamacpp-oracle.sh
#   (default $HOME/.cache/llamacpp-oracle/llama.cpp). Needs build/release/idscope (make) and
#   python3-numpy. Not part of make check. Exit 1 when any output differs.
set -eu
cd "$(dirname "$0")/.."
SH=${IDSCOPE_SHARED:-../shared}
LC=${1:-$HOME/.cache/llamacpp-oracle/llama.cpp}
EC=$LC/build/bin/llama-eval-callback
MT=$LC/build/bin/llama-mtmd-cli
for x in "$EC" "$MT"; do
    [ -x "$x" ] || { echo "no $x: build llama.cpp with $SH/tools/llamacpp-oracle.sh" >&2; exit 1; }
done
BIN=build/release/idscope
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"${PYTHON:-/usr/bin/python3}" tests/golden/make_hf.py "$SH/golden" "$T/hf"
"${PYTHON:-/usr/bin/python3}" tests/golden/make_hf_families.py "$T/hf"
# llama.cpp's log lines without their times, and without what names or sizes the file
norm() { sed -E 's/^[0-9.]+ [IWE] //' "$1" | grep -v -e general.name -e chat_template -e 'time =' -e 'file size' \
    -e 'llama_model_loader: - kv' -e 'llama_model_loader: - type' -e '^ggml_' -e load_tensors -e 'print_info: file' \
    -e 'print_info: model' -e 'print_info: general' || true; }
P="USER: Is the red circle to the left or right of the blue square? ASSISTANT:"
bad=0
for f in llava-tiny:vicuna qwen2vl-tiny:chatml gemma3-tiny:gemma internvl-tiny:chatml internvl-hf:chatml qwen3vl-tiny:chatml; do
    name=${f%%:*} tmpl=${f##*:}
    G=$SH/golden/$name GT=$G/text.gguf
    case $name in
    gemma3-tiny) G=tests/golden/$name GT=$G/text.gguf ;;
    internvl-*) G=tests/golden/internvl-tiny GT=$G/text.gguf ;;
    qwen3vl-tiny) G=tests/golden/$name GT=build/golden/$name/text.gguf ;;
    esac
    [ -d "$T/hf/$name" ] || { echo "skip   $name: no folder (build/golden/qwen3vl-tiny/text.gguf: make)"; continue; }
    "$BIN" convert "$T/hf/$name" -o "$T/$name"
    "$EC" -m "$GT" -p "$P" -n 1 -t 2 --temp 0 >"$T/ec-a.txt" 2>&1
    "$EC" -m "$T/$name/text.gguf" -p "$P" -n 1 -t 2 --temp 0 >"$T/ec-b.txt" 2>&1
    norm "$T/ec-a.txt" >"$T/a"
    norm "$T/ec-b.txt" >"$T/b"
    n=$(grep -c 'sum = ' "$T/a" || true)
    if [ "$n" -gt 0 ] && cmp -s "$T/a" "$T/b"; then echo "same   $name: llama-eval-callback ($n tensors printed)"
    else echo "DIFFER $name: llama-eval-callback"; bad=1; fi
    for k in a b; do
        MT_T=$GT MP=$G/mmproj.gguf
        [ "$k" = b ] && MT_T=$T/$name/text.gguf MP=$T/$name/mmproj.gguf
        "$MT" -m "$MT_T" --mmproj "$MP" --image "$G/image.png" -p "Where is the circle?" -n 8 \
            --temp 0 -t 2 --chat-template "$tmpl" >"$T/mt-$k.txt" 2>"$T/mt-$k.err"
    done
    if [ -s "$T/mt-a.txt" ] && cmp -s "$T/mt-a.txt" "$T/mt-b.txt"; then echo "same   $name: llama-mtmd-cli: $(tr -s '\n' ' ' <"$T/mt-a.txt")"
    else echo "DIFFER $name: llama-mtmd-cli"; bad=1; fi
done
exit $bad
