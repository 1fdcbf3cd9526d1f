#!/bin/sh
# idscope's control vectors in llama.cpp. Exports a universal-ID difference with 'idscope ids
# export-cvec' (IDs extracted here from the golden LLaVA-shaped model), then runs the golden text
# model on one text prompt without and with '--control-vector' in llama.cpp (llama-eval-callback,
# which prints the last row's logits: the first and last three values and their sum) and in idscope
# ('capture --control-vector'), and compares how far the control vector moves those numbers.
# Usage: tools/cvec-llamacpp.sh [LLAMA_CPP_DIR]
#   LLAMA_CPP_DIR: a llama.cpp checkout built by ../shared/tools/llamacpp-oracle.sh
#   (default $HOME/.cache/llamacpp-oracle/llama.cpp). SCALE=F scales the vector (default 1).
# Needs build/release/idscope (make) and python3-numpy. Not part of make check. Exit 1 when the two
# shifts differ by more than 0.02 (llama.cpp keeps its K/V cache in f16; idscope in f32).
set -eu
cd "$(dirname "$0")/.."
SH=${IDSCOPE_SHARED:-../shared}
LC=${1:-$HOME/.cache/llamacpp-oracle/llama.cpp}
EC=$LC/build/bin/llama-eval-callback
if [ ! -x "$EC" ]; then
    echo "no $EC: build llama.cpp with $SH/tools/llamacpp-oracle.sh" >&2
    exit 1
fi
G=$SH/golden/llava-tiny
BIN=build/release/idscope
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P="USER: Is the red circle to the left or right of the blue square? ASSISTANT:"
"$BIN" ids extract -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --out "$T/ids" --objects "red circle,blue square" \
    --grid 2 --sizes 0.9 --threads 2 >"$T/extract.log" 2>&1
"$BIN" ids export-cvec --ids "$T/ids/ids.safetensors" --from 0,0 --to 0,1 --scale "${SCALE:-1}" -o "$T/cv.gguf"
"$EC" -m "$G/text.gguf" -p "$P" -n 1 -t 2 --temp 0 >"$T/llama0.txt" 2>&1
"$EC" -m "$G/text.gguf" -p "$P" -n 1 -t 2 --temp 0 --control-vector "$T/cv.gguf" >"$T/llama1.txt" 2>&1
for k in 0 1; do
    cv=""
    [ "$k" = 1 ] && cv="--control-vector $T/cv.gguf"
    # shellcheck disable=SC2086
    "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --prompt "$P" --positions last --sites logits \
        -o "$T/idscope$k.safetensors" $cv 2>>"$T/capture.log"
done
PYTHONPATH=python "${PYTHON:-/usr/bin/python3}" - "$T" <<'PY'
import re, sys
import numpy as np
import idscope

t = sys.argv[1]

def llama(path):
    """The last row's logits as llama-eval-callback prints them: 3 first, 3 last, and the sum."""
    text = open(path).read()
    block = text[text.index("result_output = "):]
    vals = [float(x) for x in re.findall(r"-?\d+\.\d+", block.split("sum =")[0].split("\n", 1)[1])]
    total = float(re.search(r"sum = (-?[\d.]+)", block).group(1))
    return np.array(vals[:3] + vals[-3:]), total

def ours(path):
    lg = idscope.load_capture(path)["logits"][-1].astype(np.float64)
    return np.concatenate([lg[:3], lg[-3:]]), lg.sum()

(l0, s0), (l1, s1) = llama(t + "/llama0.txt"), llama(t + "/llama1.txt")
(i0, u0), (i1, u1) = ours(t + "/idscope0.safetensors"), ours(t + "/idscope1.safetensors")
cv = idscope.control_vector(t + "/cv.gguf")
print("control vector: %d directions (%s), norms %s" % (len(cv), ", ".join("direction.%d" % (e.name[1] - 1) for e in cv),
                                                     ", ".join("%.3f" % np.linalg.norm(e.vec) for e in cv)))
print("%-22s %10s %10s %10s %10s %10s %10s" % ("last-row logits", "llama.cpp", "+cvec", "shift", "idscope", "+cvec", "shift"))
names = ["logit[0]", "logit[1]", "logit[2]", "logit[31997]", "logit[31998]", "logit[31999]"]
for k in range(6):
    print("%-22s %10.4f %10.4f %10.4f %10.4f %10.4f %10.4f" % (names[k], l0[k], l1[k], l1[k] - l0[k], i0[k], i1[k], i1[k] - i0[k]))
print("%-22s %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f" % ("sum over 32000", s0, s1, s1 - s0, u0, u1, u1 - u0))
d = float(np.abs((l1 - l0) - (i1 - i0)).max())
ds = abs((s1 - s0) - (u1 - u0)) / 32000
print("max |shift(llama.cpp) - shift(idscope)|: %.4f over the printed logits, %.5f per logit in the sum" % (d, ds))
sys.exit(0 if d <= 0.02 and ds <= 0.02 else 1)
PY
