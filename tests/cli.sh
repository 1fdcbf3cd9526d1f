#!/bin/sh
# Command-line tests: exit codes, usage messages, outputs. Usage: tests/cli.sh path/to/idscope
set -u
BIN=${1:-build/release/idscope}
SH=${IDSCOPE_SHARED:-../shared}
. "$(dirname "$0")/lib.sh"

expect help 0 "commands:" -- "$BIN" --help
expect no_args 2 "usage" -- "$BIN"
expect unknown_cmd 2 "unknown command" -- "$BIN" frobnicate
for c in info tensor tokenize; do
    expect "${c}_help" 0 "usage: idscope $c" -- "$BIN" "$c" --help
done
expect info_golden 0 "architecture: llama" -- "$BIN" info "$SH/golden/llava-tiny/text.gguf"
expect info_tensor_row 0 "token_embd.weight" -- "$BIN" info "$SH/golden/llava-tiny/text.gguf"
expect info_array_summary 0 "\[str x 32000\]" -- "$BIN" info "$SH/golden/llava-tiny/text.gguf"
expect info_missing_arg 2 "missing FILE.gguf" -- "$BIN" info
expect info_bad_option 2 "unknown option" -- "$BIN" info --frob x.gguf
expect info_missing_file 1 "cannot open" -- "$BIN" info "$TMP/none.gguf"
expect info_broken 1 "offset" -- "$BIN" info tests/fixtures/broken/tensor_past_end.gguf
expect info_truncated 1 "truncated" -- "$BIN" info tests/fixtures/broken/truncated_header.gguf

expect tensor_q4k 0 "" -- "$BIN" tensor "$SH/golden/quants/quants.gguf" Q4_K -o "$TMP/q4k.npy"
expect tensor_expected 0 "" -- "$BIN" tensor "$SH/golden/quants/quants.gguf" Q4_K.expected -o "$TMP/q4k_ref.npy"
if cmp -s "$TMP/q4k.npy" "$TMP/q4k_ref.npy"; then ok tensor_matches_ggml; else ko tensor_matches_ggml; fi
expect tensor_missing_name 1 "no tensor named" -- "$BIN" tensor "$SH/golden/quants/quants.gguf" nope -o "$TMP/x.npy"
expect tensor_missing_out 2 "missing -o" -- "$BIN" tensor "$SH/golden/quants/quants.gguf" Q4_K
expect tensor_bad_dir 1 "cannot create" -- "$BIN" tensor "$SH/golden/quants/quants.gguf" Q4_K -o /nonexistent/x.npy
if [ ! -e /nonexistent/x.npy ] && [ ! -e "$TMP/x.npy" ]; then ok tensor_no_partial_output; else ko tensor_no_partial_output; fi

# tokenize: the llama.cpp vectors, through the CLI
expect tokenize_spm 0 "^1 15043 3186$" -- "$BIN" tokenize -m "$SH/vocab/ggml-vocab-llama-spm.gguf" "Hello world"
expect tokenize_no_bos 0 "^15043 3186$" -- "$BIN" tokenize -m "$SH/vocab/ggml-vocab-llama-spm.gguf" --no-bos "Hello world"
printf 'Hello world' >"$TMP/t.txt"
expect tokenize_file 0 "^1 15043 3186$" -- "$BIN" tokenize -m "$SH/vocab/ggml-vocab-llama-spm.gguf" --file "$TMP/t.txt"
expect tokenize_pieces 0 "15043	" -- "$BIN" tokenize -m "$SH/vocab/ggml-vocab-llama-spm.gguf" --pieces "Hello world"
expect tokenize_qwen_special 0 "^151644 872$" -- "$BIN" tokenize -m "$SH/vocab/ggml-vocab-qwen2.gguf" --special "<|im_start|>user"
expect tokenize_no_model 2 "missing -m" -- "$BIN" tokenize "Hello"
expect tokenize_no_text 2 "missing TEXT" -- "$BIN" tokenize -m "$SH/vocab/ggml-vocab-qwen2.gguf"
expect tokenize_both 2 "not both" -- "$BIN" tokenize -m "$SH/vocab/ggml-vocab-qwen2.gguf" --file "$TMP/t.txt" hi
expect tokenize_missing_file 1 "cannot read" -- "$BIN" tokenize -m "$SH/vocab/ggml-vocab-qwen2.gguf" --file "$TMP/none.txt"
expect tokenize_not_vocab 1 "tokenizer.ggml.model" -- "$BIN" tokenize -m "$SH/golden/quants/quants.gguf" hi

# the option parser: --opt=value and --opt value, -- ends the options, one message form for unknown
# options, missing values, non-numbers and values out of range (command, option, value, valid range)
V="$SH/vocab/ggml-vocab-llama-spm.gguf"
expect opt_equals 0 "^15043 3186$" -- "$BIN" tokenize --model="$V" --no-bos "Hello world"
expect opt_equals_number 0 '\[str x 32000\] \["<unk>", "<s>", \.\.\. 31998 more\]' -- "$BIN" info --max-items=2 "$SH/golden/llava-tiny/text.gguf"
expect opt_double_dash 0 "^1 15043 3186$" -- "$BIN" tokenize -m "$V" -- "Hello world"
expect opt_double_dash_option_text 0 "^1 1192 1217 29899 27737$" -- "$BIN" tokenize -m "$V" -- "--no-bos"
expect opt_unknown 2 "idscope swap: unknown option '--frob'" -- "$BIN" swap --frob 1 --out "$TMP/x"
expect opt_unknown_equals 2 "unknown option '--frob=1'" -- "$BIN" info --frob=1 x.gguf
expect opt_missing_value 2 "idscope swap: --out needs a value (DIR)" -- "$BIN" swap --out
expect opt_not_integer 2 "idscope swap: --n abc is not an integer (1\.\.2147483647)" -- "$BIN" swap --n abc --out "$TMP/x"
expect opt_out_of_range 2 "idscope ask: --n 5000 is outside 0\.\.4096" -- "$BIN" ask -n 5000 -m x --mmproj y -q z
expect opt_out_of_range_equals 2 "idscope capture: --frames 40 is outside 1\.\.32" -- "$BIN" capture --frames=40 -m x --mmproj y -q z -o o
expect opt_float_range 2 "idscope steer belief: --factor 0 is outside (0, inf)" -- "$BIN" steer belief --ids x --out y --factor 0
expect opt_float_list 2 "idscope stimuli: --sizes 0.5,2 has 2, which is outside (0.05, 1\]" -- "$BIN" stimuli grid --out "$TMP/x" --sizes 0.5,2
expect opt_flag_value 2 "idscope ask: --json takes no value (--json=yes given)" -- "$BIN" ask --json=yes -m x --mmproj y -q z
expect opt_positions 2 "idscope capture: --positions 3-1 is not all, last" -- "$BIN" capture --positions 3-1 -m x --mmproj y -q z -o o
expect opt_extra_arg 2 "unexpected argument 'extra'" -- "$BIN" report "$TMP" extra
"$BIN" --help >"$TMP/help" 2>&1
for c in info tensor tokenize capture ask stimuli train eval ids swap steer depth score report temporal demo; do
    if grep -q "^  $c  *[A-Za-z]" "$TMP/help"; then ok "help_lists_$c"; else ko "help_lists_$c"; fi
done
for c in info tensor tokenize capture ask stimuli train eval "ids extract" "ids stats" "ids export-cvec" swap "steer belief" "steer grid" depth \
    score report "temporal extract" "temporal swap" "temporal steer" demo; do
    # shellcheck disable=SC2086
    expect "help_$(echo "$c" | tr ' ' _)" 0 "usage: idscope $c" -- "$BIN" $c --help
done
expect help_family_lists_all 0 "usage: idscope ids stats" -- "$BIN" ids --help
expect help_documents_p 0 "^  -p, --prompt TEXT" -- "$BIN" capture --help

# capture / ask on the golden LLaVA-shaped model
G="$SH/golden/llava-tiny"
for c in capture ask; do
    expect "${c}_help" 0 "usage: idscope $c" -- "$BIN" "$c" --help
done
expect capture_all 0 "wrote" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" \
    --prompt-file "$G/prompt.txt" -o "$TMP/cap.safetensors" --all
if [ -s "$TMP/cap.safetensors" ] && head -c 4000 "$TMP/cap.safetensors" | grep -a -q '"vision"'; then ok capture_file; else ko capture_file; fi
if head -c 8000 "$TMP/cap.safetensors" | grep -a -q '"provenance":"{\\"idscope\\":' &&
   head -c 8000 "$TMP/cap.safetensors" | grep -a -q 'images\\":\[\\"fnv1a64:'; then ok capture_provenance;
else ko capture_provenance; fi
expect capture_word 0 "" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" \
    --prompt-file "$G/prompt.txt" -o "$TMP/w.safetensors" --layers 2 --positions word:square
expect capture_no_output 2 "missing -o" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" --prompt x
expect capture_bad_site 2 "unknown site" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" \
    --prompt-file "$G/prompt.txt" -o "$TMP/x.safetensors" --sites resid,mlp
expect capture_bad_layer 2 "--layers 7 is outside 0..4" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" \
    --prompt-file "$G/prompt.txt" -o "$TMP/x.safetensors" --layers 7
expect capture_missing_word 1 "frog" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" \
    --prompt-file "$G/prompt.txt" -o "$TMP/x.safetensors" --positions word:frog
expect capture_missing_image 1 "cannot open image" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --image "$TMP/none.png" --prompt-file "$G/prompt.txt" -o "$TMP/x.safetensors"
printf 'not an image' >"$TMP/bad.png"
expect capture_corrupt_image 1 "cannot decode image" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --image "$TMP/bad.png" --prompt-file "$G/prompt.txt" -o "$TMP/x.safetensors"
expect capture_marker_count 1 "2 <image> markers" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --image "$G/image.png" --prompt "USER: <image><image> hi" -o "$TMP/x.safetensors"
expect capture_swapped_files 1 "expected 'clip'" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/text.gguf" \
    --image "$G/image.png" --prompt-file "$G/prompt.txt" -o "$TMP/x.safetensors"
expect ask_choices 0 "log P(left)" -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" \
    --question "Is the red circle to the left or right of the blue square?" --choices " left, right" -n 3
expect ask_json 0 '"choices": \[{"choice": "left"' -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --image "$G/image.png" --question "Where?" --choices left,right -n 2 --json
LONGQ=$(yes left | head -n 20001 | tr '\n' ' ')
expect ask_longer_than_context 1 "20029 rows long (20013 text tokens, 16 image rows) but the model's context is 2048" -- \
    "$BIN" ask --image "$G/image.png" -m models/tiny-llava/text.gguf \
    --mmproj models/tiny-llava/mmproj.gguf -q "$LONGQ" -n 1 --threads 1
expect ask_two_prompts 2 "exactly one" -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" \
    --question a --prompt b

# messages a new user meets: each names what is wrong and what would be right
expect ask_no_image 2 "idscope ask: --question asks about an image: give --image IMG or --video V" -- "$BIN" ask \
    -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" -q "Where is the circle?"
expect ask_empty_answer_said 0 "answer: (empty: -n 0 asks for none)" -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --image "$G/image.png" -q "Where?" -n 0 --threads 1
expect ask_text_prompt_no_image 0 "answer: " -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --prompt "USER: Hello ASSISTANT:" -n 2 --threads 1
{ printf 'P6\n3000 17\n255\n'; head -c 153000 /dev/zero; } >"$TMP/wide.ppm"
{ printf 'P6\n1 1\n255\n'; printf '\377\000\000'; } >"$TMP/dot.ppm"
expect image_wide_warned 0 "wide.ppm is 3000x17, not square (aspect 176:1); the vision tower (projector mlp) pads it to 3000x3000 and resizes it to 56x56" -- \
    "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$TMP/wide.ppm" -q "Where?" -n 1 --threads 1
expect image_tiny_warned 0 "dot.ppm is only 1x1 pixels; it is blown up to 56x56" -- "$BIN" ask -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --image "$TMP/dot.ppm" -q "Where?" -n 1 --threads 1
expect image_wide_warned_qwen 0 "wide.ppm is 3000x17 (aspect 176:1); the vision tower (projector qwen2vl_merger) stretches it to 2996x28" -- \
    "$BIN" ask -m "$SH/golden/qwen2vl-tiny/text.gguf" --mmproj "$SH/golden/qwen2vl-tiny/mmproj.gguf" --image "$TMP/wide.ppm" \
    -q "Where?" -n 1 --threads 1
expect image_wide_warned_gemma3 0 "wide.ppm is 3000x17 (aspect 176:1); the vision tower (projector gemma3) stretches it to 224x224" -- \
    "$BIN" ask -m tests/golden/gemma3-tiny/text.gguf --mmproj tests/golden/gemma3-tiny/mmproj.gguf --image "$TMP/wide.ppm" \
    -q "Where?" -n 1 --threads 1
expect image_square_quiet 0 "" -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" -q "Where?" -n 1 --threads 1
if grep -q "warning" "$TMP/err"; then ko image_square_no_warning; else ok image_square_no_warning; fi
expect image_unknown_format 1 "not-image.png: cannot decode image: its first bytes are none of the supported formats (idscope reads PNG, JPEG, BMP, GIF (first frame) and 8-bit binary PGM/PPM)" -- \
    sh -c "printf 'hello' >'$TMP/not-image.png' && exec '$BIN' ask -m '$G/text.gguf' --mmproj '$G/mmproj.gguf' --image '$TMP/not-image.png' -q x"
head -c 100 "$G/image.png" >"$TMP/cut.png"
expect image_truncated 1 "cut.png: cannot decode image: PNG: the data ends early (a truncated file) (idscope reads PNG, JPEG" -- \
    "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$TMP/cut.png" -q x
expect info_text_file 1 "README.md: offset 0: not a GGUF file: it starts with '# id' (bytes 23 20 69 64: text); a GGUF file starts with 'GGUF'" -- \
    "$BIN" info README.md
: >"$TMP/empty.gguf"
expect info_empty_file 1 "not a GGUF file: the file is empty" -- "$BIN" info "$TMP/empty.gguf"
expect capture_word_not_in_prompt 1 "selector: word 'frog' is not a word of this prompt after the image (its token 9102 'rog' does not occur there); its words: the, red, circle" -- \
    "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" --prompt-file "$G/prompt.txt" \
    -o "$TMP/x.safetensors" --positions word:frog
printf '{"layers": 2, "width": [1, 2' >"$TMP/cut.json"
expect train_config_truncated 1 "cut.json: line 1, column 29 (byte 28 of 28): the JSON ends before it is complete" -- \
    "$BIN" train --config "$TMP/cut.json" --out "$TMP/x"
printf '{"layers": 2,\n "width": 3x}' >"$TMP/typo.json"
expect train_config_bad_json 1 "typo.json: line 2, column 12 (byte 25): not valid JSON at 'x}'" -- \
    "$BIN" train --config "$TMP/typo.json" --out "$TMP/x"
expect capture_npz_refused 2 "idscope capture: -o $TMP/x.npz names a .npz file, but capture writes safetensors" -- "$BIN" capture \
    -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" -q x -o "$TMP/x.npz"
if [ ! -e "$TMP/x.npz" ]; then ok capture_npz_nothing_written; else ko capture_npz_nothing_written; fi
LONGQ2=$(yes left | head -n 1990 | tr '\n' ' ')
expect ask_near_context 0 "warning: the prompt is .* rows and the answer up to 16 tokens: .* of the model's context of 2048" -- \
    "$BIN" ask --image "$G/image.png" -m models/tiny-llava/text.gguf --mmproj models/tiny-llava/mmproj.gguf -q "$LONGQ2" -n 16 --threads 1
expect ask_past_context 0 "past the model's context of 2048" -- "$BIN" ask --image "$G/image.png" -m models/tiny-llava/text.gguf \
    --mmproj models/tiny-llava/mmproj.gguf -q "$LONGQ2" -n 100 --threads 1
# progress: to a file one line per phase end (no carriage returns), nothing with --quiet
expect progress_to_file 0 "" -- "$BIN" stimuli grid --out "$TMP/pg" --size 32 --grid 2 --limit 3
if grep -q "grid: 3/3 done in" "$TMP/err" && ! tr -d '\n' <"$TMP/err" | grep -q "$(printf '\r')"; then ok progress_lines_in_a_log
else ko "progress_lines_in_a_log ($(od -c "$TMP/err" | head -3))"; fi
expect progress_quiet 0 "" -- "$BIN" stimuli grid --out "$TMP/pg" --size 32 --grid 2 --limit 3 --quiet
if ! grep -q "grid" "$TMP/err" && grep -q "wrote" "$TMP/err"; then ok progress_quiet_silent; else ko "progress_quiet_silent ($(head -2 "$TMP/err"))"; fi
expect help_quiet 0 "--quiet  *no progress on stderr" -- "$BIN" swap --help
if command -v script >/dev/null 2>&1; then # a terminal: a bar with the rate and the time left
    script -qec "'$BIN' stimuli grid --out '$TMP/pt' --size 32 --grid 2 --limit 3" /dev/null >"$TMP/tty.txt" 2>&1
    if grep -q "grid \[#*" "$TMP/tty.txt" && grep -q "3/3 in" "$TMP/tty.txt"; then ok progress_bar_on_a_terminal
    else ko "progress_bar_on_a_terminal ($(od -c "$TMP/tty.txt" | head -3))"; fi
else echo "skip progress_bar_on_a_terminal (script(1) not found)"; fi

# general edits (--add / --replace groups) and the block sites
GM="-m $G/text.gguf --mmproj $G/mmproj.gguf --image $G/image.png"
# a vector of 64 float32 (1/8 each) as a .npy file, and a [2, 64] one
npy() { # npy FILE ROWS: a little-endian float32 .npy of ROWS x 64 values 0.125
    if [ "$2" -eq 1 ]; then shape='(64,)'; else shape="($2, 64)"; fi
    hdr=$(printf "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" "$shape")
    pad=$((128 - 10 - ${#hdr} - 1))
    { printf '\223NUMPY\001\000\166\000%s' "$hdr"; printf "%${pad}s\n" ""
      i=0; while [ $i -lt $(($2 * 64)) ]; do printf '\000\000\000\076'; i=$((i + 1)); done; } >"$1"
}
npy "$TMP/v.npy" 1
npy "$TMP/v2.npy" 2
expect ask_add 0 "unedited" -- "$BIN" ask $GM --question "Is the red circle to the left or right of the blue square?" \
    --choices left,right -n 2 --add "$TMP/v.npy" --layer blocks.2.hook_resid_post --positions word:circle --scale 8
expect ask_add_json 0 '"logprob_unedited": ' -- "$BIN" ask $GM -q "Where is the circle?" --choices left,right -n 1 --json \
    --add "$TMP/v.npy" --layer 3 --add "$TMP/v2.npy[1]" --layer attn_out:1 --positions text --scale -2
if grep -q '"logprob": \(-[0-9.]*\), "logprob_unedited": \1}' "$TMP/out"; then ko ask_add_changes_logprob; else ok ask_add_changes_logprob; fi
expect ask_replace 0 "log P(left)" -- "$BIN" ask $GM -q "Where is the circle?" --choices left,right -n 1 \
    --replace "$TMP/v.npy" --layer blocks.1.hook_mlp_out --positions image
expect edit_layer_alone 2 "--layer belongs to --add or --replace" -- "$BIN" ask $GM -q x --layer 3 --add "$TMP/v.npy"
expect edit_no_layer 2 "needs --layer L" -- "$BIN" ask $GM -q x --add "$TMP/v.npy"
expect edit_layer_range 2 "idscope ask: --layer 9 is outside 0..4 (the model's layers)" -- "$BIN" ask $GM -q x \
    --add "$TMP/v.npy" --layer 9
expect edit_block_range 2 "--layer blocks.4.hook_mlp_out is outside blocks 0..3" -- "$BIN" capture $GM -q x -o "$TMP/x.st" \
    --add "$TMP/v.npy" --layer blocks.4.hook_mlp_out
expect edit_layer_form 2 "--layer hook_resid_post is not a layer L" -- "$BIN" ask $GM -q x --add "$TMP/v.npy" --layer hook_resid_post
expect edit_twice 2 "--layer is given twice for --add" -- "$BIN" ask $GM -q x --add "$TMP/v.npy" --layer 1 --layer 2
expect edit_scale 2 "--scale x is not a number" -- "$BIN" ask $GM -q x --add "$TMP/v.npy" --layer 1 --scale x
expect edit_missing_file 1 "$TMP/none.npy: cannot open" -- "$BIN" ask $GM -q x --add "$TMP/none.npy" --layer 1
expect edit_not_vector 2 "is not a .npy file or FILE.safetensors" -- "$BIN" ask $GM -q x --add "$TMP/v.txt" --layer 1
expect edit_index_range 1 "index 2 of axis 0" -- "$BIN" ask $GM -q x --add "$TMP/v2.npy[2]" --layer 1
expect edit_rows_mismatch 1 "ADD vector buffer holds 128 floats, expected 1024 (16 rows x 64)" -- "$BIN" ask $GM -q x \
    --add "$TMP/v2.npy" --layer 1 --positions image
expect edit_word_missing 1 "--add $TMP/v.npy --layer 1 --positions word:frog --scale 1: selector: word 'frog'" -- \
    "$BIN" capture $GM -q x -o "$TMP/x.st" --add "$TMP/v.npy" --layer 1 --positions word:frog
expect edit_width 1 "vectors of 64 values, but the model's n_embd is 128" -- "$BIN" ask -m models/tiny-llava/text.gguf \
    --mmproj models/tiny-llava/mmproj.gguf --image "$G/image.png" -q x --add "$TMP/v.npy" --layer 1
expect capture_block_sites 0 "wrote" -- "$BIN" capture $GM --prompt-file "$G/prompt.txt" -o "$TMP/sites.safetensors" \
    --layers 1,4 --sites attn_out,mlp_out,attn_probs --add "$TMP/v.npy" --layer 2 --positions word:circle
if head -c 12000 "$TMP/sites.safetensors" | grep -a -q '"attn_probs":{"dtype":"F32","shape":\[1,42,4,42\]' &&
   head -c 12000 "$TMP/sites.safetensors" | grep -a -q '"block_layers":"1"' &&
   head -c 12000 "$TMP/sites.safetensors" | grep -a -q '"token_strings":"\[\\"<s>\\",\\" US\\"' &&
   head -c 12000 "$TMP/sites.safetensors" | grep -a -q '"roles":"\[\\"text\\"' &&
   head -c 12000 "$TMP/sites.safetensors" | grep -a -q 'edits\\":\[\\"--add '; then
    ok capture_block_sites_file; else ko capture_block_sites_file; fi
expect capture_text_only 0 "wrote" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --prompt "USER: Hello ASSISTANT:" \
    --sites logits -o "$TMP/text.safetensors"
expect capture_bad_site_lists_new 2 "(resid, attn_out, mlp_out, attn_probs, logits" -- "$BIN" capture $GM -q x -o "$TMP/x.st" --sites mlp

# stimuli
expect stimuli_help 0 "usage: idscope stimuli" -- "$BIN" stimuli --help
expect stimuli_grid 0 "manifest.json" -- "$BIN" stimuli grid --out "$TMP/st" --size 64 --grid 3 --sizes 0.8 --mirror --limit 6
if [ -f "$TMP/st/grid_00005_mirror.png" ] && grep -q '"variant_of"' "$TMP/st/manifest.json"; then ok stimuli_files; else ko stimuli_files; fi
expect stimuli_video 0 "" -- "$BIN" stimuli video --out "$TMP/sv" --size 48 --frames 4 --limit 2
if [ -f "$TMP/sv/video_00001/frame_03.png" ]; then ok stimuli_video_frames; else ko stimuli_video_frames; fi
expect stimuli_list 0 "red circle" -- "$BIN" stimuli --list
expect stimuli_bad_set 2 "unknown set" -- "$BIN" stimuli spiral --out "$TMP/x"
expect stimuli_no_out 2 "missing --out" -- "$BIN" stimuli grid
expect stimuli_unknown_object 1 "unknown object 'plaid unicorn'" -- "$BIN" stimuli grid --out "$TMP/x" --objects "red circle,plaid unicorn"
expect stimuli_grid_too_big 1 "does not fit" -- "$BIN" stimuli grid --out "$TMP/x" --size 32 --grid 16
expect stimuli_one_cell 1 "two objects" -- "$BIN" stimuli grid --out "$TMP/x" --grid 1
expect stimuli_coco 0 "3 records, 4 rows skipped" -- "$BIN" stimuli coco --coco-json tests/fixtures/coco/coco_qa_two_obj.json \
    --coco-images /data/val2017 --out "$TMP/coco"

# Qwen2-VL golden: capture and ask work unchanged
Q="$SH/golden/qwen2vl-tiny"
expect qwen_capture 0 "wrote" -- "$BIN" capture -m "$Q/text.gguf" --mmproj "$Q/mmproj.gguf" --image "$Q/image.png" \
    --prompt-file "$Q/prompt.txt" -o "$TMP/q.safetensors" --positions image --layers 1,3
expect qwen_ask 0 "log P(left)" -- "$BIN" ask -m "$Q/text.gguf" --mmproj "$Q/mmproj.gguf" --image "$Q/image.png" \
    --question "Is the red circle to the left or right of the blue square?" --choices left,right -n 2

# train / eval: a few steps on a very small config
expect train_help 0 "usage: idscope train" -- "$BIN" train --help
expect eval_help 0 "usage: idscope eval" -- "$BIN" eval --help
expect train_tiny 0 "wrote" -- "$BIN" train --config tests/fixtures/tiny-train.json --out "$TMP/tiny"
if [ -s "$TMP/tiny/text.gguf" ] && [ -s "$TMP/tiny/mmproj.gguf" ] && [ "$(wc -l <"$TMP/tiny/train-log.jsonl")" -eq 6 ]; then
    ok train_outputs; else ko train_outputs; fi
expect eval_json 0 '^{"left-right": [0-9.]*, "above-below": [0-9.]*' -- "$BIN" eval -m "$TMP/tiny/text.gguf" \
    --mmproj "$TMP/tiny/mmproj.gguf" --task all --n 4 --json --threads 1
expect eval_line 0 "^before-after accuracy [0-9]*/3$" -- "$BIN" eval -m "$TMP/tiny/text.gguf" \
    --mmproj "$TMP/tiny/mmproj.gguf" --task before-after --n 3 --threads 1
expect eval_bad_task 2 "--task juggling is not one of left-right," -- "$BIN" eval -m "$TMP/tiny/text.gguf" --mmproj "$TMP/tiny/mmproj.gguf" --task juggling
expect eval_one_path 2 "give both" -- "$BIN" eval -m "$TMP/tiny/text.gguf" --task left-right
expect train_no_config 2 "missing --config" -- "$BIN" train --out "$TMP/x"
printf '{"layers": "six"}' >"$TMP/bad.json"
expect train_bad_config 1 "must be a number" -- "$BIN" train --config "$TMP/bad.json" --out "$TMP/x"

# ids extract on the golden model (tiny grid)
expect ids_help 0 "usage: idscope ids extract" -- "$BIN" ids extract --help
expect ids_extract 0 "wrote" -- "$BIN" ids extract -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --out "$TMP/ids" \
    --objects "red circle,blue square" --grid 2 --sizes 0.9 --threads 1
if [ -s "$TMP/ids/ids.safetensors" ] && grep -q '"grid":[[:space:]]*2' "$TMP/ids/ids.json"; then ok ids_files; else ko ids_files; fi
expect ids_stats 0 "^layer,r2,plane,pca_var,pair_cosine" -- "$BIN" ids stats "$TMP/ids"
if [ -s "$TMP/ids/stats.json" ] && [ "$(wc -l <"$TMP/ids/stats.csv")" -eq 6 ]; then ok ids_stats_files; else ko ids_stats_files; fi
expect ids_stats_missing 1 "cannot open" -- "$BIN" ids stats "$TMP/none"
expect ids_no_sub 2 "missing subcommand" -- "$BIN" ids
expect ids_bad_object 1 "unknown object 'teapot'" -- "$BIN" ids extract -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --out "$TMP/ids2" --objects "red circle,teapot"

# swap on the golden model
expect swap_help 0 "usage: idscope swap" -- "$BIN" swap --help
expect swap_run 0 "^0,image,1.0000" -- "$BIN" swap -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --out "$TMP/swap" --n 2 --threads 1
if [ -s "$TMP/swap/swap.json" ] && tr -d ' \t\n' < "$TMP/swap/swap.json" | grep -q '"edit":"mirror"'; then ok swap_files; else ko swap_files; fi
: > "$TMP/notadir"
expect swap_out_unwritable 1 "notadir: not a folder" -- "$BIN" swap -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --out "$TMP/notadir" --n 1 --threads 1
if ls "$TMP/swap" | grep -q '\.tmp$'; then ko swap_no_temp_left; else ok swap_no_temp_left; fi
expect swap_no_out 2 "missing --out" -- "$BIN" swap -m "$G/text.gguf" --mmproj "$G/mmproj.gguf"

# steer belief with the IDs extracted above
expect steer_help 0 "usage: idscope steer belief" -- "$BIN" steer --help
expect steer_run 0 "^best 3 layers: ID" -- "$BIN" steer belief --ids "$TMP/ids/ids.safetensors" -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --out "$TMP/steer" --n 2 --threads 1
if grep -q '"best3_id"' "$TMP/steer/steer-belief.json"; then ok steer_files; else ko steer_files; fi
# a chat model (not made by idscope train) is asked with the paper's instruction and scored by the
# case variants of each answer word; the result says which
J=$(tr -d ' \t\n' < "$TMP/steer/steer-belief.json")
case "$J" in *'"instruction":"Answer\"{first}\"or\"{second}\"only."'*'"answer_tokens":[{"relation":"left_right","left":[{"token":2175,"piece":"▁left","variant":"left"},{"token":1563'*)
    ok steer_answer_tokens_listed ;;
*) ko steer_answer_tokens_listed ;;
esac
expect steer_instruction_both 2 "not both" -- "$BIN" steer belief --ids x --out y --instruction "Say {first}." --no-instruction
expect steer_no_instruction 0 "^best 3 layers: ID" -- "$BIN" steer belief --ids "$TMP/ids/ids.safetensors" -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --out "$TMP/steer-bare" --n 1 --threads 1 --no-instruction --greedy 0
if tr -d ' \t\n' < "$TMP/steer-bare/steer-belief.json" | grep -q '"instruction":"",'; then ok steer_no_instruction_recorded
else ko steer_no_instruction_recorded; fi
expect steer_grid 0 "mean change of log P(left)" -- "$BIN" steer grid --ids "$TMP/ids/ids.safetensors" -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --out "$TMP/steer" --n 1 --layers 2 --threads 1
if grep -q '"delta"' "$TMP/steer/steer-grid-left_right.json"; then ok steer_grid_files; else ko steer_grid_files; fi
expect steer_grid_near_far 0 "mean change of log P(near)" -- "$BIN" steer grid --ids "$TMP/ids/ids.safetensors" -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --out "$TMP/steer" --n 1 --layers 2 --threads 1 --relation near-far
expect steer_grid_between 0 "mean change of log P(yes)" -- "$BIN" steer grid --ids "$TMP/ids/ids.safetensors" -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --out "$TMP/steer" --n 1 --layers 2 --threads 1 --relation between
expect steer_grid_between_two_objects 1 "needs 3 objects" -- "$BIN" steer grid --ids "$TMP/ids/ids.safetensors" -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --out "$TMP/steer" --n 1 --threads 1 --relation between --objects "red circle,blue square"
expect steer_objects 0 "best 3 layers" -- "$BIN" steer belief --ids "$TMP/ids/ids.safetensors" -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --out "$TMP/steer3" --n 1 --threads 1 --objects "red circle,blue square,green triangle"
J=$(tr -d ' \t\n' < "$TMP/steer3/steer-belief.json")
IT=$(echo "$J" | sed 's/.*[{,]"items":\([0-9]*\).*/\1/'); SK=$(echo "$J" | sed 's/.*[{,]"skipped":\([0-9]*\).*/\1/')
if [ $((IT + SK)) -eq 6 ]; then ok steer_objects_used; else ko "steer_objects_used ($IT + $SK images, want 6)"; fi
# llama.cpp control vectors from the IDs: export, read back by ask/capture (= the same --add)
CV="ids export-cvec --ids $TMP/ids/ids.safetensors"
expect cvec_export 0 "direction.1..direction.3 (residual layers 2..4), cell 0,0 -> 0,1" -- "$BIN" $CV --from 0,0 --to 0,1 \
    -o "$TMP/cv.gguf"
expect cvec_info 0 "controlvector.layer_count  *i32  3" -- "$BIN" info "$TMP/cv.gguf"
if grep -q "architecture: controlvector" "$TMP/out" && grep -q "direction.3 " "$TMP/out" && grep -q "idscope.provenance" "$TMP/out"; then
    ok cvec_file; else ko cvec_file; fi
expect cvec_one_layer 0 "direction.2..direction.2 (residual layers 3..3)" -- "$BIN" $CV --from 1,1 --to 0,0 --layers 3 \
    --scale 4 --size 0 -o "$TMP/cv3.gguf"
expect cvec_tensor 0 "" -- "$BIN" tensor "$TMP/cv3.gguf" direction.2 -o "$TMP/d2.npy"
QQ="Is the red circle to the left or right of the blue square?"
expect ask_cvec 0 '"logprob_unedited"' -- "$BIN" ask $GM -q "$QQ" --choices left,right -n 2 --json --control-vector "$TMP/cv3.gguf"
cp "$TMP/out" "$TMP/ask_cv.json"
expect ask_cvec_as_add 0 "" -- "$BIN" ask $GM -q "$QQ" --choices left,right -n 2 --json --add "$TMP/d2.npy" --layer 3
if cmp -s "$TMP/out" "$TMP/ask_cv.json"; then ok cvec_equals_add_after_block; else ko cvec_equals_add_after_block; fi
expect cvec_bad_cell 2 "--from 0,2 is outside the IDs' grid of 2 x 2 cells" -- "$BIN" $CV --from 0,2 --to 0,0 -o "$TMP/x.gguf"
expect cvec_bad_cell_form 2 "--to x is not a cell Y,X" -- "$BIN" $CV --from 0,0 --to x -o "$TMP/x.gguf"
expect cvec_layers 2 "--layers 1-3 is outside 2..4" -- "$BIN" $CV --from 0,0 --to 0,1 --layers 1-3 -o "$TMP/x.gguf"
expect cvec_size 2 "--size 3 is outside -1..0" -- "$BIN" $CV --from 0,0 --to 0,1 --size 3 -o "$TMP/x.gguf"
expect cvec_not_ids 1 "no F32 tensor 'universal'" -- "$BIN" ids export-cvec --ids "$TMP/sites.safetensors" --from 0,0 --to 0,1 \
    -o "$TMP/x.gguf"
expect cvec_not_cvec 1 "general.architecture is 'clip', expected 'controlvector'" -- "$BIN" ask $GM -q x \
    --control-vector "$G/mmproj.gguf"
expect cvec_past_blocks 0 "1 direction past the model's 3 blocks left out" -- "$BIN" ask -m "$SH/golden/qwen2vl-tiny/text.gguf" \
    --mmproj "$SH/golden/qwen2vl-tiny/mmproj.gguf" --image "$SH/golden/qwen2vl-tiny/image.png" -q x -n 1 \
    --control-vector "$TMP/cv.gguf"
expect steer_belief_no_near_far 2 "--relation near-far is not one of left-right, above-below" -- "$BIN" steer belief --ids x --out y --relation near-far
expect depth_help 0 "usage: idscope depth" -- "$BIN" depth --help
expect depth_run 0 "^layer,above_below_down" -- "$BIN" depth --ids "$TMP/ids/ids.safetensors" -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --out "$TMP/depth" --n 1 --threads 1
if grep -q '"front_behind_down"' "$TMP/depth/depth.json"; then ok depth_files; else ko depth_files; fi
expect ids_extract_pairs 0 "wrote" -- "$BIN" ids extract -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --out "$TMP/idsp" \
    --objects "red circle,blue square" --grid 2 --sizes 0.9 --per-pair --threads 1
expect ids_stats_pairs 0 "" -- "$BIN" ids stats "$TMP/idsp"
expect score_run 0 "^best layer [0-9]*, score" -- "$BIN" score --stats "$TMP/idsp/stats.json" \
    --steer "$TMP/steer/steer-belief.json" -o "$TMP/score.json"
expect score_no_pairs 1 "per-pair" -- "$BIN" score --stats "$TMP/ids/stats.json" --steer "$TMP/steer/steer-belief.json" -o "$TMP/s.json"
expect score_usage 2 "needs --stats" -- "$BIN" score --stats x
expect steer_no_ids 2 "missing --ids" -- "$BIN" steer belief --out "$TMP/steer"
expect steer_bad_layers 2 "--layers 3-1 is not a band LO-HI" -- "$BIN" steer belief --ids x --out y --layers 3-1

# temporal IDs on short videos of the golden model
expect temporal_help 0 "usage: idscope temporal extract" -- "$BIN" temporal --help
expect temporal_extract 0 "wrote" -- "$BIN" temporal extract -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --out "$TMP/temporal" \
    --objects "red circle,blue square" --frames 4 --image-size 64 --threads 1
expect temporal_swap 0 "^4,objects," -- "$BIN" temporal swap -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --out "$TMP/temporal" \
    --frames 4 --image-size 64 --n 1 --threads 1
expect temporal_steer 0 "^monotonic layers" -- "$BIN" temporal steer --ids "$TMP/temporal/temporal.safetensors" \
    -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --out "$TMP/temporal" --image-size 64 --n 1 --threads 1
if tr -d ' \t\n' < "$TMP/temporal/temporal-steer.json" | grep -q '"null_frame":2' && grep -q '"best_layer"' "$TMP/temporal/temporal.json" &&
   [ -s "$TMP/temporal/temporal-swap.csv" ]; then ok temporal_files; else ko temporal_files; fi
expect temporal_no_ids 2 "missing --ids" -- "$BIN" temporal steer --out "$TMP/t2"
expect temporal_bad_sub 2 "unknown subcommand" -- "$BIN" temporal frob
expect temporal_bad_frames 2 "--frames 2 is outside 3..64" -- "$BIN" temporal extract -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --out "$TMP/t3" --frames 2
expect temporal_wrong_ids 1 "tensor 'temporal'" -- "$BIN" temporal steer --ids "$TMP/ids/ids.safetensors" \
    -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --out "$TMP/t4"

# layer and frame options are checked before the model is loaded: the range comes from the GGUF
# header, and the missing --mmproj / IDs files show that nothing else was opened
expect steer_layers_range 2 "idscope steer belief: --layers 0-99 is outside 1\.\.4" -- "$BIN" steer belief \
    --ids "$TMP/none.safetensors" -m "$G/text.gguf" --mmproj "$TMP/none.gguf" --out "$TMP/x" --layers 0-99
if grep -q "cannot open\|: [0-9]*/[0-9]" "$TMP/err"; then ko steer_layers_not_loaded; else ok steer_layers_not_loaded; fi
expect steer_layers_bundled 2 "idscope steer belief: --layers 0-99 is outside 1\.\.[0-9]" -- "$BIN" steer belief \
    --ids "$TMP/none.safetensors" --out "$TMP/x" --layers 0-99
expect steer_grid_layer_range 2 "idscope steer grid: --layers 9 is outside 1\.\.4" -- "$BIN" steer grid \
    --ids "$TMP/none.safetensors" -m "$G/text.gguf" --mmproj "$TMP/none.gguf" --out "$TMP/x" --layers=9
expect depth_layers_range 2 "idscope depth: --layers 2-5 is outside 1\.\.4" -- "$BIN" depth \
    --ids "$TMP/none.safetensors" -m "$G/text.gguf" --mmproj "$TMP/none.gguf" --out "$TMP/x" --layers 2-5
expect temporal_layers_range 2 "idscope temporal steer: --layers 1-7 is outside 1\.\.4" -- "$BIN" temporal steer \
    --ids "$TMP/none.safetensors" -m "$G/text.gguf" --mmproj "$TMP/none.gguf" --out "$TMP/x" --layers 1-7
expect temporal_source_range 2 "idscope temporal steer: --source 9 is outside 0\.\.3" -- "$BIN" temporal steer \
    --ids "$TMP/temporal/temporal.safetensors" -m "$G/text.gguf" --mmproj "$TMP/none.gguf" --out "$TMP/x" --source 9
expect capture_layers_range 2 "idscope capture: --layers 0,2-9 is outside 0\.\.4" -- "$BIN" capture -m "$G/text.gguf" \
    --mmproj "$TMP/none.gguf" --image "$TMP/none.png" -q x -o "$TMP/x.safetensors" --layers 0,2-9

# video input to ask: a folder of frames and an MP4 of the same video
expect stimuli_video_mp4 0 "" -- "$BIN" stimuli video --out "$TMP/vid" --size 64 --limit 2 --mp4
V1=$(ls -d "$TMP/vid"/*/ | head -1)
expect ask_video_folder 0 "" -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --video "$V1" --frames 4 \
    -q "Does the red circle appear before or after the blue square?" --choices before,after --threads 1
M1=$(ls "$TMP/vid"/*.mp4 | head -1)
expect ask_video_mp4 0 "" -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --video "$M1" --frames 8 \
    -q "Does the red circle appear before or after the blue square?" --threads 1
# MVBench-format questions over those videos (time reversal on real video files)
M2=$(ls "$TMP/vid"/*.mp4 | sed -n 2p)
printf '[{"video": "%s", "answer": "From the red circle to the blue square."}, {"video": "%s", "answer": "From the red circle to the blue square."}]' \
    "$(basename "$M1")" "$(basename "$M2")" > "$TMP/mvb.json"
expect temporal_swap_mvbench 0 "MVBench, time reversal" -- "$BIN" temporal swap -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --out "$TMP/mvb" --mvbench "$TMP/mvb.json" --videos "$TMP/vid" --frames 6 --threads 1
printf '[{"video": "gone.mp4", "answer": "From the red circle to the blue square."}]' > "$TMP/mvb2.json"
expect temporal_swap_mvbench_missing 1 "gone.mp4" -- "$BIN" temporal swap -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --out "$TMP/mvb" --mvbench "$TMP/mvb2.json" --videos "$TMP/vid" --threads 1
expect ask_video_qwen 0 "answer:" -- "$BIN" ask -m "$SH/golden/qwen2vl-tiny/text.gguf" --mmproj "$SH/golden/qwen2vl-tiny/mmproj.gguf" \
    --video "$M1" --frames 4 -q "What happens?" -n 2 --threads 1
# Qwen2.5-VL: the golden tower of tests/golden/qwen25vl-tiny with the Qwen2-VL text model (same arch)
Q25=tests/golden/qwen25vl-tiny
Q25T="$SH/golden/qwen2vl-tiny/text.gguf"
expect q25_info 0 '"qwen2.5vl_merger"' -- "$BIN" info "$Q25/mmproj.gguf"
expect q25_info_tensors 0 "v.blk.2.ffn_gate.weight" -- "$BIN" info "$Q25/mmproj.gguf"
expect q25_capture_all 0 "wrote" -- "$BIN" capture -m "$Q25T" --mmproj "$Q25/mmproj.gguf" --image "$Q25/image.png" \
    --prompt-file "$Q25/prompt.txt" --all -o "$TMP/q25.safetensors" --threads 2
H=$(head -c 20000 "$TMP/q25.safetensors" | tr -d '\000')
if echo "$H" | grep -q '"positions":{"dtype":"I32","shape":\[65,3\]' && echo "$H" | grep -q '"resid":{"dtype":"F32","shape":\[4,65,64\]' &&
   echo "$H" | grep -q '"image_embd":{"dtype":"F32","shape":\[30,64\]' && echo "$H" | grep -q '"vision":{"dtype":"F32","shape":\[3,120,32\]' &&
   echo "$H" | grep -q '"logits":{"dtype":"F32","shape":\[65,151936\]'; then ok q25_capture_shapes; else ko q25_capture_shapes; fi
expect q25_ask 0 "log P(right)" -- "$BIN" ask -m "$Q25T" --mmproj "$Q25/mmproj.gguf" --image "$Q25/image.png" \
    --question "Is the red circle to the left or right of the blue square?" --choices left,right -n 2 --threads 2
expect q25_ask_video 0 "answer:" -- "$BIN" ask -m "$Q25T" --mmproj "$Q25/mmproj.gguf" --video "$M1" --frames 4 \
    -q "What happens?" -n 2 --threads 2
expect q25_ids_extract 0 "wrote" -- "$BIN" ids extract -m "$Q25T" --mmproj "$Q25/mmproj.gguf" --out "$TMP/q25ids" \
    --objects "red circle,blue square" --grid 2 --sizes 1 --image-size 112 --threads 2
# Gemma 3: the golden pair of tests/golden/gemma3-tiny (text arch gemma3, projector gemma3)
G3=tests/golden/gemma3-tiny
expect g3_info 0 '"gemma3"' -- "$BIN" info "$G3/mmproj.gguf"
expect g3_info_text 0 "gemma3.attention.sliding_window  *u32  *20" -- "$BIN" info "$G3/text.gguf"
expect g3_tokenize 0 "^2 4 302 295 265 6$" -- "$BIN" tokenize -m "$G3/text.gguf" --special "$(printf '<start_of_turn>user\n\n\n<start_of_image>')"
expect g3_capture_all 0 "wrote" -- "$BIN" capture -m "$G3/text.gguf" --mmproj "$G3/mmproj.gguf" --image "$G3/image.png" \
    --prompt-file "$G3/prompt.txt" --all -o "$TMP/g3.safetensors" --threads 2
H=$(head -c 20000 "$TMP/g3.safetensors" | tr -d '\000')
if echo "$H" | grep -q '"resid":{"dtype":"F32","shape":\[8,52,64\]' && echo "$H" | grep -q '"image_embd":{"dtype":"F32","shape":\[16,64\]' &&
   echo "$H" | grep -q '"vision":{"dtype":"F32","shape":\[2,256,32\]' && echo "$H" | grep -q '"logits":{"dtype":"F32","shape":\[52,449\]' &&
   echo "$H" | grep -q '"attn_probs":{"dtype":"F32","shape":\[7,52,4,52\]'; then ok g3_capture_shapes; else ko g3_capture_shapes; fi
expect g3_ask 0 "log P(right)" -- "$BIN" ask -m "$G3/text.gguf" --mmproj "$G3/mmproj.gguf" --image "$G3/image.png" \
    --question "Is the red circle to the left or right of the blue square?" --choices left,right -n 2 --threads 2
expect g3_ids_extract 0 "wrote" -- "$BIN" ids extract -m "$G3/text.gguf" --mmproj "$G3/mmproj.gguf" --out "$TMP/g3ids" \
    --objects "red circle,blue square" --grid 2 --sizes 1 --image-size 112 --threads 2
# the family's band: the paper's 10-22 of 34 layers scaled to 7 (2..5); depth up to 29/34 of them (6)
expect g3_steer_belief 0 "^2,.*" -- "$BIN" steer belief --ids "$TMP/g3ids/ids.safetensors" -m "$G3/text.gguf" \
    --mmproj "$G3/mmproj.gguf" --out "$TMP/g3steer" --n 1 --threads 2
if [ "$(sed -n '2s/,.*//p;$s/,.*//p' "$TMP/g3steer/steer-belief.csv" | tr '\n' ' ')" = "2 5 " ]; then ok g3_steer_band; else ko g3_steer_band; fi
expect g3_steer_belief_layers 0 "^4,.*" -- "$BIN" steer belief --ids "$TMP/g3ids/ids.safetensors" -m "$G3/text.gguf" \
    --mmproj "$G3/mmproj.gguf" --out "$TMP/g3steer2" --n 1 --layers 4-6 --threads 2
expect g3_swap 0 "^0,image," -- "$BIN" swap -m "$G3/text.gguf" --mmproj "$G3/mmproj.gguf" --out "$TMP/g3swap" --n 1 --threads 2
expect g3_depth 0 "^6,.*" -- "$BIN" depth --ids "$TMP/g3ids/ids.safetensors" -m "$G3/text.gguf" \
    --mmproj "$G3/mmproj.gguf" --out "$TMP/g3depth" --n 1 --threads 2
expect g3_steer_grid 0 "mean change of log P(left)" -- "$BIN" steer grid --ids "$TMP/g3ids/ids.safetensors" \
    -m "$G3/text.gguf" --mmproj "$G3/mmproj.gguf" --out "$TMP/g3grid" --n 1 --layers 2 --threads 2
if grep -q '"delta"' "$TMP/g3grid/steer-grid-left_right.json"; then ok g3_steer_grid_files; else ko g3_steer_grid_files; fi
# temporal IDs: a video is its frames as separate images (one image block each), 4 frames of 64 px
expect g3_temporal_extract 0 "wrote" -- "$BIN" temporal extract -m "$G3/text.gguf" --mmproj "$G3/mmproj.gguf" \
    --out "$TMP/g3temp" --objects "red circle,blue square" --frames 4 --image-size 64 --threads 2
expect g3_temporal_swap 0 "^[0-9]*,objects," -- "$BIN" temporal swap -m "$G3/text.gguf" --mmproj "$G3/mmproj.gguf" \
    --out "$TMP/g3temp" --frames 4 --image-size 64 --n 1 --threads 2
expect g3_temporal_steer 0 "^monotonic layers" -- "$BIN" temporal steer --ids "$TMP/g3temp/temporal.safetensors" \
    -m "$G3/text.gguf" --mmproj "$G3/mmproj.gguf" --out "$TMP/g3temp" --image-size 64 --n 1 --threads 2
# no demo here: its ids extract step draws the default set (8 objects, every ordered pair, 5760 items),
# about 6 minutes on this pair with 2 busy cores, and a kept result is reused only for the same request
# Qwen3-VL: the golden pair of tests/golden/qwen3vl-tiny (its text model joined by make from text-blocks.gguf
# and the vocabulary of ../shared's Qwen2-VL golden)
Q3=tests/golden/qwen3vl-tiny
Q3T=build/golden/qwen3vl-tiny/text.gguf
if [ -f "$Q3T" ]; then
    expect q3_info 0 '"qwen3vl_merger"' -- "$BIN" info "$Q3/mmproj.gguf"
    expect q3_info_deepstack 0 "v.deepstack.1.fc2.weight" -- "$BIN" info "$Q3/mmproj.gguf"
    expect q3_info_text 0 "blk.2.attn_k_norm.weight" -- "$BIN" info "$Q3T"
    expect q3_tokenize 0 "151652 151655 151653" -- "$BIN" tokenize -m "$Q3T" --special "<|vision_start|><|image_pad|><|vision_end|>"
    expect q3_capture_all 0 "wrote" -- "$BIN" capture -m "$Q3T" --mmproj "$Q3/mmproj.gguf" --image "$Q3/image.png" \
        --prompt-file "$Q3/prompt.txt" --all -o "$TMP/q3.safetensors" --threads 2
    H=$(head -c 20000 "$TMP/q3.safetensors" | tr -d '\000')
    if echo "$H" | grep -q '"positions":{"dtype":"I32","shape":\[105,3\]' && echo "$H" | grep -q '"resid":{"dtype":"F32","shape":\[4,105,64\]' &&
       echo "$H" | grep -q '"image_embd":{"dtype":"F32","shape":\[70,64\]' &&
       echo "$H" | grep -q '"image_embd_deepstack":{"dtype":"F32","shape":\[2,70,64\]' &&
       echo "$H" | grep -q '"deepstack":{"dtype":"F32","shape":\[2,105,64\]' && echo "$H" | grep -q 'blocks.k.hook_deepstack' &&
       echo "$H" | grep -q '"vision":{"dtype":"F32","shape":\[3,280,32\]' &&
       echo "$H" | grep -q '"logits":{"dtype":"F32","shape":\[105,151936\]'; then ok q3_capture_shapes; else ko q3_capture_shapes; fi
    expect q3_capture_edit_deepstack 0 "wrote" -- "$BIN" capture -m "$Q3T" --mmproj "$Q3/mmproj.gguf" --image "$Q3/image.png" \
        --prompt-file "$Q3/prompt.txt" --sites deepstack,logits --positions last -o "$TMP/q3e.safetensors" --threads 2 \
        --add "$TMP/v.npy" --layer blocks.1.hook_deepstack --positions image
    expect q3_edit_deepstack_range 1 "0..1" -- "$BIN" capture -m "$Q3T" --mmproj "$Q3/mmproj.gguf" --image "$Q3/image.png" \
        --prompt-file "$Q3/prompt.txt" -o "$TMP/q3f.safetensors" --threads 2 --add "$TMP/v.npy" --layer deepstack:2
    expect q3_ask 0 "log P(right)" -- "$BIN" ask -m "$Q3T" --mmproj "$Q3/mmproj.gguf" --image "$Q3/image.png" \
        --question "Is the red circle to the left or right of the blue square?" --choices left,right -n 2 --threads 2
    expect q3_ask_video 0 "answer:" -- "$BIN" ask -m "$Q3T" --mmproj "$Q3/mmproj.gguf" --video "$M1" --frames 4 \
        -q "What happens?" -n 2 --threads 2
    expect q3_ids_extract 0 "wrote" -- "$BIN" ids extract -m "$Q3T" --mmproj "$Q3/mmproj.gguf" --out "$TMP/q3ids" \
        --objects "red circle,blue square" --grid 2 --sizes 1 --image-size 112 --threads 2
    expect q3_swap 0 "^3,objects," -- "$BIN" swap -m "$Q3T" --mmproj "$Q3/mmproj.gguf" --out "$TMP/q3swap" --n 1 --threads 2
    expect q3_steer 0 "^best 3 layers: ID" -- "$BIN" steer belief --ids "$TMP/q3ids/ids.safetensors" -m "$Q3T" \
        --mmproj "$Q3/mmproj.gguf" --out "$TMP/q3steer" --n 1 --threads 2
    expect q3_depth 0 "^layer,above_below_down" -- "$BIN" depth --ids "$TMP/q3ids/ids.safetensors" -m "$Q3T" \
        --mmproj "$Q3/mmproj.gguf" --out "$TMP/q3depth" --n 1 --threads 2
    expect q3_temporal_extract 0 "wrote" -- "$BIN" temporal extract -m "$Q3T" --mmproj "$Q3/mmproj.gguf" \
        --out "$TMP/q3temporal" --frames 4 --image-size 64 --threads 2
else
    echo "skip q3_* ($Q3T is not built: make joins it when ../shared/golden/qwen2vl-tiny/text.gguf exists)"
fi
# InternVL3: the golden pair of tests/golden/internvl-tiny (qwen2 text model, internvl tower; 2 tiles + thumbnail)
IV=tests/golden/internvl-tiny
IVM="-m $IV/text.gguf --mmproj $IV/mmproj.gguf --threads 2"
expect ivl_info 0 '"internvl"' -- "$BIN" info "$IV/mmproj.gguf"
expect ivl_info_tensors 0 "v.blk.1.ls2.weight" -- "$BIN" info "$IV/mmproj.gguf"
expect ivl_info_text 0 "architecture: qwen2" -- "$BIN" info "$IV/text.gguf"
# llama.cpp's first text chunk of tokens.json (the prompt up to the image, ending in <img>)
expect ivl_tokenize 0 "^900 355 261 198 902$" -- "$BIN" tokenize -m "$IV/text.gguf" --special "<|im_start|>user
<img>"
expect ivl_capture_all 0 "wrote" -- "$BIN" capture $IVM --image "$IV/image.png" --prompt-file "$IV/prompt.txt" --all \
    -o "$TMP/ivl.safetensors"
H=$(head -c 20000 "$TMP/ivl.safetensors" | tr -d '\000')
if echo "$H" | grep -q '"resid":{"dtype":"F32","shape":\[4,77,32\]' && echo "$H" | grep -q '"image_embd":{"dtype":"F32","shape":\[48,32\]' &&
   echo "$H" | grep -q '"vision":{"dtype":"F32","shape":\[2,195,32\]' && echo "$H" | grep -q '"logits":{"dtype":"F32","shape":\[77,905\]'
then ok ivl_capture_shapes; else ko ivl_capture_shapes; fi
expect ivl_ask 0 "log P(right)" -- "$BIN" ask $IVM --image "$IV/image.png" \
    --question "Is the red circle to the left or right of the blue square?" --choices left,right -n 2
expect ivl_ask_video 0 "answer:" -- "$BIN" ask $IVM --video "$M1" --frames 4 -q "What happens?" -n 2
expect ivl_temporal_extract 0 "wrote" -- "$BIN" temporal extract $IVM --out "$TMP/ivltemp" \
    --objects "red circle,blue square" --frames 4 --image-size 64
expect ivl_temporal_swap 0 "^3,objects," -- "$BIN" temporal swap $IVM --out "$TMP/ivltemp" --frames 4 --image-size 64 --n 1
expect ivl_temporal_steer 0 "^monotonic layers" -- "$BIN" temporal steer --ids "$TMP/ivltemp/temporal.safetensors" $IVM \
    --out "$TMP/ivltemp" --image-size 64 --n 1
expect ivl_ids_extract 0 "wrote" -- "$BIN" ids extract $IVM --out "$TMP/ivlids" --objects "red circle,blue square" \
    --grid 2 --sizes 1
expect ivl_swap 0 "objects" -- "$BIN" swap $IVM --out "$TMP/ivlswap" --objects "red circle,blue square" --grid 2 --n 2
expect ivl_steer_belief 0 "^best 3 layers: ID" -- "$BIN" steer belief --ids "$TMP/ivlids/ids.safetensors" $IVM \
    --out "$TMP/ivlsteer" --n 2
expect ivl_steer_grid 0 "mean change of log P(left)" -- "$BIN" steer grid --ids "$TMP/ivlids/ids.safetensors" $IVM \
    --out "$TMP/ivlsteer" --n 1 --layers 2
expect ivl_depth 0 "above_below_down" -- "$BIN" depth --ids "$TMP/ivlids/ids.safetensors" $IVM --out "$TMP/ivldepth" --n 1
expect ask_video_too_few 1 "8 decodable frames, 9 asked" -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --video "$M1" --frames 9 -q "Does it?"
expect ask_video_missing 1 "cannot open" -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --video "$TMP/none.mp4" -q "x?"
expect ask_frames_without_video 2 "needs --video" -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --frames 4 -q "x?"

# report over the results made above
mkdir -p "$TMP/res"
cp -r "$TMP/idsp" "$TMP/res/ids"; cp -r "$TMP/swap" "$TMP/res/swap"; cp -r "$TMP/steer" "$TMP/res/steer"
cp -r "$TMP/depth" "$TMP/res/depth"; cp "$TMP/score.json" "$TMP/res/score.json"; cp -r "$TMP/temporal" "$TMP/res/temporal"
expect report_help 0 "usage: idscope report" -- "$BIN" report --help
expect report_full 0 "8 of 9 sections" -- "$BIN" report "$TMP/res"
R="$TMP/res/report.html"
if [ -s "$R" ] && [ "$(grep -c '<svg ' "$R")" -eq "$(grep -c '</svg>' "$R")" ] && [ "$(grep -c '<svg ' "$R")" -ge 9 ] &&
   grep -q 'id="ids"' "$R" && grep -q 'id="swap"' "$R" && grep -q 'id="steer"' "$R" && grep -q 'id="grid"' "$R" &&
   grep -q 'id="depth"' "$R" && grep -q 'id="score"' "$R" && grep -q 'id="temporal"' "$R" && grep -q 'id="intervals"' "$R" && ! grep -q '\(src\|href\)="http' "$R"; then
    ok report_sections; else ko report_sections; fi
if command -v python3 >/dev/null 2>&1; then
    if python3 -c "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])" "$R" 2>/dev/null; then ok report_parses; else ko report_parses; fi
fi
# an empty folder, a folder of other files and a missing one fail (exit 1, nothing written); a folder
# with some results gets a page that marks the others
mkdir -p "$TMP/empty" "$TMP/other"
printf 'hello\n' >"$TMP/other/notes.txt"
expect report_empty 1 "holds no idscope results (looked for ids/stats.json" -- "$BIN" report "$TMP/empty"
if [ ! -e "$TMP/empty/report.html" ]; then ok report_empty_writes_nothing; else ko report_empty_writes_nothing; fi
expect report_wrong_folder 1 "other holds no idscope results" -- "$BIN" report "$TMP/other"
expect report_missing_folder 1 "none: cannot open the results folder" -- "$BIN" report "$TMP/none"
expect report_file_not_folder 1 "notes.txt: not a folder" -- "$BIN" report "$TMP/other/notes.txt"
mkdir -p "$TMP/part"; cp -r "$TMP/depth" "$TMP/part/depth"
expect report_partial 0 "2 of 9 sections" -- "$BIN" report "$TMP/part"
if grep -q "not run" "$TMP/part/report.html"; then ok report_marks_missing; else ko report_marks_missing; fi
# every figure is also a standalone SVG file beside the report, each with two labelled axes or a colour bar
NF=$(ls "$TMP/res/figures/"*.svg 2>/dev/null | wc -l)
if [ "$NF" -ge 10 ] && [ "$NF" -eq "$(grep -c '<figure>' "$R")" ]; then ok "report_svg_files ($NF)"; else ko "report_svg_files ($NF)"; fi
# and each also as a PNG (figures/NAME.png, linked under the figure)
NP=0; PBAD=""
for s in "$TMP/res/figures/"*.svg; do
    p=${s%.svg}.png
    if [ -s "$p" ] && [ "$(head -c 8 "$p" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; then NP=$((NP + 1))
    else PBAD="$PBAD $(basename "$p")"; fi
done
if [ "$NP" -eq "$NF" ] && [ "$(ls "$TMP/res/figures/"*.png | wc -l)" -eq "$NF" ] && grep -q 'href="figures/ids-1.png"' "$R"; then
    ok "report_png_files ($NP)"; else ko "report_png_files ($NP of $NF;$PBAD)"; fi
: >"$TMP/res/figures/swap-9.svg"; : >"$TMP/res/figures/swap-9.png"
expect report_again 0 "8 of 9 sections" -- "$BIN" report "$TMP/res"
if [ ! -e "$TMP/res/figures/swap-9.svg" ] && [ ! -e "$TMP/res/figures/swap-9.png" ] &&
   [ "$(ls "$TMP/res/figures/"*.svg | wc -l)" -eq "$NF" ] && [ "$(ls "$TMP/res/figures/"*.png | wc -l)" -eq "$NF" ]; then
    ok report_no_stale_figures; else ko report_no_stale_figures; fi
if command -v python3 >/dev/null 2>&1; then
    expect report_svgs_structure 0 "figures checked, 0 problems" -- python3 tests/check_svgs.py "$TMP/res/figures"/*.svg
    # the PNG of a figure: twice the SVG's width and height, drawn (not a blank page)
    read -r PW PH PD PC <<EOS
$(python3 tests/png_stats.py "$TMP/res/figures/ids-1.png")
EOS
    SWH=$(sed -n 's/^<svg [^>]* width="\([0-9]*\)" height="\([0-9]*\)".*/\1 \2/p' "$TMP/res/figures/ids-1.svg" | awk '{print 2 * $1, 2 * $2}')
    if [ "$PW $PH" = "$SWH" ] && awk -v f="$PD" -v c="$PC" 'BEGIN { exit !(f > 0.02 && c > 8) }'; then
        ok "report_png_drawn (${PW}x$PH, $PD of the pixels drawn, $PC colours)"
    else ko "report_png_drawn (${PW}x$PH for an SVG of 2 x ($SWH / 2), $PD drawn, $PC colours)"; fi
    # the checker fails on figures without axis labels, with unrounded ticks, or with a legend of coloured text only
    printf '<svg xmlns="http://www.w3.org/2000/svg"><text class="xlabel">layer</text></svg>' >"$TMP/nolabel.svg"
    expect report_svgs_check_no_label 1 "neither two labelled axes" -- python3 tests/check_svgs.py "$TMP/nolabel.svg"
    { printf '<svg xmlns="http://www.w3.org/2000/svg"><text class="xlabel">layer</text><text class="ylabel">R2</text>'
      printf '<g class="axis x"><text class="tick">0</text><text class="tick">1</text></g><g class="axis y">'
      printf '<text class="tick">0.249</text><text class="tick">0.498</text><text class="tick">0.747</text></g>'
      printf '<g class="legend"><text>ID</text></g></svg>'; } >"$TMP/ticks.svg"
    expect report_svgs_check_ticks 1 "not 1, 2, 2.5 or 5 x 10^k" -- python3 tests/check_svgs.py "$TMP/ticks.svg"
    if grep -q "legend entry without a line sample" "$TMP/out"; then ok report_svgs_check_legend; else ko report_svgs_check_legend; fi
fi
expect report_usage 2 "idscope report: missing RESULTS_DIR" -- "$BIN" report

# the bundled model (the default of every command) meets the accuracy bar on fresh questions
expect eval_bundled 0 "before-after accuracy" -- "$BIN" eval --task all --n 100 --seed 11 --threads 1
if awk '{ split($3, f, "/"); if (f[2] < 100 || f[1] / f[2] < 0.95) bad = 1 } END { exit bad || NR != 5 }' "$TMP/out"; then
    ok eval_bundled_bar; else ko eval_bundled_bar; sed 's/^/    /' "$TMP/out"; fi
expect eval_bundled_json 0 '"left-right": ' -- "$BIN" eval --task left-right --n 20 --seed 3 --json --threads 1

# demo: resumes over the results above (only the missing steps run), then summary.json
expect demo_help 0 "usage: idscope demo" -- "$BIN" demo --help
expect demo_bad_option 2 "unknown option '--frob'" -- "$BIN" demo --frob 1
expect demo_bad_n 2 "--n 0 is outside 1\.\." -- "$BIN" demo --n 0
expect demo_missing_model 1 "model not found" -- "$BIN" demo --out "$TMP/d0" -m "$TMP/none.gguf" --mmproj "$TMP/none2.gguf"
mkdir -p "$TMP/demo"; cp -r "$TMP/res/"* "$TMP/demo/"; rm -f "$TMP/demo/report.html"
expect demo_resume 0 "already done" -- "$BIN" demo --out "$TMP/demo" -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --n 1 --threads 1
S="$TMP/demo/summary.json"
if [ -s "$TMP/demo/report.html" ] && grep -q '"ids_r2_best":' "$S" && grep -q '"belief_swap_rate_id":' "$S" &&
   grep -q '"belief_swap_rate_noise":' "$S" && grep -q '"mirror_objword_recovery_peak":' "$S" &&
   grep -q '"mirror_objword_recovery_peak_layer":' "$S" && grep -q '"seconds":' "$S" &&
   grep -q '"temporal_pca_order":' "$S" && grep -q '"temporal_steer_monotonic":' "$S" &&
   [ -s "$TMP/demo/steer/steer-grid-above_below.json" ] && [ -s "$TMP/demo/stimuli/manifest.json" ]; then
    ok demo_summary; else ko demo_summary; fi

# provenance: every result file records how it was made; the demo reruns a step only when its
# request differs (another model, other options) and says which key differed
D2="$TMP/demo2"
expect demo_golden 0 "ID linearity" -- "$BIN" demo --out "$D2" -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --n 1 --threads 1
expect demo_again_skips 0 "25 already done" -- "$BIN" demo --out "$D2" -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --n 1 --threads 1
if ! grep -q "rerun" "$TMP/err" && [ "$(grep -c ': already done' "$TMP/err")" -eq 25 ] &&
   tr -d ' \t\n' < "$D2/summary.json" | grep -q '"seconds":[1-9]'; then
    ok demo_again_all_skipped; else ko demo_again_all_skipped; fi
# the golden demo's report rendered by headless Chromium (Debian's chromium; CHROMIUM=path overrides): a
# screenshot that is not blank, no console message (script errors, failed loads), and the same check
# failing on a page with a script error. Skipped, with the reason, where Chromium cannot start.
CHROMIUM=${CHROMIUM:-chromium}
render() { # render PAGE PNG: Chromium's log in $TMP/render.log; its exit status
    rm -f "$2"
    timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-extensions \
        --user-data-dir="$TMP/chromium-profile" \
        --enable-logging=stderr --v=0 --window-size=1000,1400 --screenshot="$2" "file://$1" >"$TMP/render.log" 2>&1
}
if ! command -v "$CHROMIUM" >/dev/null 2>&1; then
    echo "skip report_renders_in_chromium ($CHROMIUM not found; make deps installs Debian's chromium)"
elif ! render "$(cd "$D2" && pwd)/report.html" "$TMP/shot.png" || [ ! -s "$TMP/shot.png" ]; then
    echo "skip report_renders_in_chromium ($CHROMIUM could not start here: $(grep -v dbus "$TMP/render.log" | tail -1))"
else
    read -r PNG_W PNG_H PNG_DRAWN PNG_COLOURS <<EOS
$(python3 tests/png_stats.py "$TMP/shot.png")
EOS
    if [ "$PNG_W" -eq 1000 ] && awk -v f="$PNG_DRAWN" -v c="$PNG_COLOURS" 'BEGIN { exit !(f > 0.05 && c > 50) }'; then
        ok "report_screenshot_not_blank (${PNG_W}x$PNG_H, $PNG_DRAWN of the pixels drawn, $PNG_COLOURS colours)"
    else ko "report_screenshot_not_blank (${PNG_W}x$PNG_H, $PNG_DRAWN of the pixels drawn, $PNG_COLOURS colours)"; fi
    if grep -q "CONSOLE" "$TMP/render.log"; then ko report_no_console_errors; grep "CONSOLE" "$TMP/render.log" | head -3
    else ok report_no_console_errors; fi
    printf '<html><body><p>page</p><script>undefined_function();</script></body></html>' >"$TMP/broken.html"
    render "$TMP/broken.html" "$TMP/broken.png"
    if grep -q "CONSOLE.*undefined_function is not defined" "$TMP/render.log"; then ok report_console_errors_seen
    else ko report_console_errors_seen; fi
fi
missing=""
for f in stimuli/manifest.json ids/ids.json ids/stats.json swap/swap.json swap/swap-control.json steer/steer-belief.json \
         steer/factor-1/steer-belief.json steer/steer-grid-between.json depth/depth.json temporal/temporal.json \
         temporal/temporal-swap.json temporal/temporal-steer.json temporal/factor-1/temporal-steer.json \
         deviation/deviation.json mask/mask.json score.json summary.json; do
    J=$(tr -d ' \t\n' < "$D2/$f")
    for k in '"provenance":{"idscope":' '"build":' '"command":' '"options":{' '"seed":' '"threads":' '"precision":"f32"' \
             '"started":"20' '"seconds":'; do
        case $J in *"$k"*) ;; *) missing="$missing $f:$k" ;; esac
    done
    case $f in stimuli/*|ids/stats.json|score.json) ;; *)
        case $J in *'"models":{"text":{"path":"/'*'"fingerprint":"fnv1a64:'*) ;; *) missing="$missing $f:models" ;; esac ;;
    esac
done
if [ -z "$missing" ]; then ok results_have_provenance; else ko "results_have_provenance (missing:$missing)"; fi
# Fig. 8 and 9 on the golden demo folder: deviation right vs wrong with the Mann-Whitney test, blur
# masking, compare of two demo folders
expect deviation_help 0 "usage: idscope deviation" -- "$BIN" deviation --help
expect deviation_no_set 2 "missing --set" -- "$BIN" deviation --ids "$D2/ids/ids.safetensors" --out "$TMP/dev"
expect deviation_run 0 "Mann-Whitney" -- "$BIN" deviation --ids "$D2/ids/ids.safetensors" --set "$D2/stimuli" -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --out "$TMP/dev" --n 12 --threads 1
J=$(tr -d ' \t\n' < "$TMP/dev/deviation.json")
case $J in *'"mann_whitney":{'*'"u":'*'"p":'*) ok deviation_mann_whitney ;; *) ko deviation_mann_whitney ;; esac
if [ "$(wc -l < "$TMP/dev/deviation.csv")" -eq $((12 * 5 + 1)) ]; then ok deviation_items_csv; else ko deviation_items_csv; fi
expect mask_run 0 "accuracy clean" -- "$BIN" mask --set "$D2/stimuli" -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --out "$TMP/mask" --n 3 --random 2 --radius 10 --threads 1
if grep -q '"object_minus_random_logp_ci"' "$TMP/mask/mask.json" && [ "$(wc -l < "$TMP/mask/mask.csv")" -eq 13 ]; then
    ok mask_files; else ko mask_files; fi
expect compare_run 0 "2 models" -- "$BIN" compare "$D2" "$TMP/demo" --out "$TMP/cmp"
if [ "$(wc -l < "$TMP/cmp/compare.csv")" -eq 3 ] && grep -q "<svg" "$TMP/cmp/compare.html" &&
   grep -q '"spearman_score_accuracy"' "$TMP/cmp/compare.json"; then ok compare_files; else ko compare_files; fi
expect compare_not_demo 1 "no readable summary.json" -- "$BIN" compare "$TMP/dev" --out "$TMP/cmp2"
expect steer_holdout_refused 1 "holdout-objects: 'red circle' was one of the extraction's objects" -- "$BIN" steer belief \
    --ids "$D2/ids/ids.safetensors" -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --out "$TMP/ho" --n 1 --threads 1 --holdout-objects
expect steer_holdout_unseen 0 "best 3 layers" -- "$BIN" steer belief --ids "$D2/ids/ids.safetensors" -m "$G/text.gguf" \
    --mmproj "$G/mmproj.gguf" --out "$TMP/ho" --n 1 --threads 1 --holdout-objects --objects "yellow star,purple heart"
if grep -q '"holdout_objects":[[:space:]]*true' "$TMP/ho/steer-belief.json"; then ok steer_holdout_prov; else ko steer_holdout_prov; fi
S2=$(tr -d ' \t\n' < "$D2/summary.json")
case $S2 in *'"ids_r2_best_ci":['*'"belief_swap_rate_id_ci":['*'"depth_orthogonal_front_behind_ci":['*'"deviation_mann_whitney_p":'*) ok summary_intervals ;;
    *) ko summary_intervals ;; esac
expect demo_other_model 0 "ID linearity" -- "$BIN" demo --out "$D2" --n 1 --threads 1
if [ "$(grep -c 'rerun: models.text' "$TMP/err")" -eq 21 ] && grep -q 'ids stats (rerun: inputs.ids' "$TMP/err" &&
   grep -q 'stimuli.*already done' "$TMP/err" && tr -d ' \t\n' < "$D2/summary.json" | grep -q '"model":"[^"]*/models/tiny-llava/text.gguf"' &&
   tr -d ' \t\n' < "$D2/summary.json" | grep -q '"steps_run":24,'; then
    ok demo_other_model_reruns; else ko demo_other_model_reruns; sed 's/^/    /' "$TMP/err" | grep demo: | head -20; fi
# the bundled model is said for what it is: a positive control, in the printed summary, summary.json and
# the report's header; the golden model (not made by idscope train) is not; the headline rate has its count
if grep -q "This model is a positive control, in which the location is put on the object words by an auxiliary loss during training: its numbers show that the tool works, not that the paper is right." "$TMP/out" &&
   grep -q "belief swap rate, ID (best 3, factor 5) .*(of 2 images)" "$TMP/out" &&
   tr -d ' \t\n' < "$D2/summary.json" | grep -q '"positive_control":true,"note":"Thismodelisapositivecontrol' &&
   tr -d ' \t\n' < "$D2/summary.json" | grep -q '"belief_swap_items":2,' &&
   grep -q "<strong>This model is a positive control" "$D2/report.html"; then ok demo_positive_control_said
else ko demo_positive_control_said; fi
if ! grep -q "positive control" "$TMP/demo/report.html" && tr -d ' \t\n' < "$TMP/demo/summary.json" | grep -q '"positive_control":false'; then
    ok demo_golden_not_positive_control; else ko demo_golden_not_positive_control; fi
expect demo_other_n 0 "ID linearity" -- "$BIN" demo --out "$D2" --n 2 --threads 1
if grep -q 'swap (mirror patching per layer and position set) (rerun: options.n_items: 1 in the file, 2 asked)' "$TMP/err" &&
   grep -q 'ids extract.*already done' "$TMP/err"; then ok demo_other_n_reruns; else ko demo_other_n_reruns; fi
# a rerun with fewer stimuli leaves no stale files
expect stimuli_four 0 "" -- "$BIN" stimuli grid --out "$TMP/st4" --size 64 --limit 4 --mirror
expect stimuli_two 0 "" -- "$BIN" stimuli grid --out "$TMP/st4" --size 64 --limit 2
if [ "$(ls "$TMP/st4" | grep -c '\.png$')" -eq 2 ] && [ -s "$TMP/st4/manifest.json" ]; then ok stimuli_no_stale_files;
else ko "stimuli_no_stale_files ($(ls "$TMP/st4" | tr '\n' ' '))"; fi

# bench prefill: figures as text and JSON; --compare runs a llama-bench binary on the same file (here
# a stand-in script that records its arguments and answers as llama-bench -o json does)
expect bench_prefill 0 "tokens/s" -- "$BIN" bench prefill -m "$G/text.gguf" --tokens 32 --reps 1 --threads 1
expect bench_prefill_json 0 '"tokens_per_s":' -- "$BIN" bench prefill -m "$G/text.gguf" --tokens 32 --reps 1 --threads 1 --json
if grep -q '"gflops":' "$TMP/out" && grep -q '"precision":"f32"' "$TMP/out" && grep -q '"threads":1' "$TMP/out" &&
   grep -q '"cpu":' "$TMP/out"; then ok bench_prefill_json_keys; else ko bench_prefill_json_keys; fi
cat > "$TMP/fake-llama-bench" <<EOS
#!/bin/sh
echo "\$@" > "$TMP/fake-args"
echo '[{"n_prompt": 32, "n_gen": 0, "avg_ts": 1000.0}]'
EOS
chmod +x "$TMP/fake-llama-bench"
expect bench_compare 0 "ratio idscope / llama.cpp" -- "$BIN" bench prefill -m "$G/text.gguf" --tokens 32 --reps 1 --threads 1 \
    --compare "$TMP/fake-llama-bench"
if grep -q -- "-m .*text.gguf -p 32 -n 0 -t 1 -r 3" "$TMP/fake-args"; then ok bench_compare_args; else ko bench_compare_args; fi
# --rounds K: K turns of idscope's runs and llama-bench, each round's figures, the best of each (the stand-in
# answers 200, 300, 100)
rm -f "$TMP/fake-args"
cat > "$TMP/fake-llama-bench" <<EOS
#!/bin/sh
echo "\$@" >> "$TMP/fake-args"
case \$(wc -l < "$TMP/fake-args") in 1) ts=200 ;; 2) ts=300 ;; *) ts=100 ;; esac
echo "[{\"n_prompt\": 32, \"n_gen\": 0, \"avg_ts\": \$ts.0}]"
EOS
expect bench_rounds 0 "round 3: idscope .* tokens/s, llama.cpp 100.0 tokens/s" -- "$BIN" bench prefill -m "$G/text.gguf" \
    --tokens 32 --reps 1 --threads 1 --rounds 3 --compare "$TMP/fake-llama-bench"
if grep -q "llama-bench -p 32 -n 0 -t 1 -r 3, the best round): 300.0 tokens/s" "$TMP/out" &&
   [ "$(wc -l < "$TMP/fake-args")" -eq 3 ]; then ok bench_rounds_best; else ko bench_rounds_best; fi
rm -f "$TMP/fake-args"
expect bench_rounds_json 0 '"round_llama_cpp_tokens_per_s":\[200,300\]' -- "$BIN" bench prefill -m "$G/text.gguf" \
    --tokens 32 --reps 1 --threads 1 --rounds 2 --compare "$TMP/fake-llama-bench" --json --quiet
if grep -q '"mean_tokens_per_s":' "$TMP/out" && grep -q '"ratio_of_means":' "$TMP/out" &&
   grep -q '"llama_cpp_tokens_per_s":300' "$TMP/out"; then ok bench_mean_keys; else ko bench_mean_keys; fi
if [ ! -s "$TMP/err" ]; then ok bench_rounds_quiet; else ko "bench_rounds_quiet ($(head -1 "$TMP/err"))"; fi
expect bench_rounds_bad 2 "--rounds 0 is outside 1..20" -- "$BIN" bench prefill -m "$G/text.gguf" --rounds 0
expect bench_bad_precision 2 "--precision int4 is not one of" -- "$BIN" bench prefill -m "$G/text.gguf" --precision int4
expect bench_compare_missing 2 "--compare" -- "$BIN" bench prefill -m "$G/text.gguf" --compare "$TMP/none"
# precisions: every model-running command takes --precision and records it; a kernel path the CPU
# lacks (or an unknown one) is an error naming it
expect bench_int8_json 0 '"precision":"int8"' -- "$BIN" bench prefill -m "$G/text.gguf" --tokens 32 --reps 1 --threads 1 \
    --precision int8 --json
if grep -q '"kernels":"' "$TMP/out"; then ok bench_kernels_key; else ko bench_kernels_key; fi
expect swap_bf16 0 "^0,image,1.0000" -- "$BIN" swap -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --out "$TMP/swap-bf16" --n 1 \
    --threads 1 --precision bf16
if tr -d ' \t\n' < "$TMP/swap-bf16/swap.json" | grep -q '"precision":"bf16"'; then ok swap_bf16_provenance;
else ko swap_bf16_provenance; fi
expect capture_int8 0 "wrote" -- "$BIN" capture -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" --image "$G/image.png" \
    --prompt-file "$G/prompt.txt" -o "$TMP/cap-int8.safetensors" --precision int8 --threads 1
expect bad_precision_swap 2 "--precision fp8 is not one of" -- "$BIN" swap --out "$TMP/x" --precision fp8
expect cpu_path_unknown 1 "IDSCOPE_CPU=pentium is not a kernel path" -- env IDSCOPE_CPU=pentium "$BIN" bench prefill \
    -m "$G/text.gguf" --tokens 8 --reps 1
expect cpu_path_scalar 0 '"kernels":"scalar"' -- env IDSCOPE_CPU=scalar "$BIN" bench prefill -m "$G/text.gguf" --tokens 8 \
    --reps 1 --threads 1 --json
# hostile inputs: the minimized files of tests/fixtures/hostile (expected.txt: reader, file, message)
# and huge dimensions made here in a few bytes. Each is refused with exit 1 and a message naming the
# file, never a signal, within 20 s (timeout) and 1 GB of address space (ulimit -v).
HF=tests/fixtures/hostile
# bounded NAME FILE PATTERN -- command...
bounded() {
    name=$1 file=$2 pat=$3
    shift 4
    t0=$(date +%s)
    (ulimit -v 1048576 && exec timeout 20 "$@") >"$TMP/out" 2>"$TMP/err"
    rc=$?
    secs=$(($(date +%s) - t0))
    if [ "$rc" -ne 1 ]; then
        ko "$name (exit $rc, want 1)"
        sed 's/^/    /' "$TMP/err" | head -3
    elif ! grep -q -- "$pat" "$TMP/err"; then
        ko "$name (message lacks '$pat')"
        sed 's/^/    /' "$TMP/err" | head -3
    elif ! grep -q -- "$(basename "$file")" "$TMP/err"; then
        ko "$name (message does not name $(basename "$file"))"
    elif [ "$secs" -gt 10 ]; then
        ko "$name (took $secs s)"
    else
        ok "$name"
    fi
}
CAP="capture -m $G/text.gguf --mmproj $G/mmproj.gguf -q x -o $TMP/hostile.safetensors"
TAB=$(printf '\t')
while IFS=$TAB read -r h_reader h_name h_want; do
    h_file="$HF/$h_name"
    case $h_reader in
        # shellcheck disable=SC2086
        image) bounded "hostile_capture_$h_name" "$h_file" "$h_want" -- "$BIN" $CAP --image "$h_file" ;;
        train) bounded "hostile_train_$h_name" "$h_file" "$h_want" -- "$BIN" train --config "$h_file" --out "$TMP/htrain" ;;
        gguf) bounded "hostile_info_$h_name" "$h_file" "$h_want" -- "$BIN" info "$h_file"
              bounded "hostile_tensor_$h_name" "$h_file" "$h_want" -- "$BIN" tensor "$h_file" w -o "$TMP/hzero.npy"
              if [ -e "$TMP/hzero.npy" ]; then ko "hostile_tensor_no_output_$h_name"; else ok "hostile_tensor_no_output_$h_name"; fi ;;
        safetensors) mkdir -p "$TMP/ids_$h_name" && cp "$h_file" "$TMP/ids_$h_name/ids.safetensors"
                     bounded "hostile_ids_stats_$h_name" "$TMP/ids_$h_name" "$h_want" -- "$BIN" ids stats "$TMP/ids_$h_name" ;;
        coco) expect "hostile_coco_$h_name" 0 "0 records, 1 rows skipped" -- "$BIN" stimuli coco --coco-json "$h_file" \
                  --coco-images /data/val2017 --out "$TMP/hcoco"
              if grep -q "$h_want" "$TMP/hcoco/manifest.json"; then ok "hostile_coco_reason"; else ko "hostile_coco_reason"; fi ;;
        npy) ;; # no command reads .npy files: tests/test_hostile.c reads them
        *) ko "hostile: unknown reader $h_reader" ;;
    esac
done <"$HF/expected.txt"
# huge dimensions in a few bytes: 16-bit PGM/PPM (once a crash in stb_image), PNG, BMP, JPEG, GIF headers
printf 'P5\n8000 8000\n65535\n' >"$TMP/big16.pgm"; head -c 100000 /dev/zero >>"$TMP/big16.pgm"
bounded hostile_pgm16_8000 "$TMP/big16.pgm" "maxval 65535" -- "$BIN" $CAP --image "$TMP/big16.pgm"
printf 'P6\n3000 3000\n65535\n' >"$TMP/big16.ppm"; head -c 100000 /dev/zero >>"$TMP/big16.ppm"
bounded hostile_ppm16_3000 "$TMP/big16.ppm" "maxval 65535" -- "$BIN" $CAP --image "$TMP/big16.ppm"
printf 'P6\n8192 8192\n255\n' >"$TMP/short.ppm"; head -c 1000 /dev/zero >>"$TMP/short.ppm"
bounded hostile_ppm_truncated "$TMP/short.ppm" "truncated PGM/PPM" -- "$BIN" $CAP --image "$TMP/short.ppm"
printf '\211PNG\r\n\032\n\000\000\000\015IHDR\000\000\100\000\000\000\100\000\010\002\000\000\000\000\000\000\000' >"$TMP/bomb.png"
bounded hostile_png_16384 "$TMP/bomb.png" "16384x16384 = 268435456 pixels exceeds the pixel budget" -- "$BIN" $CAP --image "$TMP/bomb.png"
printf '\211PNG\r\n\032\n\000\000\000\015IHDR\000\000\102\150\000\000\102\150\010\002\000\000\000\000\000\000\000' >"$TMP/bomb17.png"
bounded hostile_png_17000 "$TMP/bomb17.png" "17000x17000" -- "$BIN" $CAP --image "$TMP/bomb17.png"
printf 'BM\000\000\000\000\000\000\000\000\066\000\000\000\050\000\000\000\003\000\000\000\002\000\110\000\001\000\030\000\000\000\000\000' >"$TMP/tall.bmp"
head -c 40 /dev/zero >>"$TMP/tall.bmp"
bounded hostile_bmp_3x4718594 "$TMP/tall.bmp" "3x4718594" -- "$BIN" $CAP --image "$TMP/tall.bmp"
printf 'BM\000\000\000\000\000\000\000\000\066\000\000\000\050\000\000\000\240\017\000\000\270\013\000\000\001\000\030\000\000\000\000\000' >"$TMP/short.bmp"
head -c 40 /dev/zero >>"$TMP/short.bmp"
bounded hostile_bmp_truncated "$TMP/short.bmp" "truncated BMP: 4000x3000" -- "$BIN" $CAP --image "$TMP/short.bmp"
printf '\377\330\377\300\000\021\010\352\140\352\140\003\001\042\000\002\021\001\003\021\001\377\331' >"$TMP/huge.jpg"
bounded hostile_jpeg_60000 "$TMP/huge.jpg" "60000x60000" -- "$BIN" $CAP --image "$TMP/huge.jpg"
printf 'GIF89a\377\377\377\377\000\000\000;' >"$TMP/huge.gif"
bounded hostile_gif_65535 "$TMP/huge.gif" "65535x65535" -- "$BIN" $CAP --image "$TMP/huge.gif"
mkdir -p "$TMP/hframes" && cp "$TMP/bomb.png" "$TMP/hframes/f0.png" && cp "$TMP/bomb.png" "$TMP/hframes/f1.png"
bounded hostile_video_frames "$TMP/hframes/f0.png" "pixel budget" -- "$BIN" ask -m "$G/text.gguf" --mmproj "$G/mmproj.gguf" \
    --video "$TMP/hframes" --frames 2 -q x
# the pixel budget from the environment, and its documentation in --help
IDSCOPE_MAX_PIXELS=100 bounded hostile_budget_env "$G/image.png" "pixel budget of 100" -- "$BIN" $CAP --image "$G/image.png"
IDSCOPE_MAX_PIXELS=lots bounded hostile_budget_env_bad "IDSCOPE_MAX_PIXELS" "IDSCOPE_MAX_PIXELS='lots' is not a pixel count" \
    -- "$BIN" $CAP --image "$G/image.png"
for c in capture ask stimuli "temporal swap"; do
    # shellcheck disable=SC2086
    expect "help_pixel_budget_$(echo "$c" | tr ' ' _)" 0 "IDSCOPE_MAX_PIXELS=N" -- "$BIN" $c --help
done
# result files with numbers out of any int's range: score refuses them, report draws what it can
mkdir -p "$TMP/hres/ids" "$TMP/hres/steer"
printf '{"layers": [{"layer": 1, "r2": 0.5, "pair_cosine": 0.5, "pca": [{"pc1": 1, "pc2": 2, "x": 1e300, "y": -7}]}]}' \
    >"$TMP/hres/ids/stats.json"
printf '{"layers": [{"layer": 1e300, "id": 0.5, "noise": 0.1}], "best3_id": 1}' >"$TMP/hres/steer/steer-belief.json"
bounded hostile_score_layer "$TMP/hres/steer/steer-belief.json" "'layer' is 1e+300" -- "$BIN" score \
    --stats "$TMP/hres/ids/stats.json" --steer "$TMP/hres/steer/steer-belief.json" -o "$TMP/hres/score.json"
expect hostile_report 0 "sections" -- "$BIN" report "$TMP/hres"
# write failures (a file-size limit; SIGXFSZ ignored): exit 1, an I/O error naming the file, nothing left
mkdir -p "$TMP/wfail"
(trap '' XFSZ && ulimit -f 8 && exec "$BIN" tensor "$SH/golden/quants/quants.gguf" Q4_K -o "$TMP/wfail/q.npy") \
    >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "q.npy: write failed.*File too large" "$TMP/err" && [ -z "$(ls "$TMP/wfail")" ]; then
    ok write_failure_leaves_nothing; else ko "write_failure_leaves_nothing (exit $rc: $(cat "$TMP/err"))"; fi
(trap '' XFSZ && ulimit -f 2 && exec "$BIN" stimuli grid --out "$TMP/wfail/st" --size 32 --grid 2 --limit 2) \
    >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "File too large" "$TMP/err" && [ ! -e "$TMP/wfail/st/manifest.json" ] &&
   ! ls "$TMP/wfail/st" | grep -q '\.tmp\.'; then
    ok write_failure_stimuli; else ko "write_failure_stimuli (exit $rc: $(cat "$TMP/err"))"; fi

# The real-image path (docs/EXPERIMENTS.md, image sets): a grid set in the COCO-Spatial format made by
# the stimulus engine (boxes known), imported with its instances, run on the bundled model
expect coco_format 0 "instances.json and images/" -- "$BIN" stimuli grid --out "$TMP/cf" --coco-format --size 64 \
    --sizes 0.9 --all-pairs
expect coco_import_boxes 0 "480 records, 0 rows skipped, boxes for 960 of 960 objects" -- "$BIN" stimuli coco \
    --coco-json "$TMP/cf/coco_qa_two_obj.json" --coco-images "$TMP/cf/images" --coco-instances "$TMP/cf/instances.json" \
    --out "$TMP/cc"
expect coco_format_other_set 2 "grid set only" -- "$BIN" stimuli depth --out "$TMP/cfd" --coco-format
expect bundled_ids 0 "ids.json" -- "$BIN" ids extract --objects "red circle,blue square" --sizes 0.9 --out "$TMP/bids" --threads 1
expect coco_steer_belief 0 "^best 3 layers: ID" -- "$BIN" steer belief --set "$TMP/cc" --ids "$TMP/bids/ids.safetensors" \
    --out "$TMP/cb" --n 48 --threads 1
J=$(tr -d ' \t\n' < "$TMP/cb/steer-belief.json")
ID=$(printf '%s' "$J" | sed -n 's/.*"best3_id":\([0-9.]*\).*/\1/p')
NO=$(printf '%s' "$J" | sed -n 's/.*"best3_noise":\([0-9.]*\).*/\1/p')
if awk -v a="$ID" -v b="$NO" 'BEGIN { exit !(a != "" && b != "" && a > b + 0.2) }'; then ok "coco_belief_id_above_noise ($ID vs $NO)"
else ko "coco_belief_id_above_noise ($ID vs $NO)"; fi
case "$J" in *'"relation":"left_right","left":[{"token":277,"piece":"▁left","variant":"left"}],"right":[{"token":283'*'"relation":"above_below","above":[{"token":289,"piece":"▁above"'*'"used":48'*)
    ok coco_belief_answer_tokens_and_records ;;
*) ko coco_belief_answer_tokens_and_records ;;
esac
expect coco_swap 0 "^0,image,1.0000" -- "$BIN" swap --set "$TMP/cc" --out "$TMP/cs" --n 8 --threads 1
expect coco_grid 0 "mean change of log P(left)" -- "$BIN" steer grid --set "$TMP/cc" --ids "$TMP/bids/ids.safetensors" \
    --out "$TMP/cg" --n 8 --threads 1
expect coco_depth 0 "^layer,above_below_down" -- "$BIN" depth --set "$TMP/cc" --ids "$TMP/bids/ids.safetensors" \
    --out "$TMP/cd" --n 8 --threads 1
if tr -d ' \t\n' < "$TMP/cd/depth.json" | grep -q '"grid_images":8,"depth_images":8'; then ok coco_depth_both_questions
else ko coco_depth_both_questions; fi
expect coco_ids_extract 0 "ids.json" -- "$BIN" ids extract --set "$TMP/cc" --out "$TMP/cx" --threads 1
if tr -d ' \t\n' < "$TMP/cx/ids.json" | grep -q '"pairs":2.*"empty_cells":0'; then ok coco_ids_extract_covers_grid
else ko coco_ids_extract_covers_grid; fi
# the paper's variants beside ours: mirrored-pair arbitrary steering (no true cell), raw depth pushes,
# the hue-shift attribute control
expect coco_grid_paper 0 "mean change of log P(left)" -- "$BIN" steer grid --variant paper --set "$TMP/cc" \
    --ids "$TMP/bids/ids.safetensors" --out "$TMP/cg" --n 8 --threads 1
if tr -d ' \t\n' < "$TMP/cg/steer-grid-left_right-paper.json" | grep -q '"variant":"paper:.*"used":8' &&
   [ -s "$TMP/cg/steer-grid-left_right.json" ]; then ok coco_grid_paper_file; else ko coco_grid_paper_file; fi
expect coco_depth_raw 0 "^layer,above_below_down" -- "$BIN" depth --raw --set "$TMP/cc" --ids "$TMP/bids/ids.safetensors" \
    --out "$TMP/cdr" --n 4 --threads 1
if tr -d ' \t\n' < "$TMP/cdr/depth.json" | grep -q '"push":"raw:.*"raw":true'; then ok coco_depth_raw_recorded
else ko coco_depth_raw_recorded; fi
expect coco_swap_hue 0 "^0,image,1.0000" -- "$BIN" swap --hue --set "$TMP/cc" --out "$TMP/cs" --n 4 --threads 1
if tr -d ' \t\n' < "$TMP/cs/swap-hue.json" | grep -q '"edit":"hueshiftofthewholeimage"'; then ok coco_swap_hue_file
else ko coco_swap_hue_file; fi
expect coco_swap_recolor_needs_scenes 1 "use --hue\|--hue shifts" -- "$BIN" swap --control --set "$TMP/cc" --out "$TMP/cs" --n 2
expect grid_bad_variant 2 "--variant theirs is not one of ours, paper" -- "$BIN" steer grid --ids x --out y --variant theirs
expect set_and_objects 2 "exclude each other" -- "$BIN" swap --set "$TMP/cc" --objects "red circle,blue square" --out "$TMP/x"
expect set_missing 1 "cannot" -- "$BIN" swap --set "$TMP/none" --out "$TMP/x"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
