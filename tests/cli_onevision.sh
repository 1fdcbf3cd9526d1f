#!/bin/sh
# LLaVA-OneVision / LLaVA-Video-Qwen2 through the CLI, on the random-weight HF folder of
# tests/golden/onevision-tiny (made by tests/golden/make_onevision.py): capture --all (image), ask
# (image, video), ids extract, steer belief, temporal extract / swap / steer, convert (the pair gives the
# folder's capture bit for bit), and malformed folders failing with the file and the key or tensor.
# Usage: tests/cli_onevision.sh path/to/idscope   (closing line "onevision: N passed, N failed")
set -u
BIN=${1:-build/release/idscope}
. "$(dirname "$0")/lib.sh"

# the arrays of a capture (the safetensors header up to the metadata)
header() { head -c $((8 + $(head -c 8 "$1" | od -An -tu8 | tr -d ' '))) "$1" | tail -c +9; }

OV=tests/golden/onevision-tiny
M="-m $OV/model --threads 2"
expect ov_capture_all 0 "wrote" -- "$BIN" capture $M --image "$OV/image.png" --prompt-file "$OV/prompt.txt" --all \
    -o "$TMP/ov.safetensors"
H=$(header "$TMP/ov.safetensors")
if echo "$H" | grep -q '"resid":{"dtype":"F32","shape":\[4,273,32\]' && echo "$H" | grep -q '"image_embd":{"dtype":"F32","shape":\[246,32\]' &&
   echo "$H" | grep -q '"vision":{"dtype":"F32","shape":\[2,525,32\]' && echo "$H" | grep -q '"logits":{"dtype":"F32","shape":\[273,916\]' &&
   echo "$H" | grep -q '"attn_probs":{"dtype":"F32","shape":\[3,273,4,273\]'; then ok ov_capture_shapes; else ko ov_capture_shapes; fi
expect ov_ask 0 "log P(right)" -- "$BIN" ask $M --image "$OV/image.png" \
    --question "Is the red circle to the left or right of the blue square?" --choices left,right -n 2
expect ov_ask_video 0 "log P(after)" -- "$BIN" ask $M --video "$OV/frames" --frames 4 \
    -q "Does the circle come before or after the square?" --choices before,after -n 2
expect ov_ask_edit 0 "unedited" -- "$BIN" ask $M --image "$OV/image.png" -q "Where is the circle?" -n 1 --choices left,right \
    --add "$TMP/ov.safetensors:image_embd[0]" --layer 1 --positions image
expect ov_ids_extract 0 "wrote" -- "$BIN" ids extract $M --out "$TMP/ids" --objects "red circle,blue square" --grid 2 --sizes 1
expect ov_steer_belief 0 "^best 3 layers: ID" -- "$BIN" steer belief --ids "$TMP/ids/ids.safetensors" $M --out "$TMP/steer" --n 2
expect ov_temporal_extract 0 "wrote" -- "$BIN" temporal extract $M --out "$TMP/temporal" --objects "red circle,blue square" \
    --frames 4 --image-size 64
expect ov_temporal_swap 0 "^3,objects," -- "$BIN" temporal swap $M --out "$TMP/temporal" --objects "red circle,blue square" \
    --frames 4 --image-size 64 --n 1
expect ov_temporal_steer 0 "^monotonic layers" -- "$BIN" temporal steer --ids "$TMP/temporal/temporal.safetensors" $M \
    --out "$TMP/temporal" --objects "red circle,blue square" --image-size 64 --n 1
# convert writes the pair (idscope's projector type: llama.cpp has none for this family); the pair's
# capture equals the folder's, array for array
expect ov_convert 0 "" -- "$BIN" convert "$OV/model" -o "$TMP/pair"
expect ov_convert_info 0 '"llava_onevision"' -- "$BIN" info "$TMP/pair/mmproj.gguf"
expect ov_convert_capture 0 "wrote" -- "$BIN" capture -m "$TMP/pair/text.gguf" --mmproj "$TMP/pair/mmproj.gguf" --threads 2 \
    --image "$OV/image.png" --prompt-file "$OV/prompt.txt" --all -o "$TMP/ovpair.safetensors"
data() { tail -c +$((9 + $(head -c 8 "$1" | od -An -tu8 | tr -d ' '))) "$1" | cksum; }
if [ "$(data "$TMP/ov.safetensors")" = "$(data "$TMP/ovpair.safetensors")" ] &&
   header "$TMP/ovpair.safetensors" | grep -q '"vision":{"dtype":"F32","shape":\[2,525,32\]'
then ok ov_convert_same_capture; else ko ov_convert_same_capture; fi
# malformed folders
mkdir -p "$TMP/bad"
for f in model.safetensors tokenizer.json tokenizer_config.json preprocessor_config.json; do ln -s "$PWD/$OV/model/$f" "$TMP/bad/$f"; done
sed 's/"llava_onevision"/"llava_qwen"/' "$OV/model/config.json" >"$TMP/bad/config.json"
expect ov_bad_llava_qwen 1 "config.json: model_type 'llava_qwen'.*not supported" -- "$BIN" ask -m "$TMP/bad" \
    --image "$OV/image.png" -q "Where?"
sed 's/"hidden_size": 32,/"hidden_size": 48,/' "$OV/model/config.json" >"$TMP/bad/config.json"
expect ov_bad_shape 1 "model.safetensors: tensor 'model.language_model.embed_tokens.weight' has shape \[916, 32\], expected \[916, 48\]" \
    -- "$BIN" ask -m "$TMP/bad" --image "$OV/image.png" -q "Where?"
cp "$OV/model/config.json" "$TMP/bad/config.json"
printf '{"weight_map": {"model.image_newline": "model-00002-of-00002.safetensors"}}' >"$TMP/bad/model.safetensors.index.json"
expect ov_bad_shard 1 "lists tensor 'model.image_newline' in model-00002-of-00002.safetensors" -- "$BIN" ask -m "$TMP/bad" \
    --image "$OV/image.png" -q "Where?"

echo "onevision: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
