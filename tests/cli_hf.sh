#!/bin/sh
# Hugging Face model folders through the CLI. tests/golden/make_hf.py writes the golden GGUF pairs
# (../shared/golden: llava-tiny, qwen2vl-tiny; tests/golden/qwen25vl-tiny) as HF folders with the same weights; each command run
# on a folder must give what it gives on the pair (captures within 1e-5), `convert` must write the
# pair back, and broken folders must fail naming the file and the tensor.
# Usage: tests/cli_hf.sh path/to/idscope   (needs python3 with numpy; closing line "hf: N passed, N failed")
set -u
BIN=${1:-build/release/idscope}
SH=${IDSCOPE_SHARED:-../shared}
PY=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/lib.sh"

# same NAME A.safetensors B.safetensors: every array of two captures (or ID files) within 1e-5
same() {
    if "$PY" - "$2" "$3" >"$TMP/cmp" 2>&1 <<'EOF'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    dt = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "F16": np.float16, "U8": np.uint8}
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                             dtype=dt[v["dtype"]]).reshape(v["shape"]) for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert sorted(a) == sorted(b), "arrays %s vs %s" % (sorted(a), sorted(b))
worst = 0.0
for k in a:
    assert a[k].shape == b[k].shape, k
    if a[k].size:
        worst = max(worst, float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))))
print("max |diff| %.3g over %d arrays" % (worst, len(a)))
sys.exit(0 if worst <= 1e-5 else 1)
EOF
    then ok "$1 ($(cat "$TMP/cmp"))"; else ko "$1 ($(tail -n 1 "$TMP/cmp"))"; fi
}

if ! "$PY" -c "import numpy" 2>/dev/null; then
    echo "skip hf folders: $PY with numpy is needed to write them"
    echo "hf: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
if ! "$PY" tests/golden/make_hf.py "$SH/golden" "$TMP/hf" >"$TMP/make.log" 2>&1; then
    ko "make_hf.py"
    cat "$TMP/make.log"
    echo "hf: $pass passed, $fail failed"
    exit 1
fi
ok make_hf

L=$SH/golden/llava-tiny
Q=$SH/golden/qwen2vl-tiny
HL=$TMP/hf/llava-tiny
HQ=$TMP/hf/qwen2vl-tiny

# the folder as a model file: info and tokenize read its decoder part
expect hf_info 0 "tokenizer.ggml.tokens .*\[str x 32000\]" -- "$BIN" info "$HL"
expect hf_info_qwen 0 "qwen2vl.rope.dimension_sections" -- "$BIN" info "$HQ"
# the tokenizers from tokenizer.json against llama.cpp's vectors (../shared/vocab, same vocabularies)
tok_vectors() { # NAME FOLDER VOCAB N: the first N strings of VOCAB.inp, each must give its .out line
    "$PY" - "$3.inp" "$3.out" "$4" "$TMP/$1" <<'EOF'
import sys
s = open(sys.argv[1], encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
o = open(sys.argv[2], encoding="utf-8").read().split("\n")
for i in range(int(sys.argv[3])):
    open("%s.%d.txt" % (sys.argv[4], i), "w", encoding="utf-8").write(s[i])
    open("%s.%d.want" % (sys.argv[4], i), "w").write(o[i].strip() + "\n")
EOF
    bad=""
    i=0
    while [ "$i" -lt "$4" ]; do
        "$BIN" tokenize -m "$2" --no-bos --file "$TMP/$1.$i.txt" >"$TMP/$1.$i.got" 2>&1
        cmp -s "$TMP/$1.$i.got" "$TMP/$1.$i.want" || bad="$bad $i"
        i=$((i + 1))
    done
    if [ -z "$bad" ]; then ok "$1 ($4 strings)"; else ko "$1 (strings$bad differ)"; fi
}
tok_vectors tokenize_spm_json "$HL" "$SH/vocab/ggml-vocab-llama-spm.gguf" 47
tok_vectors tokenize_bpe_json "$HQ" "$SH/vocab/ggml-vocab-qwen2.gguf" 8
expect tokenize_bos 0 "^1 15043 3186$" -- "$BIN" tokenize -m "$HL" "Hello world"
expect tokenize_special 0 "^151644 872$" -- "$BIN" tokenize -m "$HQ" --special "<|im_start|>user"

# capture --all: the folder and the GGUF pair of the same weights
pair() { # FAMILY: the golden folder and the pair's text and mmproj files
    case $1 in
    qwen25vl-tiny) GD=tests/golden/qwen25vl-tiny GT=$SH/golden/qwen2vl-tiny/text.gguf ;;
    *) GD=$SH/golden/$1 GT=$SH/golden/$1/text.gguf ;;
    esac
}
for f in llava-tiny qwen2vl-tiny qwen25vl-tiny; do
    pair "$f"
    expect "capture_gguf_$f" 0 "" -- "$BIN" capture -m "$GT" --mmproj "$GD/mmproj.gguf" --image "$GD/image.png" \
        --prompt-file "$GD/prompt.txt" --all --threads 2 -o "$TMP/$f-gguf.safetensors"
    expect "capture_hf_$f" 0 "" -- "$BIN" capture -m "$TMP/hf/$f" --image "$GD/image.png" \
        --prompt-file "$GD/prompt.txt" --all --threads 2 -o "$TMP/$f-hf.safetensors"
    same "capture_same_$f" "$TMP/$f-gguf.safetensors" "$TMP/$f-hf.safetensors"
done

# BF16 weights (what Qwen2-VL is published in): the folder with every weight rounded to BF16 runs, and
# stays within BF16's rounding of the F32 run (measured: image rows 0.010, stream 0.051)
"$PY" - "$HQ" "$TMP/hf/qwen-bf16" <<'EOF'
import json, os, shutil, struct, sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
shutil.copytree(src, dst)
b = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", b[:8])[0]
out, blobs, off = {}, [], 0
for k, v in json.loads(b[8:8 + n]).items():
    s, e = v["data_offsets"]
    u = np.frombuffer(b[8 + n + s:8 + n + e], dtype={"F32": np.float32, "F16": np.float16}[v["dtype"]]).astype(np.float32).view(np.uint32)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
    out[k] = {"dtype": "BF16", "shape": v["shape"], "data_offsets": [off, off + r.nbytes]}
    blobs.append(r.tobytes())
    off += r.nbytes
t = json.dumps(out).encode()
t += b" " * ((8 - (8 + len(t)) % 8) % 8)
open(os.path.join(dst, "model.safetensors"), "wb").write(struct.pack("<Q", len(t)) + t + b"".join(blobs))
EOF
expect capture_hf_bf16 0 "" -- "$BIN" capture -m "$TMP/hf/qwen-bf16" --image "$Q/image.png" --prompt-file "$Q/prompt.txt" \
    --all --threads 2 -o "$TMP/bf16.safetensors"
if "$PY" - "$TMP/qwen2vl-tiny-gguf.safetensors" "$TMP/bf16.safetensors" >"$TMP/cmp" 2>&1 <<'EOF'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype=np.float32).reshape(v["shape"])
            for k, v in json.loads(b[8:8 + n]).items() if k != "__metadata__" and v["dtype"] == "F32"}
a, b = load(sys.argv[1]), load(sys.argv[2])
d = {k: float(np.max(np.abs(a[k] - b[k]))) for k in ("image_embd", "resid", "vision")}
print(" ".join("%s %.3g" % kv for kv in d.items()))
sys.exit(0 if d["image_embd"] < 0.05 and d["vision"] < 0.1 and 0 < d["resid"] < 0.25 else 1)
EOF
then ok "capture_bf16_close ($(cat "$TMP/cmp"))"; else ko "capture_bf16_close ($(cat "$TMP/cmp"))"; fi

# ask: the same answer and log-probabilities
for f in llava-tiny qwen2vl-tiny; do
    G=$SH/golden/$f
    "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" -q "Where is the circle?" \
        --choices left,right -n 3 --threads 2 >"$TMP/ask-gguf" 2>/dev/null
    expect "ask_hf_$f" 0 "log P(left)" -- "$BIN" ask -m "$TMP/hf/$f" --image "$G/image.png" -q "Where is the circle?" \
        --choices left,right -n 3 --threads 2
    if cmp -s "$TMP/out" "$TMP/ask-gguf"; then ok "ask_same_$f"; else ko "ask_same_$f"; diff "$TMP/out" "$TMP/ask-gguf" | head -4; fi
done

# ids extract and steer belief on the folder; the IDs equal those of the pair
expect ids_extract_hf 0 "wrote" -- "$BIN" ids extract -m "$HL" --out "$TMP/ids-hf" --objects "red circle,blue square" \
    --grid 2 --sizes 0.9 --threads 2
expect ids_extract_gguf 0 "wrote" -- "$BIN" ids extract -m "$L/text.gguf" --mmproj "$L/mmproj.gguf" --out "$TMP/ids-gguf" \
    --objects "red circle,blue square" --grid 2 --sizes 0.9 --threads 2
same ids_same "$TMP/ids-gguf/ids.safetensors" "$TMP/ids-hf/ids.safetensors"
if grep -q "$HL/config.json" "$TMP/ids-hf/ids.json"; then ok ids_provenance_names_folder; else ko ids_provenance_names_folder; fi
# a folder's decoder with a GGUF tower (the same weights): the same IDs, provenance naming both
expect ids_extract_mixed 0 "wrote" -- "$BIN" ids extract -m "$HL" --mmproj "$L/mmproj.gguf" --out "$TMP/ids-mix" \
    --objects "red circle,blue square" --grid 2 --sizes 0.9 --threads 2
same ids_same_mixed "$TMP/ids-gguf/ids.safetensors" "$TMP/ids-mix/ids.safetensors"
if grep -q "$HL/config.json" "$TMP/ids-mix/ids.json" && grep -q "$L/mmproj.gguf\|llava-tiny/mmproj.gguf" "$TMP/ids-mix/ids.json"; then
    ok ids_mixed_provenance; else ko ids_mixed_provenance; fi
expect steer_belief_hf 0 "^best 3 layers: ID" -- "$BIN" steer belief --ids "$TMP/ids-hf/ids.safetensors" -m "$HL" \
    --out "$TMP/steer-hf" --n 2 --threads 2
expect steer_layers_checked 2 "is outside 1\.\.4 (the model's layers)" -- "$BIN" steer belief \
    --ids "$TMP/ids-hf/ids.safetensors" -m "$HL" --out "$TMP/x" --layers 0-99
expect hf_with_mmproj_missing 2 "--mmproj is required unless -m is a Hugging Face model folder" -- "$BIN" capture \
    -m "$L/text.gguf" --image "$L/image.png" --prompt-file "$L/prompt.txt" -o "$TMP/x.safetensors"

# convert: the pair written back; llama.cpp's tensors and keys; the same captures
expect convert_help 0 "usage: idscope convert" -- "$BIN" convert --help
for f in llava-tiny qwen2vl-tiny qwen25vl-tiny; do
    pair "$f"
    expect "convert_$f" 0 "wrote" -- "$BIN" convert "$TMP/hf/$f" -o "$TMP/conv-$f"
    expect "convert_capture_$f" 0 "" -- "$BIN" capture -m "$TMP/conv-$f/text.gguf" --mmproj "$TMP/conv-$f/mmproj.gguf" \
        --image "$GD/image.png" --prompt-file "$GD/prompt.txt" --all --threads 2 -o "$TMP/$f-conv.safetensors"
    same "convert_same_$f" "$TMP/$f-gguf.safetensors" "$TMP/$f-conv.safetensors"
done
keys() { # the keys (and array types and lengths) and the tensor table of a GGUF, less what may differ
    "$BIN" info --max-items 0 "$1" | grep -E '^  [a-z]' | grep -v -e general.name -e general.description -e file_type \
        -e tokenizer.ggml.scores -e tokenizer.chat_template -e add_space_prefix -e image_min_pixels -e image_max_pixels | sed -E 's/\[(.*) x ([0-9]+)\] \[.*/[\1 x \2]/' | sort
}
for f in llava-tiny qwen2vl-tiny qwen25vl-tiny; do
    pair "$f"
    for p in text mmproj; do
        if [ "$p" = text ]; then keys "$GT" >"$TMP/keys-golden"; else keys "$GD/mmproj.gguf" >"$TMP/keys-golden"; fi
        keys "$TMP/conv-$f/$p.gguf" >"$TMP/keys-conv"
        if [ -s "$TMP/keys-golden" ] && cmp -s "$TMP/keys-golden" "$TMP/keys-conv"; then ok "convert_keys_and_tensors_$f-$p"
        else ko "convert_keys_and_tensors_$f-$p"; diff "$TMP/keys-golden" "$TMP/keys-conv" | head -6; fi
    done
done
expect convert_pixel_bounds 0 "clip.vision.image_max_pixels .*12845056" -- "$BIN" info "$TMP/conv-qwen2vl-tiny/mmproj.gguf"
expect convert_not_folder 2 "is not a folder" -- "$BIN" convert "$L/text.gguf" -o "$TMP/x"
expect convert_no_out 2 "missing -o" -- "$BIN" convert "$HL"

# broken folders: each message names the file and the tensor (or key)
brk() { # copy of the llava folder with symbolic links to its weights
    rm -rf "$TMP/b"
    mkdir "$TMP/b"
    for x in "$HL"/*; do ln -s "$x" "$TMP/b/$(basename "$x")"; done
    rm "$TMP/b/config.json" "$TMP/b/model.safetensors.index.json"
    cp "$HL/config.json" "$HL/model.safetensors.index.json" "$TMP/b/"
}
brk
rm "$TMP/b/model-00002-of-00002.safetensors"
expect broken_missing_shard 1 "index.json lists tensor 'model\.\(vision_tower\|multi_modal_projector\)[^']*' in model-00002-of-00002.safetensors: .*/b/model-00002-of-00002.safetensors: cannot open" -- \
    "$BIN" capture -m "$TMP/b" --image "$L/image.png" --prompt-file "$L/prompt.txt" -o "$TMP/x.safetensors"
brk
sed -i 's/"intermediate_size": 176/"intermediate_size": 177/' "$TMP/b/config.json"
expect broken_shape 1 "model-00001-of-00002.safetensors: tensor 'model.language_model.layers.0.mlp.gate_proj.weight' has shape \[176, 64\], expected \[177, 64\]" -- \
    "$BIN" capture -m "$TMP/b" --image "$L/image.png" --prompt-file "$L/prompt.txt" -o "$TMP/x.safetensors"
brk
sed -i 's/"model_type": "llava"/"model_type": "llava_next"/' "$TMP/b/config.json"
expect broken_model_type 1 "config.json: model_type 'llava_next' is not supported" -- \
    "$BIN" capture -m "$TMP/b" --image "$L/image.png" --prompt-file "$L/prompt.txt" -o "$TMP/x.safetensors"
brk
rm -rf "$TMP/q"
mkdir "$TMP/q"
for x in "$HQ"/*; do ln -s "$x" "$TMP/q/$(basename "$x")"; done
rm "$TMP/q/model.safetensors"
"$PY" - "$HQ/model.safetensors" "$TMP/q/model.safetensors" <<'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
del h["model.layers.2.mlp.up_proj.weight"]  # its bytes stay, unreferenced
t = json.dumps(h).encode()
t += b" " * ((8 - (8 + len(t)) % 8) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
EOF
expect broken_missing_tensor 1 "/q/model.safetensors: tensor 'model.layers.2.mlp.up_proj.weight' is missing" -- \
    "$BIN" capture -m "$TMP/q" --image "$Q/image.png" --prompt-file "$Q/prompt.txt" -o "$TMP/x.safetensors"
brk
sed -i 's/"model.multi_modal_projector.linear_2.bias": "model-00002-of-00002.safetensors"/"model.multi_modal_projector.linear_2.bias": "model-00001-of-00002.safetensors"/' \
    "$TMP/b/model.safetensors.index.json"
expect broken_wrong_shard 1 "model-00001-of-00002.safetensors: tensor 'model.multi_modal_projector.linear_2.bias' is not in it" -- \
    "$BIN" capture -m "$TMP/b" --image "$L/image.png" --prompt-file "$L/prompt.txt" -o "$TMP/x.safetensors"
brk
rm "$TMP/b/tokenizer.json"
expect broken_no_tokenizer 1 "tokenizer.json: not found" -- "$BIN" ask -m "$TMP/b" --image "$L/image.png" -q "Where?"
expect not_a_model_folder 1 "config.json: not found (not a Hugging Face model folder)" -- "$BIN" ask -m "$TMP" \
    --image "$L/image.png" -q "Where?"

echo "hf: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
