#!/bin/sh
# Hugging Face folders of Gemma 3, InternVL (OpenGVLab's layout and transformers') and Qwen3-VL: the
# goldens (tests/golden/{gemma3,internvl,qwen3vl}-tiny) written as folders by
# tests/golden/make_hf_families.py hold the same weights as the GGUF pairs; the folder must tokenize,
# capture and answer as the pair does (bit for bit), `convert` must write the pair back (same keys, the
# same tensor bytes), and broken folders must fail naming the file and the tensor or key.
# Usage: tests/cli_hf_families.sh path/to/idscope   (closing line "hffam: N passed, N failed")
set -u
BIN=${1:-build/release/idscope}
PY=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/lib.sh"

if ! "$PY" -c "import numpy" 2>/dev/null; then
    echo "skip hf folders of gemma3, internvl, qwen3vl: $PY with numpy is needed to write them"
    echo "hffam: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
if ! "$PY" tests/golden/make_hf_families.py "$TMP/hf" >"$TMP/make.log" 2>&1; then
    ko make_hf_families
    cat "$TMP/make.log"
    echo "hffam: $pass passed, $fail failed"
    exit 1
fi
ok make_hf_families

# same NAME A.safetensors B.safetensors: every array of two captures equal, bit for bit
same() {
    if "$PY" - "$2" "$3" >"$TMP/cmp" 2>&1 <<'EOF'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: (v["shape"], v["dtype"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert sorted(a) == sorted(b), "arrays %s vs %s" % (sorted(a), sorted(b))
diff = [k for k in a if a[k] != b[k]]
print("%d arrays, %d differ %s" % (len(a), len(diff), diff[:3]))
sys.exit(1 if diff else 0)
EOF
    then ok "$1 ($(cat "$TMP/cmp"))"; else ko "$1 ($(tail -n 1 "$TMP/cmp"))"; fi
}

# sametensors NAME A.gguf B.gguf: the same tensors (names, types, shapes, bytes) and key values, less
# what the converter's files may differ in (name, file type, SentencePiece scores, template, pixel bounds)
sametensors() {
    if "$PY" - "$2" "$3" >"$TMP/cmp" 2>&1 <<'EOF'
import sys
import numpy as np
sys.path.insert(0, "tests/golden")
from make_hf import read_gguf
(akv, a), (bkv, b) = read_gguf(sys.argv[1]), read_gguf(sys.argv[2])
skip = {"general.name", "general.file_type", "tokenizer.ggml.scores", "tokenizer.chat_template",
        "clip.vision.image_min_pixels", "clip.vision.image_max_pixels"}
bad = [k for k in set(a) | set(b) if k not in a or k not in b or a[k].dtype != b[k].dtype or a[k].shape != b[k].shape
       or a[k].tobytes() != b[k].tobytes()]
def eq(x, y):
    return x.tobytes() == y.tobytes() if isinstance(x, np.ndarray) else x == y
kbad = [k for k in (set(akv) | set(bkv)) - skip if k not in akv or k not in bkv or not eq(akv[k], bkv[k])]
print("%d tensors, %d keys; differ: %s %s" % (len(a), len(akv), sorted(bad)[:3], sorted(kbad)[:3]))
sys.exit(1 if bad or kbad else 0)
EOF
    then ok "$1 ($(cat "$TMP/cmp"))"; else ko "$1 ($(tail -n 1 "$TMP/cmp"))"; fi
}

G=tests/golden
Q3T=build/golden/qwen3vl-tiny/text.gguf
pair() { # FOLDER: the golden dir GD and the pair's text file GT
    case $1 in
    gemma3-tiny) GD=$G/gemma3-tiny GT=$G/gemma3-tiny/text.gguf ;;
    internvl-*) GD=$G/internvl-tiny GT=$G/internvl-tiny/text.gguf ;;
    qwen3vl-tiny) GD=$G/qwen3vl-tiny GT=$Q3T ;;
    esac
}

for f in gemma3-tiny internvl-tiny internvl-hf qwen3vl-tiny; do
    pair "$f"
    H=$TMP/hf/$f
    if [ ! -d "$H" ]; then
        skipped "$f (no $Q3T: make)"
        continue
    fi
    # the prompt's tokens, special tokens parsed, as the pair gives them (Gemma: its SentencePiece scores
    # are rebuilt from the merge order)
    "$BIN" tokenize -m "$GT" --special --file "$GD/prompt.txt" >"$TMP/tok-gguf" 2>&1
    expect "tokenize_$f" 0 "" -- "$BIN" tokenize -m "$H" --special --file "$GD/prompt.txt"
    if [ -s "$TMP/tok-gguf" ] && cmp -s "$TMP/out" "$TMP/tok-gguf"; then ok "tokenize_same_$f ($(wc -w <"$TMP/out") tokens)"
    else ko "tokenize_same_$f"; fi
    # capture: the folder and the pair (one pair capture per golden); every site, at every row but for
    # Qwen3-VL (151936 logits a row: the last row, after every other)
    CAP="--all"
    [ "$f" = qwen3vl-tiny ] && CAP="--sites resid,attn_out,mlp_out,attn_probs,logits,image_embd,vision,deepstack --positions last"
    C=$TMP/$(basename "$GD")-gguf.safetensors
    # shellcheck disable=SC2086
    [ -s "$C" ] || "$BIN" capture -m "$GT" --mmproj "$GD/mmproj.gguf" --image "$GD/image.png" --prompt-file "$GD/prompt.txt" \
        $CAP --threads 2 -o "$C" >/dev/null 2>&1
    # shellcheck disable=SC2086
    expect "capture_hf_$f" 0 "" -- "$BIN" capture -m "$H" --image "$GD/image.png" --prompt-file "$GD/prompt.txt" $CAP \
        --threads 2 -o "$TMP/$f-hf.safetensors"
    same "capture_same_$f" "$C" "$TMP/$f-hf.safetensors"
    # convert: the pair back, tensor for tensor
    expect "convert_$f" 0 "wrote" -- "$BIN" convert "$H" -o "$TMP/conv-$f"
    sametensors "convert_text_$f" "$GT" "$TMP/conv-$f/text.gguf"
    sametensors "convert_mmproj_$f" "$GD/mmproj.gguf" "$TMP/conv-$f/mmproj.gguf"
done

# ask on Gemma 3: the same answer and log-probabilities from the folder and from the pair
GD=$G/gemma3-tiny
"$BIN" ask -m "$GD/text.gguf" --mmproj "$GD/mmproj.gguf" --image "$GD/image.png" -q "Where is the red circle?" \
    --choices " left, right" -n 3 --threads 2 >"$TMP/ask-gguf" 2>/dev/null
expect ask_hf_gemma3 0 "log P" -- "$BIN" ask -m "$TMP/hf/gemma3-tiny" --image "$GD/image.png" -q "Where is the red circle?" \
    --choices " left, right" -n 3 --threads 2
if cmp -s "$TMP/out" "$TMP/ask-gguf"; then ok ask_same_gemma3; else ko ask_same_gemma3; diff "$TMP/out" "$TMP/ask-gguf" | head -4; fi

# broken folders: each message names the file and the tensor (or key)
brk() { # SRC: $TMP/b with symbolic links to SRC's files, config.json copied
    rm -rf "$TMP/b"
    mkdir "$TMP/b"
    for x in "$1"/*; do ln -s "$x" "$TMP/b/$(basename "$x")"; done
    rm "$TMP/b/config.json"
    cp "$1/config.json" "$TMP/b/"
}
drop() { # FILE TENSOR: rewrite $TMP/b/FILE (a link) without TENSOR in its header
    rm "$TMP/b/$1"
    "$PY" - "$TMP/src/$1" "$TMP/b/$1" "$2" <<'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
del h[sys.argv[3]]  # its bytes stay, unreferenced
t = json.dumps(h).encode()
t += b" " * ((8 - (8 + len(t)) % 8) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
EOF
}
run_hf() { "$BIN" capture -m "$TMP/b" --image "$GD/image.png" --prompt-file "$GD/prompt.txt" -o "$TMP/x.safetensors"; }

GD=$G/gemma3-tiny
brk "$TMP/hf/gemma3-tiny"
ln -s "$TMP/hf/gemma3-tiny" "$TMP/src"
drop model.safetensors language_model.model.layers.5.post_feedforward_layernorm.weight
expect broken_gemma3_missing_tensor 1 "b/model.safetensors: tensor 'language_model.model.layers.5.post_feedforward_layernorm.weight' is missing" -- run_hf
brk "$TMP/hf/gemma3-tiny"
sed -i 's/"intermediate_size": 48/"intermediate_size": 50/' "$TMP/b/config.json"
expect broken_gemma3_shape 1 "b/model.safetensors: tensor 'vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight' has shape \[48, 32\], expected \[50, 32\]" -- run_hf
brk "$TMP/hf/gemma3-tiny"
sed -i 's/"model_type": "gemma3"/"model_type": "gemma3n"/' "$TMP/b/config.json"
expect broken_gemma3_model_type 1 "b/config.json: model_type 'gemma3n' is not supported" -- run_hf

GD=$G/internvl-tiny
brk "$TMP/hf/internvl-hf"
rm "$TMP/b/model-00002-of-00002.safetensors"
expect broken_internvl_missing_shard 1 "index.json lists tensor 'model\.\(vision_tower\|multi_modal_projector\)[^']*' in model-00002-of-00002.safetensors: .*/b/model-00002-of-00002.safetensors: cannot open" -- run_hf
brk "$TMP/hf/internvl-hf"
sed -i 's/"vision_feature_layer": -1/"vision_feature_layer": -2/' "$TMP/b/config.json"
expect broken_internvl_feature_layer 1 "b/config.json: vision_feature_layer -2 (only -1" -- run_hf
brk "$TMP/hf/internvl-tiny"
rm -f "$TMP/src"
ln -s "$TMP/hf/internvl-tiny" "$TMP/src"
drop model.safetensors vision_model.encoder.layers.1.ls2
expect broken_internvl_missing_ls2 1 "b/model.safetensors: tensor 'vision_model.encoder.layers.1.ls2' is missing" -- run_hf
brk "$TMP/hf/internvl-tiny"
rm "$TMP/b/merges.txt"
expect broken_internvl_no_merges 1 "b/merges.txt" -- run_hf

GD=$G/qwen3vl-tiny
if [ -d "$TMP/hf/qwen3vl-tiny" ]; then
    brk "$TMP/hf/qwen3vl-tiny"
    "$PY" - "$TMP/b/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["vision_config"]["deepstack_visual_indexes"] = [0, 3]
json.dump(c, open(sys.argv[1], "w"))
EOF
    expect broken_qwen3vl_deepstack_index 1 "b/config.json: deepstack_visual_indexes\[1\]" -- run_hf
    brk "$TMP/hf/qwen3vl-tiny"
    rm -f "$TMP/src"
    ln -s "$TMP/hf/qwen3vl-tiny" "$TMP/src"
    drop model.safetensors model.visual.deepstack_merger_list.1.linear_fc2.bias
    expect broken_qwen3vl_missing_merger 1 "b/model.safetensors: tensor 'model.visual.deepstack_merger_list.1.linear_fc2.bias' is missing" -- run_hf
else
    skipped "broken qwen3vl folders (no $Q3T)"
fi

echo "hffam: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
