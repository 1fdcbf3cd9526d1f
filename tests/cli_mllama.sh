#!/bin/sh
# Llama-3.2-Vision (HF model_type mllama) through the CLI on tests/golden/mllama-tiny (a random-weight
# HF folder written by tests/golden/make_mllama.py): tokenize, ask, capture --all with the
# cross-attention sites, edits at those sites, ids extract, steer belief with the family's band, and
# malformed folders (missing shard, shape mismatch, unknown model_type) failing with a message that
# names the file and the tensor or key.
# Usage: tests/cli_mllama.sh path/to/idscope   (closing line "mllama: N passed, N failed")
set -u
BIN=${1:-build/release/idscope}
PY=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/lib.sh"

ML=tests/golden/mllama-tiny
Q="Is the red circle to the left or right of the blue square?"
# the golden prompt's tokens (expected/tokens.npy, without the closing "\n\n"): BOS, the header, <|image|> (540), the question
expect ml_tokenize 0 "^534 536 448 537 256 540 457 276 279 300 321 276 325 332 329 331 276 288 306 63 538 536 456 537$" -- \
    "$BIN" tokenize -m "$ML" --special "$(printf '<|start_header_id|>user<|end_header_id|>\n\n<|image|>%s<|eot_id|><|start_header_id|>assistant<|end_header_id|>' "$Q")"
expect ml_ask 0 "log P(right)" -- "$BIN" ask -m "$ML" --image "$ML/image.png" -q "$Q" --choices left,right -n 2 --threads 2
expect ml_ask_tiles_warning 0 "fits it into 2x2 tiles of 56 px" -- "$BIN" ask -m "$ML" --image "$ML/image.png" -q "$Q" -n 1 --threads 2
expect ml_capture_all 0 "wrote" -- "$BIN" capture -m "$ML" --image "$ML/image.png" --prompt-file "$ML/prompt.txt" --all \
    -o "$TMP/ml.safetensors" --threads 2
H=$(head -c 20000 "$TMP/ml.safetensors" | tr -d '\000')
if echo "$H" | grep -q '"resid":{"dtype":"F32","shape":\[9,25,64\]' && echo "$H" | grep -q '"xattn_out":{"dtype":"F32","shape":\[3,25,64\]' &&
   echo "$H" | grep -q '"xattn_gate":{"dtype":"F32","shape":\[3,25,2\]' && echo "$H" | grep -q '"cross_states":{"dtype":"F32","shape":\[68,64\]' &&
   echo "$H" | grep -q '"vision":{"dtype":"F32","shape":\[6,96,32\]' && echo "$H" | grep -q '"logits":{"dtype":"F32","shape":\[25,540\]' &&
   echo "$H" | grep -q 'blocks.B.hook_xattn_out'; then ok ml_capture_shapes; else ko ml_capture_shapes; fi
# the cross-attention sites of the capture against the NumPy transcription
if "$PY" - "$TMP/ml.safetensors" "$ML/expected" <<'PYEOF'
import json, struct, sys
import numpy as np
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
def arr(k):
    v = h[k]
    o = v["data_offsets"]
    return np.frombuffer(b[8 + n + o[0]:8 + n + o[1]], np.float32).reshape(v["shape"])
assert np.abs(arr("xattn_out") - np.load(sys.argv[2] + "/xattn_out.npy")).max() < 1e-3
assert np.abs(arr("resid") - np.load(sys.argv[2] + "/resid.npy")).max() < 1e-3
assert np.abs(arr("cross_states") - np.load(sys.argv[2] + "/cross_states.npy")).max() < 1e-3
PYEOF
then ok ml_capture_values; else ko ml_capture_values; fi
# edits at the cross-attention sites: both gates of layer 4 zeroed on every row (a [2] vector added:
# minus the gates), and a vector at a block without cross-attention refused
"$PY" -c "
import numpy as np, json, sys
g = json.load(open('$ML/expected/image.json'))['gates']['4']
np.save('$TMP/g.npy', -np.tanh(np.array(g, np.float32)))
np.save('$TMP/v.npy', np.ones(64, np.float32))"
expect ml_edit_gate 0 "wrote" -- "$BIN" capture -m "$ML" --image "$ML/image.png" --prompt-file "$ML/prompt.txt" \
    --sites xattn,attn_out --positions last -o "$TMP/mle.safetensors" --threads 2 \
    --add "$TMP/g.npy" --layer blocks.4.hook_xattn_gate --positions 5-24
if "$PY" - "$TMP/mle.safetensors" <<'PYEOF'
import json, struct, sys
import numpy as np
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
def arr(k):
    v = h[k]
    o = v["data_offsets"]
    return np.frombuffer(b[8 + n + o[0]:8 + n + o[1]], np.float32).reshape(v["shape"])
g = arr("xattn_gate")  # [3, 1, 2]: layer 4 is the second cross-attention layer
assert np.abs(g[1]).max() < 1e-6 and np.abs(g[0]).min() > 0.1
assert np.abs(arr("attn_out")[4]).max() < 1e-6  # block 4 adds nothing from the image
PYEOF
then ok ml_edit_gate_values; else ko ml_edit_gate_values; fi
expect ml_edit_xattn_out 0 "wrote" -- "$BIN" capture -m "$ML" --image "$ML/image.png" --prompt-file "$ML/prompt.txt" \
    --sites logits --positions last -o "$TMP/mlx.safetensors" --threads 2 --add "$TMP/v.npy" --layer blocks.6.hook_xattn_out
expect ml_edit_not_cross 1 "block 2 is not a cross-attention layer" -- "$BIN" capture -m "$ML" --image "$ML/image.png" \
    --prompt-file "$ML/prompt.txt" -o "$TMP/mlb.safetensors" --threads 2 --add "$TMP/v.npy" --layer blocks.2.hook_xattn_out
expect ml_edit_gate_width 1 "a cross-attention gate site has 2 per row" -- "$BIN" capture -m "$ML" --image "$ML/image.png" \
    --prompt-file "$ML/prompt.txt" -o "$TMP/mlw.safetensors" --threads 2 --add "$TMP/v.npy" --layer blocks.1.hook_xattn_gate
expect ml_ids_extract 0 "wrote" -- "$BIN" ids extract -m "$ML" --out "$TMP/mlids" --objects "red circle,blue square" \
    --grid 2 --sizes 1 --image-size 112 --threads 2
# the family's bands: belief steering the paper's 10-20 of 40 layers scaled to 8 (2..4); depth over the
# layers the paper kept, the first 32 of 40 (1..6 of 8, not 1..7)
expect ml_steer_belief 0 "^2,.*" -- "$BIN" steer belief --ids "$TMP/mlids/ids.safetensors" -m "$ML" --out "$TMP/mlsteer" \
    --n 1 --threads 2
if [ "$(sed -n '2s/,.*//p;$s/,.*//p' "$TMP/mlsteer/steer-belief.csv" | tr '\n' ' ')" = "2 4 " ]; then ok ml_steer_band; else ko ml_steer_band; fi
expect ml_depth 0 "^6,.*" -- "$BIN" depth --ids "$TMP/mlids/ids.safetensors" -m "$ML" --out "$TMP/mldepth" --n 1 --threads 2
if [ "$(tail -n 1 "$TMP/out" | sed 's/,.*//')" = 6 ]; then ok ml_depth_limit; else ko ml_depth_limit; fi
expect ml_convert_refused 1 "llama.cpp has no mllama architecture" -- "$BIN" convert "$ML" -o "$TMP/conv"

# malformed folders: each message names the file and the tensor (or key)
mkdir -p "$TMP/b" "$TMP/s" "$TMP/t"
for d in b s t; do cp "$ML"/*.json "$ML"/*.safetensors "$TMP/$d/"; done
rm "$TMP/b/model-00001-of-00002.safetensors"
expect ml_missing_shard 1 "index.json lists tensor '\(vision_model\|multi_modal_projector\)\.[^']*' in model-00001-of-00002.safetensors: .*/b/model-00001-of-00002.safetensors: cannot open" -- \
    "$BIN" ask -m "$TMP/b" --image "$ML/image.png" -q "$Q" -n 1
"$PY" - "$TMP/s/model-00002-of-00002.safetensors" <<'PYEOF'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
h["language_model.model.layers.4.cross_attn.k_proj.weight"]["shape"] = [16, 128]  # same bytes, wrong shape
t = json.dumps(h, separators=(",", ":")).encode()
t += b" " * (n - len(t))
open(p, "wb").write(bytes(b[:8]) + t + bytes(b[8 + n:]))
PYEOF
expect ml_shape_mismatch 1 "model-00002-of-00002.safetensors: tensor 'language_model.model.layers.4.cross_attn.k_proj.weight' has shape \[16, 128\], expected \[32, 64\]" -- \
    "$BIN" ask -m "$TMP/s" --image "$ML/image.png" -q "$Q" -n 1
sed -i 's/"model_type": "mllama"/"model_type": "mllama_next"/' "$TMP/t/config.json"
expect ml_unknown_model_type 1 "config.json: model_type 'mllama_next' is not supported" -- \
    "$BIN" ask -m "$TMP/t" --image "$ML/image.png" -q "$Q" -n 1
sed -i 's/"model_type": "mllama_next"/"model_type": "mllama"/; s/"cross_attention_layers": \[/"cross_attention_layers": [9, /' "$TMP/t/config.json"
expect ml_bad_cross_layers 1 "config.json: cross_attention_layers\[0\]" -- \
    "$BIN" ask -m "$TMP/t" --image "$ML/image.png" -q "$Q" -n 1

echo "mllama: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
