#!/usr/bin/python3
"""Write tests/golden/mllama-tiny: a random-weight Llama-3.2-Vision (`mllama`) checkpoint in the
Hugging Face layout (two safetensors shards with model.safetensors.index.json, config.json,
tokenizer.json, tokenizer_config.json, preprocessor_config.json), an image, a prompt and the
reference activations of a NumPy transcription of the HF definition (transformers
modeling_mllama.py, image_processing_mllama.py, processing_mllama.py), in float64 on the stored
weights. The same seed gives the same bytes.

The model, shrunk from the 11B's layout:
- vision: tiles of 56 px, patches of 14 (16 patches + CLS = 17 rows per tile, padded to 24 as HF pads
  to a multiple of 8), up to 4 tiles (8 aspect ratios), width 32, 2 heads, MLP 64 (erf GELU), 4
  local blocks then 2 gated global blocks, features of local blocks 1 and 3 beside the last
  (intermediate_layers_indices), gated pre/post tile embeddings and gated positional embedding
  (with its per-aspect-ratio tile table); projector 96 -> 64;
- text: width 64, 4 heads / 2 KV heads of 16, MLP 128, 8 layers with gated cross-attention at layers
  1, 4 and 6 (own q/k RMSNorms over the head), Llama 3 RoPE scaling (rope_type llama3: the three
  frequency bands all occur at head size 16 and base 500000);
- a byte-level BPE vocabulary with the Llama 3 pre-tokenizer, the words of the tests as single
  tokens, Llama 3's special tokens and <|image|> one past the text vocabulary (embed_tokens has 8
  rows more than lm_head, as in the published checkpoints).

Usage: make_mllama.py [OUT_DIR]   (default: the folder beside this script)
"""
import json
import math
import os
import re
import struct
import sys

import numpy as np
from PIL import Image

rng = np.random.default_rng(32011)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "mllama-tiny")
os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
os.makedirs(os.path.join(OUT, "preprocess"), exist_ok=True)

NE, NH, NKV, HD, NFF, NL = 64, 4, 2, 16, 128, 8
XL = [1, 4, 6]
EPS = 1e-5
THETA = 500000.0
ROPE = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
        "rope_type": "llama3"}
VE, VH, VFF, VL, VGL, VIMG, VP, TILES = 32, 2, 64, 4, 2, 56, 14, 4
INTER = [1, 3]
VEPS = 1e-5
NPATCH = (VIMG // VP) ** 2 + 1               # 17 rows per tile (CLS first)
NPAD = NPATCH + (8 - NPATCH % 8) % 8         # 24
VOUT = VE * (1 + len(INTER))                 # 96
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
FMIN = float(np.finfo(np.float32).min)


def aspect_ratios(n):  # image_processing_mllama.get_all_supported_aspect_ratios
    return [(w, h) for w in range(1, n + 1) for h in range(1, n + 1) if w * h <= n]


RATIOS = aspect_ratios(TILES)


# ---- vocabulary: GPT-2 byte alphabet, words as single tokens ------------------------------------
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


B2U = bytes_to_unicode()
WORDS = ["user", "assistant", "Is", "is", "the", "red", "green", "blue", "yellow", "circle", "square", "triangle",
         "star", "cross", "to", "left", "right", "of", "or", "above", "below", "in", "front", "behind", "near", "far",
         "before", "after", "Where", "What", "on", "image", "Answer", "with", "one", "word", "a", "and", "yes", "no",
         "object", "closer", "camera", "which", "Left", "Right", "Above", "Below", "Yes", "No", "Front", "Behind"]
STARTS = ["user", "assistant", "Is", "Where", "What", "Answer", "left", "right", "above", "below", "front", "behind", "yes", "no",
          "Left", "Right", "Above", "Below", "Front", "Behind", "Yes", "No", "near", "far", "before", "after"]
vocab = [B2U[b] for b in range(256)]
merges = []
have = set(vocab)


def chain(stem):
    cur = stem[0]
    for ch in stem[1:]:
        if cur + ch not in have:
            merges.append((cur, ch))
            vocab.append(cur + ch)
            have.add(cur + ch)
        cur += ch


chain("\u010a\u010a")  # "\n\n"
for wd in WORDS:  # " word" first: its merges rank before the bare words' (see the check below)
    chain("\u0120" + wd)
for wd in STARTS:
    chain(wd)
SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
           "<|finetune_right_pad_id|>"]
NV = len(vocab) + len(SPECIAL)  # text vocabulary (lm_head rows); <|image|> is NV
TOK = {t: i for i, t in enumerate(vocab)}
for i, s in enumerate(SPECIAL):
    TOK[s] = len(vocab) + i
TOK["<|image|>"] = NV
IMAGE_ID = NV
RANK = {m: i for i, m in enumerate(merges)}
PRE_RE = re.compile(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}| ?[^\sA-Za-z0-9]+[\r\n]*|"
                    r"\s*[\r\n]+|\s+(?!\S)|\s+")


def bpe(word):
    parts = list(word)
    while len(parts) > 1:
        best = min(range(len(parts) - 1), key=lambda i: (RANK.get((parts[i], parts[i + 1]), 1 << 30), i))
        if (parts[best], parts[best + 1]) not in RANK:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return [TOK[p] for p in parts]


def tokenize(text):  # ASCII text: the Llama 3 regex with \p{L} = [A-Za-z], \p{N} = [0-9]; BOS first
    ids = [TOK["<|begin_of_text|>"]]
    specials = sorted(TOK.keys() - set(vocab), key=len, reverse=True)
    pat = "(" + "|".join(re.escape(s) for s in specials) + ")"
    for piece in re.split(pat, text):
        if piece in TOK and piece not in vocab:
            ids.append(TOK[piece])
            continue
        for pre in PRE_RE.findall(piece):
            ids += bpe("".join(B2U[b] for b in pre.encode()))
    return ids


for wd in WORDS:
    assert len(bpe("\u0120" + wd)) == 1, wd
for wd in STARTS:
    assert len(bpe(wd)) == 1, wd


# ---- weights (HF names and shapes; matrices F16, norms, gates and embeddings of the tower F32) ---
def f16(a):
    return np.asarray(a, np.float32).astype(np.float16)


def mat(out_f, in_f):
    return f16(rng.standard_normal((out_f, in_f)) / math.sqrt(in_f))


def vec(n, scale=0.1, base=0.0):
    return (base + scale * rng.standard_normal(n)).astype(np.float32)


def gate(lo, hi):
    return np.array([rng.uniform(lo, hi)], np.float32)


LM, VM = "language_model.model.", "vision_model."
T = {LM + "embed_tokens.weight": f16(rng.standard_normal((NV + 8, NE)) * 0.5), LM + "norm.weight": vec(NE, 0.1, 1.0),
     "language_model.lm_head.weight": mat(NV, NE)}
for l in range(NL):
    p = f"{LM}layers.{l}."
    att = "cross_attn." if l in XL else "self_attn."
    T[p + att + "q_proj.weight"] = mat(NH * HD, NE)
    T[p + att + "k_proj.weight"] = mat(NKV * HD, NE)
    T[p + att + "v_proj.weight"] = mat(NKV * HD, NE)
    T[p + att + "o_proj.weight"] = mat(NE, NH * HD)
    T[p + "mlp.gate_proj.weight"] = mat(NFF, NE)
    T[p + "mlp.up_proj.weight"] = mat(NFF, NE)
    T[p + "mlp.down_proj.weight"] = mat(NE, NFF)
    T[p + "input_layernorm.weight"] = vec(NE, 0.1, 1.0)
    T[p + "post_attention_layernorm.weight"] = vec(NE, 0.1, 1.0)
    if l in XL:
        T[p + "cross_attn.q_norm.weight"] = vec(HD, 0.1, 1.0)
        T[p + "cross_attn.k_norm.weight"] = vec(HD, 0.1, 1.0)
        T[p + "cross_attn_attn_gate"] = gate(0.3, 0.9)
        T[p + "cross_attn_mlp_gate"] = gate(-0.9, -0.3)
V = {VM + "patch_embedding.weight": f16(rng.standard_normal((VE, 3, VP, VP)) / math.sqrt(3 * VP * VP)),
     VM + "class_embedding": vec(VE, 0.5),
     VM + "gated_positional_embedding.embedding": vec(NPATCH * VE, 0.5).reshape(NPATCH, VE),
     VM + "gated_positional_embedding.gate": gate(0.2, 0.6),
     VM + "gated_positional_embedding.tile_embedding.weight": vec((len(RATIOS) + 1) * TILES * NPATCH * VE, 0.5)
     .reshape(len(RATIOS) + 1, TILES * NPATCH * VE),
     VM + "pre_tile_positional_embedding.embedding.weight": vec((len(RATIOS) + 1) * TILES * VE, 0.5)
     .reshape(len(RATIOS) + 1, TILES * VE),
     VM + "pre_tile_positional_embedding.gate": gate(0.2, 0.6),
     VM + "post_tile_positional_embedding.embedding.weight": vec((len(RATIOS) + 1) * TILES * VE, 0.5)
     .reshape(len(RATIOS) + 1, TILES * VE),
     VM + "post_tile_positional_embedding.gate": gate(0.2, 0.6),
     VM + "layernorm_pre.weight": vec(VE, 0.1, 1.0), VM + "layernorm_pre.bias": vec(VE),
     VM + "layernorm_post.weight": vec(VE, 0.1, 1.0), VM + "layernorm_post.bias": vec(VE),
     "multi_modal_projector.weight": mat(NE, VOUT), "multi_modal_projector.bias": vec(NE)}
for part, n in (("transformer", VL), ("global_transformer", VGL)):
    for l in range(n):
        p = f"{VM}{part}.layers.{l}."
        for k in "qkvo":
            V[p + f"self_attn.{k}_proj.weight"] = mat(VE, VE)
        V[p + "mlp.fc1.weight"], V[p + "mlp.fc1.bias"] = mat(VFF, VE), vec(VFF)
        V[p + "mlp.fc2.weight"], V[p + "mlp.fc2.bias"] = mat(VE, VFF), vec(VE)
        for nm in ("input_layernorm", "post_attention_layernorm"):
            V[p + nm + ".weight"], V[p + nm + ".bias"] = vec(VE, 0.1, 1.0), vec(VE)
        if part == "global_transformer":
            V[p + "gate_attn"], V[p + "gate_ffn"] = gate(0.4, 1.2), gate(0.4, 1.2)

ST_DTYPE = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}


def write_safetensors(path, tensors):
    head, off, blobs = {}, 0, []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        head[name] = {"dtype": ST_DTYPE[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for x in blobs:
            f.write(x)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
write_safetensors(os.path.join(OUT, SHARDS[0]), V)
write_safetensors(os.path.join(OUT, SHARDS[1]), T)
write_json(os.path.join(OUT, "model.safetensors.index.json"), {
    "metadata": {"total_size": sum(a.nbytes for a in list(V.values()) + list(T.values()))},
    "weight_map": {**{k: SHARDS[0] for k in sorted(V)}, **{k: SHARDS[1] for k in sorted(T)}}})
write_json(os.path.join(OUT, "config.json"), {
    "architectures": ["MllamaForConditionalGeneration"], "model_type": "mllama", "image_token_index": IMAGE_ID,
    "torch_dtype": "float16",
    "text_config": {"model_type": "mllama_text_model", "vocab_size": NV, "hidden_size": NE, "num_hidden_layers": NL,
                    "num_attention_heads": NH, "num_key_value_heads": NKV, "intermediate_size": NFF,
                    "rope_theta": THETA, "rope_scaling": ROPE, "rms_norm_eps": EPS, "max_position_embeddings": 131072,
                    "cross_attention_layers": XL, "hidden_act": "silu", "tie_word_embeddings": False,
                    "bos_token_id": TOK["<|begin_of_text|>"], "eos_token_id": TOK["<|eot_id|>"],
                    "pad_token_id": TOK["<|finetune_right_pad_id|>"]},
    "vision_config": {"model_type": "mllama_vision_model", "hidden_size": VE, "attention_heads": VH,
                      "intermediate_size": VFF, "num_hidden_layers": VL, "num_global_layers": VGL,
                      "image_size": VIMG, "patch_size": VP, "max_num_tiles": TILES, "num_channels": 3,
                      "intermediate_layers_indices": INTER, "vision_output_dim": VOUT, "norm_eps": VEPS,
                      "hidden_act": "gelu", "supported_aspect_ratios": [list(r) for r in RATIOS]}})
added = [{"id": TOK[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
          "special": True} for s in SPECIAL + ["<|image|>"]]
LLAMA3_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
             "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
write_json(os.path.join(OUT, "tokenizer.json"), {
    "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_RE}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                  {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [], "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                                                                            "ids": [TOK["<|begin_of_text|>"]],
                                                                            "tokens": ["<|begin_of_text|>"]}}},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
              "vocab": {t: i for i, t in enumerate(vocab)}, "merges": [list(m) for m in merges]}})
TEMPLATE = ("{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
            "'<|end_header_id|>\\n\\n' }}{%- for content in message['content'] %}{%- if content['type'] == 'image' %}"
            "{{- '<|image|>' }}{%- elif content['type'] == 'text' %}{{- content['text'] }}{%- endif %}{%- endfor %}"
            "{{- '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}"
            "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")
write_json(os.path.join(OUT, "tokenizer_config.json"), {
    "add_bos_token": True, "add_eos_token": False, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
    "pad_token": "<|finetune_right_pad_id|>", "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": TEMPLATE})
write_json(os.path.join(OUT, "preprocessor_config.json"), {
    "image_processor_type": "MllamaImageProcessor", "do_convert_rgb": True, "do_normalize": True, "do_pad": True,
    "do_rescale": True, "do_resize": True, "image_mean": MEAN, "image_std": STD, "max_image_tiles": TILES,
    "resample": 2, "rescale_factor": 1 / 255, "size": {"height": VIMG, "width": VIMG}})


# ---- image processor (MllamaImageProcessor, slow) ------------------------------------------------
def optimal_canvas(h, w):  # get_optimal_tiled_canvas -> (canvas_h, canvas_w)
    sizes = np.array(RATIOS) * VIMG
    th, tw = sizes.T
    sh, sw = th / h, tw / w
    scales = np.where(sw > sh, sh, sw)
    up = scales[scales >= 1]
    sel = np.min(up) if len(up) else np.max(scales[scales < 1])
    chosen = sizes[scales == sel]
    return chosen[np.argmin(chosen[:, 0] * chosen[:, 1])] if len(chosen) > 1 else chosen[0]


def fit_to_canvas(h, w, ch, cw):  # get_image_size_fit_to_canvas -> (new_h, new_w)
    tw, th = int(np.clip(w, VIMG, cw)), int(np.clip(h, VIMG, ch))
    sh, sw = th / h, tw / w
    if sw < sh:
        return min(math.floor(h * sw) or 1, th), tw
    return th, min(math.floor(w * sh) or 1, tw)


def preprocess(rgb):
    """-> tiles [TILES, 3, S, S] float32 (unused tiles zero), aspect ratio id, number of tiles, resized uint8."""
    h, w = rgb.shape[:2]
    ch, cw = (int(x) for x in optimal_canvas(h, w))
    nh, nw = fit_to_canvas(h, w, ch, cw)
    img = np.array(Image.fromarray(rgb, "RGB").resize((nw, nh), resample=Image.BILINEAR)) if (nh, nw) != (h, w) else rgb
    canvas = np.zeros((ch, cw, 3), np.uint8)
    canvas[:nh, :nw] = img
    a = (canvas.astype(np.float64) * (1 / 255)).astype(np.float32)
    a = ((a - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).transpose(2, 0, 1)
    th, tw = ch // VIMG, cw // VIMG
    tiles = np.zeros((TILES, 3, VIMG, VIMG), np.float32)
    for r in range(th):
        for c in range(tw):
            tiles[r * tw + c] = a[:, r * VIMG:(r + 1) * VIMG, c * VIMG:(c + 1) * VIMG]
    return tiles, RATIOS.index((th, tw)) + 1, th * tw, img


def pattern(w_, h_, k):
    y, x = np.mgrid[0:h_, 0:w_]
    a = np.stack([(x * 37 + y * 11 + k) % 256, (x * x + 3 * y * y) % 256, np.where((x // 5 + y // 4) % 2, 255, 0)], -1)
    return a.astype(np.uint8)


# preprocessing cases: canvases of 2x2 (shrunk), 1x3 (kept), 3x1 (grown), 1x1 (shrunk); the resized bytes
# and the tile layout are stored, the float pixels follow from them
pre_cases = {}
for (pw, ph) in [(200, 120), (150, 50), (60, 500), (700, 300)]:
    src = pattern(pw, ph, pw)
    Image.fromarray(src, "RGB").save(os.path.join(OUT, "preprocess", f"src_{pw}x{ph}.png"))
    tiles, ar, nt, resized = preprocess(src)
    Image.fromarray(resized, "RGB").save(os.path.join(OUT, "preprocess", f"resized_{pw}x{ph}.png"))
    pre_cases[f"{pw}x{ph}"] = {"aspect_ratio_id": ar, "n_tiles": nt, "resized": list(resized.shape[1::-1])}
write_json(os.path.join(OUT, "preprocess", "cases.json"), pre_cases)

yy, xx = np.mgrid[0:120, 0:200]
img = np.full((120, 200, 3), 235.0)
img[(xx - 50) ** 2 + (yy - 60) ** 2 < 30 ** 2] = [220, 30, 30]
img[(abs(xx - 150) < 28) & (abs(yy - 60) < 28)] = [30, 40, 210]
img = np.clip(img, 0, 255).astype(np.uint8)
Image.fromarray(img, "RGB").save(os.path.join(OUT, "image.png"))
QUESTION = "Is the red circle to the left or right of the blue square?"
PROMPT = f"<|start_header_id|>user<|end_header_id|>\n\n<|image|>{QUESTION}<|eot_id|>" \
         "<|start_header_id|>assistant<|end_header_id|>\n\n"
with open(os.path.join(OUT, "prompt.txt"), "w") as f:
    f.write(PROMPT.replace("<|image|>", "<image>"))


# ---- MllamaVisionModel + multi_modal_projector, transcribed (float64) -------------------------------
def g(name, src=V):
    return src[name].astype(np.float64)


def layernorm(x, wt, b, eps=VEPS):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * wt + b


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def softmax(s):
    s = s - s.max(-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(-1, keepdims=True)


def vision_layer(x, bias, p, gated):
    h = layernorm(x, g(p + "input_layernorm.weight"), g(p + "input_layernorm.bias"))
    n, hd = x.shape[0], VE // VH
    q, k, v = (h @ g(p + f"self_attn.{c}_proj.weight").T for c in "qkv")
    o = np.zeros((n, VE))
    for hh in range(VH):
        sl = slice(hh * hd, (hh + 1) * hd)
        o[:, sl] = softmax(q[:, sl] @ k[:, sl].T / math.sqrt(hd) + bias) @ v[:, sl]
    o = o @ g(p + "self_attn.o_proj.weight").T
    x = x + (math.tanh(V[p + "gate_attn"][0]) if gated else 1.0) * o
    h = layernorm(x, g(p + "post_attention_layernorm.weight"), g(p + "post_attention_layernorm.bias"))
    m = gelu(h @ g(p + "mlp.fc1.weight").T + g(p + "mlp.fc1.bias")) @ g(p + "mlp.fc2.weight").T + g(p + "mlp.fc2.bias")
    return x + (math.tanh(V[p + "gate_ffn"][0]) if gated else 1.0) * m


def hf_vision(tiles, ar, nt):
    np_ = (VIMG // VP) ** 2
    w = g(VM + "patch_embedding.weight").reshape(VE, -1)
    x = np.zeros((TILES, np_, VE))
    for t in range(TILES):
        pt = tiles[t].astype(np.float64).reshape(3, VIMG // VP, VP, VIMG // VP, VP).transpose(1, 3, 0, 2, 4)
        x[t] = pt.reshape(np_, -1) @ w.T
    th = math.tanh
    x = x + th(V[VM + "pre_tile_positional_embedding.gate"][0]) * \
        g(VM + "pre_tile_positional_embedding.embedding.weight")[ar].reshape(TILES, 1, VE)
    x = np.concatenate([np.broadcast_to(g(VM + "class_embedding"), (TILES, 1, VE)), x], 1)
    gp = th(V[VM + "gated_positional_embedding.gate"][0])
    x = x + (1 - gp) * g(VM + "gated_positional_embedding.embedding")[None]
    x = x + gp * g(VM + "gated_positional_embedding.tile_embedding.weight")[ar].reshape(TILES, NPATCH, VE)
    x = layernorm(x, g(VM + "layernorm_pre.weight"), g(VM + "layernorm_pre.bias"))
    x = np.concatenate([x, np.zeros((TILES, NPAD - NPATCH, VE))], 1).reshape(TILES * NPAD, VE)
    masked = np.ones((TILES, NPAD))  # _prepare_aspect_ratio_attention_mask: 1 = padding patch or unused tile
    masked[:nt, :NPATCH] = 0
    masked = masked.reshape(-1)
    bias = np.outer(masked, masked) * FMIN
    hs, blocks = [x], []
    for l in range(VL):
        x = vision_layer(x, bias, f"{VM}transformer.layers.{l}.", False)
        hs.append(x)
        blocks.append(x)
    x = layernorm(x, g(VM + "layernorm_post.weight"), g(VM + "layernorm_post.bias")).reshape(TILES, NPAD, VE)
    x = x + th(V[VM + "post_tile_positional_embedding.gate"][0]) * \
        g(VM + "post_tile_positional_embedding.embedding.weight")[ar].reshape(TILES, 1, VE)
    x = x.reshape(-1, VE)
    for l in range(VGL):
        x = vision_layer(x, bias, f"{VM}global_transformer.layers.{l}.", True)
        blocks.append(x)
    final = x.reshape(TILES, NPAD, VE)[:, :NPATCH]
    inter = np.stack([hs[i] for i in INTER], -1).reshape(TILES, NPAD, -1)[:, :NPATCH]
    feats = np.concatenate([final, inter], -1).reshape(TILES * NPATCH, VOUT)
    cross = feats @ g("multi_modal_projector.weight").T + g("multi_modal_projector.bias")
    return np.stack(blocks), feats, cross


# ---- MllamaTextModel with cross-attention, transcribed (float64) ------------------------------------
def rms(x, wt, eps=EPS):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * wt


def llama3_inv_freq():  # modeling_rope_utils._compute_llama3_parameters
    inv = 1.0 / THETA ** (np.arange(0, HD, 2, dtype=np.float64) / HD)
    f, lo, hi, old = ROPE["factor"], ROPE["low_freq_factor"], ROPE["high_freq_factor"], \
        ROPE["original_max_position_embeddings"]
    lo_wl, hi_wl = old / lo, old / hi
    wl = 2 * math.pi / inv
    out = np.where(wl > lo_wl, inv / f, inv)
    smooth = (old / wl - lo) / (hi - lo)
    smoothed = (1 - smooth) * out / f + smooth * out
    medium = ~(wl < hi_wl) & ~(wl > lo_wl)
    return np.where(medium, smoothed, out)


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def cross_mask(tokens, n_tiles):
    """processing_mllama: get_cross_attention_token_mask + convert_sparse_cross_attention_mask_to_dense,
    then _prepare_cross_attention_mask: bias [n, n_keys] and full_text_row_masked_out_mask [n]."""
    n = len(tokens)
    locs = [i for i, t in enumerate(tokens) if t == IMAGE_ID]
    spans = [[a, b] for a, b in zip(locs[:-1], locs[1:])] + ([[locs[-1], n]] if locs else [])
    last = spans[-1][1] if spans else n
    for s in spans[::-1]:
        if s[0] == s[1] - 1:
            s[1] = last
        last = s[1]
    dense = np.zeros((n, len(locs), TILES))
    for i, (a, b) in enumerate(spans):
        dense[a:b, i, :n_tiles[i]] = 1
    m = np.repeat(dense, NPATCH, axis=2).reshape(n, -1)
    inv = 1.0 - m
    bias = np.where(inv != 0, FMIN, inv)
    full = (bias != FMIN).any(-1).astype(np.float64)
    return bias * full[:, None], full


def hf_text(tokens, cross, bias, full):
    x = g(LM + "embed_tokens.weight", T)[tokens]
    n = len(tokens)
    ang = np.arange(n)[:, None] * llama3_inv_freq()[None]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    causal = np.triu(np.full((n, n), -np.inf), 1)
    resid, xouts = [x], []
    for l in range(NL):
        p = f"{LM}layers.{l}."
        h = rms(x, g(p + "input_layernorm.weight", T))
        if l in XL:
            q = (h @ g(p + "cross_attn.q_proj.weight", T).T).reshape(n, NH, HD)
            q = rms(q, g(p + "cross_attn.q_norm.weight", T))
            k = (cross @ g(p + "cross_attn.k_proj.weight", T).T).reshape(-1, NKV, HD)
            k = rms(k, g(p + "cross_attn.k_norm.weight", T))
            v = (cross @ g(p + "cross_attn.v_proj.weight", T).T).reshape(-1, NKV, HD)
            o = np.zeros((n, NH, HD))
            for hh in range(NH):
                kv = hh // (NH // NKV)
                o[:, hh] = softmax(q[:, hh] @ k[:, kv].T / math.sqrt(HD) + bias) @ v[:, kv]
            o = o.reshape(n, -1) @ g(p + "cross_attn.o_proj.weight", T).T
            xouts.append(o)
            x = x + math.tanh(T[p + "cross_attn_attn_gate"][0]) * o
            h = rms(x, g(p + "post_attention_layernorm.weight", T))
            gt, up = h @ g(p + "mlp.gate_proj.weight", T).T, h @ g(p + "mlp.up_proj.weight", T).T
            mo = (gt / (1 + np.exp(-gt)) * up) @ g(p + "mlp.down_proj.weight", T).T
            x = x + math.tanh(T[p + "cross_attn_mlp_gate"][0]) * (full[:, None] * mo)
        else:
            q = (h @ g(p + "self_attn.q_proj.weight", T).T).reshape(n, NH, HD)
            k = (h @ g(p + "self_attn.k_proj.weight", T).T).reshape(n, NKV, HD)
            v = (h @ g(p + "self_attn.v_proj.weight", T).T).reshape(n, NKV, HD)
            q = q * cos[:, None] + rotate_half(q) * sin[:, None]
            k = k * cos[:, None] + rotate_half(k) * sin[:, None]
            o = np.zeros((n, NH, HD))
            for hh in range(NH):
                kv = hh // (NH // NKV)
                o[:, hh] = softmax(q[:, hh] @ k[:, kv].T / math.sqrt(HD) + causal) @ v[:, kv]
            x = x + o.reshape(n, -1) @ g(p + "self_attn.o_proj.weight", T).T
            h = rms(x, g(p + "post_attention_layernorm.weight", T))
            gt, up = h @ g(p + "mlp.gate_proj.weight", T).T, h @ g(p + "mlp.up_proj.weight", T).T
            x = x + (gt / (1 + np.exp(-gt)) * up) @ g(p + "mlp.down_proj.weight", T).T
        resid.append(x)
    logits = rms(x, g(LM + "norm.weight", T)) @ g("language_model.lm_head.weight", T).T
    return np.stack(resid), np.stack(xouts), logits


tiles, ar, nt, _ = preprocess(img)
blocks, feats, cross = hf_vision(tiles, ar, nt)
tokens = tokenize(PROMPT)
bias, full = cross_mask(tokens, [nt])
resid, xouts, logits = hf_text(tokens, cross, bias, full)
E = os.path.join(OUT, "expected")
np.save(os.path.join(E, "tokens.npy"), np.array(tokens, np.int32))
np.save(os.path.join(E, "pixel_values.npy"), tiles)
np.save(os.path.join(E, "vision_layers.npy"), blocks.astype(np.float32))
np.save(os.path.join(E, "vision_features.npy"), feats.astype(np.float32))
np.save(os.path.join(E, "cross_states.npy"), cross.astype(np.float32))
np.save(os.path.join(E, "resid.npy"), resid.astype(np.float32))
np.save(os.path.join(E, "xattn_out.npy"), xouts.astype(np.float32))
np.save(os.path.join(E, "full_text_row.npy"), full.astype(np.float32))
np.save(os.path.join(E, "logits_last.npy"), logits[-1].astype(np.float32))
write_json(os.path.join(E, "image.json"), {"aspect_ratio_id": ar, "n_tiles": nt, "image_token": IMAGE_ID,
                                           "n_vocab": NV, "cross_attention_layers": XL,
                                           "gates": {str(l): [float(T[f"{LM}layers.{l}.cross_attn_attn_gate"][0]),
                                                              float(T[f"{LM}layers.{l}.cross_attn_mlp_gate"][0])]
                                                     for l in XL}})
print(f"{OUT}: vocabulary {NV} (+ <|image|> {IMAGE_ID}), {len(tokens)} tokens, {nt} tiles (aspect ratio id {ar}), "
      f"last-row argmax {int(np.argmax(logits[-1]))}")
