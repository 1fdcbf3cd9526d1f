#!/usr/bin/python3
"""Golden data for the Gemma 3 family (text arch "gemma3", projector "gemma3"), from two sources that
are not idscope: a NumPy transcription of the HF transformers definition (modeling_gemma3.py:
Gemma3TextModel with its scaled embeddings, the four norms of a layer, QK-norm, query_pre_attn_scalar,
sliding and global layers with their two rotary embeddings, the bidirectional image blocks of
token_type_ids_mask_function, final logit softcapping; Gemma3MultiModalProjector; siglip's
SiglipVisionModel; image_processing_gemma3.py: Pillow bilinear to the square, rescale, normalize) and
llama.cpp (libmtmd + libllama, through llamacpp_dump.c beside this script) on the same GGUF pair.

The pair is a random-weight model with Gemma 3's layout at tiny widths, written with llama.cpp's
gguf-py as its converter writes it (conversion/gemma.py: every norm weight stored as 1 + w, the
input projection stored as HF's (n_embd_v, n_embd) parameter, output tied to token_embd), with a tiny
SentencePiece vocabulary carrying Gemma's special tokens. The sliding window is shrunk to 20 rows so
that the prompt (52 rows) exceeds it; 7 layers, so that layers 0-4 and 6 slide and layer 5 is global
(the default pattern of 6); the global layers' RoPE is scaled linearly by 8 as in the 4B/12B/27B files.

Usage (from the repository root; needs python3-numpy, python3-pil and a llama.cpp build made by
../shared/tools/llamacpp-oracle.sh):
    /usr/bin/python3 tests/golden/make_gemma3.py [--llama-cpp DIR] [--out DIR]
Writes OUT (default tests/golden/gemma3-tiny): text.gguf, mmproj.gguf, image.png, prompt.txt,
tokens.json, expected/*.npy (the HF transcription), preprocess/ (three resizes of HF's image processor)
and llamacpp.txt (max |diff| between llama.cpp and the HF transcription, per array)."""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("--llama-cpp", default=os.path.expanduser("~/.cache/llamacpp-oracle/llama.cpp"))
ap.add_argument("--out", default="tests/golden/gemma3-tiny")
args = ap.parse_args()
sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
import gguf  # noqa: E402

OUT = args.out
os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
os.makedirs(os.path.join(OUT, "preprocess"), exist_ok=True)
rng = np.random.default_rng(3003)

# ---- sizes: Gemma3TextConfig / SiglipVisionConfig at small widths ----
NE, NL, NH, NKV, HD, NFF = 64, 7, 4, 2, 32, 128  # head_dim 32 != n_embd / n_head (Gemma's key_length)
EPS, WINDOW, BASE_GLOBAL, BASE_LOCAL, ROPE_FACTOR, SOFTCAP = 1e-6, 20, 1000000.0, 10000.0, 8.0, 10.0
QPAS = HD  # query_pre_attn_scalar (the released 4B/12B configs: head_dim)
VE, VH, VFF, VDEPTH, VIMG, VPATCH, MM_TOKENS = 32, 2, 48, 2, 224, 14, 16  # 16 x 16 patches pooled 4 x 4
VG = VIMG // VPATCH
POOL = VG // int(math.sqrt(MM_TOKENS))


def f16(a):  # matrices are stored F16 (converter with ftype F16); the reference uses the stored values
    return np.asarray(a, np.float32).astype(np.float16)


def mat(out_f, in_f):
    return f16(rng.standard_normal((out_f, in_f)) / math.sqrt(in_f))


def vec(n, scale=0.1, base=0.0):
    return (base + scale * rng.standard_normal(n)).astype(np.float32)


# ---- a tiny SentencePiece vocabulary with Gemma's special tokens ----
SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
           "<end_of_image>", "<image_soft_token>"]
WORDS = ["user", "model", "Is", "the", "red", "circle", "to", "left", "or", "right", "of", "blue", "square",
         "Where", "is", "on", "image", "What", "colour", "shape", "above", "below", "and", "a", "yes", "no"]
pieces, scores, types = list(SPECIAL), [0.0] * len(SPECIAL), [3] * len(SPECIAL)
types[3] = 2  # <unk>
for b in range(256):
    pieces.append(f"<0x{b:02X}>")
    scores.append(0.0)
    types.append(6)
chars = sorted(set("".join(WORDS) + "?.,!\n") | {"\u2581"})
seen = set(pieces)


def add_piece(p, score):
    if p not in seen:
        seen.add(p)
        pieces.append(p)
        scores.append(score)
        types.append(1)


for c in chars:
    add_piece(c, -10.0)
add_piece("\n\n", -1.0)
for wd in WORDS:  # every prefix of "▁word" and of "word", longer ones preferred
    for stem in ("\u2581" + wd, wd):
        for k in range(2, len(stem) + 1):
            add_piece(stem[:k], -10.0 + k)
NV = len(pieces)
TOK = {p: i for i, p in enumerate(pieces)}

W = {"embd": f16(rng.standard_normal((NV, NE)) * 0.5), "norm": vec(NE, 0.1)}  # HF weights (norms before +1)
for l in range(NL):
    W[l] = {"q": mat(NH * HD, NE), "k": mat(NKV * HD, NE), "v": mat(NKV * HD, NE), "o": mat(NE, NH * HD),
            "gate": mat(NFF, NE), "up": mat(NFF, NE), "down": mat(NE, NFF),
            "in_norm": vec(NE), "post_attn": vec(NE), "pre_ff": vec(NE), "post_ff": vec(NE),
            "q_norm": vec(HD), "k_norm": vec(HD)}
V = {"patch": f16(rng.standard_normal((VE, 3, VPATCH, VPATCH)) / math.sqrt(3 * VPATCH * VPATCH)).astype(np.float32),
     "patch_b": vec(VE), "pos": vec(VE * VG * VG, 0.5).reshape(VG * VG, VE),
     "post_w": vec(VE, 0.1, 1.0), "post_b": vec(VE), "soft": vec(VE, 0.1),
     "proj": f16(rng.standard_normal((VE, NE)) / math.sqrt(VE))}  # mm_input_projection_weight (VE, NE)
for l in range(VDEPTH):
    V[l] = {"q": mat(VE, VE), "k": mat(VE, VE), "v": mat(VE, VE), "o": mat(VE, VE), "fc1": mat(VFF, VE),
            "fc2": mat(VE, VFF), "qb": vec(VE), "kb": vec(VE), "vb": vec(VE), "ob": vec(VE), "fc1b": vec(VFF),
            "fc2b": vec(VE), "ln1w": vec(VE, 0.1, 1.0), "ln1b": vec(VE), "ln2w": vec(VE, 0.1, 1.0), "ln2b": vec(VE)}


def plus1(wt):  # conversion/gemma.py norm_shift: stored = HF weight + 1 (in F32)
    return (wt.astype(np.float32) + np.float32(1.0)).astype(np.float32)


# ---- text.gguf, as conversion/gemma.py writes it ----
text_path = os.path.join(OUT, "text.gguf")
w = gguf.GGUFWriter(text_path, "gemma3")
w.add_string("general.name", "tiny-gemma3")
w.add_uint32("general.file_type", 1)
w.add_context_length(4096)
w.add_embedding_length(NE)
w.add_block_count(NL)
w.add_feed_forward_length(NFF)
w.add_head_count(NH)
w.add_head_count_kv(NKV)
w.add_key_length(HD)
w.add_value_length(HD)
w.add_layer_norm_rms_eps(EPS)
w.add_rope_freq_base(BASE_GLOBAL)
w.add_float32("gemma3.rope.freq_base_swa", BASE_LOCAL)
w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
w.add_rope_scaling_factor(ROPE_FACTOR)
w.add_sliding_window(WINDOW)
w.add_final_logit_softcapping(SOFTCAP)
w.add_tokenizer_model("llama")
w.add_tokenizer_pre("default")
w.add_token_list(pieces)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_bos_token_id(TOK["<bos>"])
w.add_eos_token_id(TOK["<eos>"])
w.add_unk_token_id(TOK["<unk>"])
w.add_pad_token_id(TOK["<pad>"])
w.add_add_bos_token(True)
w.add_add_eos_token(False)
w.add_add_space_prefix(False)
w.add_tensor("token_embd.weight", W["embd"])
w.add_tensor("output_norm.weight", plus1(W["norm"]))
for l in range(NL):
    b, p = W[l], f"blk.{l}."
    w.add_tensor(p + "attn_norm.weight", plus1(b["in_norm"]))
    w.add_tensor(p + "attn_q.weight", b["q"])
    w.add_tensor(p + "attn_k.weight", b["k"])
    w.add_tensor(p + "attn_v.weight", b["v"])
    w.add_tensor(p + "attn_output.weight", b["o"])
    w.add_tensor(p + "attn_q_norm.weight", plus1(b["q_norm"]))
    w.add_tensor(p + "attn_k_norm.weight", plus1(b["k_norm"]))
    w.add_tensor(p + "post_attention_norm.weight", plus1(b["post_attn"]))
    w.add_tensor(p + "ffn_norm.weight", plus1(b["pre_ff"]))
    w.add_tensor(p + "ffn_gate.weight", b["gate"])
    w.add_tensor(p + "ffn_up.weight", b["up"])
    w.add_tensor(p + "ffn_down.weight", b["down"])
    w.add_tensor(p + "post_ffw_norm.weight", plus1(b["post_ff"]))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# ---- mmproj.gguf, as conversion/gemma.py (Gemma3VisionModel) writes it ----
mm_path = os.path.join(OUT, "mmproj.gguf")
w = gguf.GGUFWriter(mm_path, "clip")
w.add_bool("clip.has_vision_encoder", True)
w.add_uint32("general.file_type", 1)
w.add_string("general.name", "tiny-gemma3-mmproj")
w.add_string("clip.projector_type", "gemma3")
w.add_uint32("clip.vision.image_size", VIMG)
w.add_uint32("clip.vision.patch_size", VPATCH)
w.add_uint32("clip.vision.embedding_length", VE)
w.add_uint32("clip.vision.feed_forward_length", VFF)
w.add_uint32("clip.vision.projection_dim", NE)
w.add_uint32("clip.vision.block_count", VDEPTH)
w.add_uint32("clip.vision.attention.head_count", VH)
w.add_float32("clip.vision.attention.layer_norm_epsilon", EPS)
w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
w.add_bool("clip.use_gelu", True)
w.add_tensor("v.patch_embd.weight", V["patch"])  # F32 (".embeddings." tensors are kept F32)
w.add_tensor("v.patch_embd.bias", V["patch_b"])
w.add_tensor("v.position_embd.weight", V["pos"])
for l in range(VDEPTH):
    b, p = V[l], f"v.blk.{l}."
    for n in "qkv":
        w.add_tensor(p + f"attn_{n}.weight", b[n])
        w.add_tensor(p + f"attn_{n}.bias", b[n + "b"])
    w.add_tensor(p + "attn_out.weight", b["o"])
    w.add_tensor(p + "attn_out.bias", b["ob"])
    w.add_tensor(p + "ln1.weight", b["ln1w"])
    w.add_tensor(p + "ln1.bias", b["ln1b"])
    w.add_tensor(p + "ln2.weight", b["ln2w"])
    w.add_tensor(p + "ln2.bias", b["ln2b"])
    w.add_tensor(p + "ffn_up.weight", b["fc1"])
    w.add_tensor(p + "ffn_up.bias", b["fc1b"])
    w.add_tensor(p + "ffn_down.weight", b["fc2"])
    w.add_tensor(p + "ffn_down.bias", b["fc2b"])
w.add_tensor("v.post_ln.weight", V["post_w"])
w.add_tensor("v.post_ln.bias", V["post_b"])
w.add_tensor("mm.soft_emb_norm.weight", plus1(V["soft"]))
w.add_tensor("mm.input_projection.weight", V["proj"])
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# ---- the image (224 x 224: neither implementation resizes it) and the prompts ----
yy, xx = np.mgrid[0:VIMG, 0:VIMG]
img = np.stack([(xx * 7 + yy * 3) % 64, (xx * 2 + yy * 5) % 48, 40 + (xx * yy) % 32], -1).astype(np.float64)
img += rng.integers(0, 24, img.shape)
img[(xx - 60) ** 2 + (yy - 110) ** 2 < 34 ** 2] = [220, 30, 30]
img[(abs(xx - 165) < 30) & (abs(yy - 80) < 30)] = [30, 40, 210]
img = np.clip(img, 0, 255).astype(np.uint8)
Image.fromarray(img, "RGB").save(os.path.join(OUT, "image.png"))
QUESTION = "Is the red circle to the left or right of the blue square? Where is the red circle on the image?"
PROMPT = f"<start_of_turn>user\n<image>{QUESTION}<end_of_turn>\n<start_of_turn>model\n"
with open(os.path.join(OUT, "prompt.txt"), "w") as f:
    f.write(PROMPT)


# ---- HF Gemma3ImageProcessor (slow): Pillow BILINEAR to the square, rescale, normalize ----
def hf_resize(rgb, size=VIMG):
    return np.array(Image.fromarray(rgb, "RGB").resize((size, size), resample=Image.BILINEAR))


def hf_preprocess(rgb, size=VIMG):
    a = hf_resize(rgb, size)
    a = (a.astype(np.float64) * (1 / 255)).astype(np.float32)  # image_transforms.rescale
    a = (a - np.array([0.5] * 3, np.float32)) / np.array([0.5] * 3, np.float32)  # normalize (float32)
    return a.transpose(2, 0, 1).astype(np.float32)  # [3, H, W]


def pattern(w_, h_, k):
    y, x = np.mgrid[0:h_, 0:w_]
    a = np.stack([(x * 37 + y * 11 + k) % 256, (x * x + 3 * y * y) % 256, np.where((x // 5 + y // 4) % 2, 255, 0)], -1)
    return a.astype(np.uint8)


# three resizes: shrunk in both directions, grown in both, shrunk in one and grown in the other. Stored:
# the source and Pillow's resized 8-bit image (lossless PNG; the float pixels would be 600 KB each);
# rescale and normalize are float32 arithmetic on those bytes (hf_preprocess)
for (pw, ph) in [(300, 260), (100, 70), (400, 150)]:
    src = pattern(pw, ph, pw)
    Image.fromarray(src, "RGB").save(os.path.join(OUT, "preprocess", f"src_{pw}x{ph}.png"))
    Image.fromarray(hf_resize(src), "RGB").save(os.path.join(OUT, "preprocess", f"resized_{pw}x{ph}.png"))


# ---- HF SiglipVisionModel + Gemma3MultiModalProjector, transcribed (float64) ----
def layernorm(x, wt, b, eps=EPS):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * wt + b


def gemma_rms(x, hf_w, eps=EPS):  # Gemma3RMSNorm: x * rsqrt(mean(x^2) + eps) * (1 + w)
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * (1.0 + hf_w)


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def hf_vision(pix):
    """pix [3, S, S] float32 -> (image rows [MM_TOKENS, NE], blocks [VDEPTH, VG*VG, VE])."""
    x = pix.reshape(3, VG, VPATCH, VG, VPATCH).transpose(1, 3, 0, 2, 4).reshape(VG * VG, -1).astype(np.float64)
    h = x @ V["patch"].astype(np.float64).reshape(VE, -1).T + V["patch_b"] + V["pos"]
    n, hd, blocks = VG * VG, VE // VH, []
    for l in range(VDEPTH):
        b = {k: v.astype(np.float64) for k, v in V[l].items()}
        xn = layernorm(h, b["ln1w"], b["ln1b"])
        q, k, v = [(xn @ b[m].T + b[m + "b"]).reshape(n, VH, hd) for m in "qkv"]
        att = np.zeros((n, VH, hd))
        for hh in range(VH):
            sc = q[:, hh] @ k[:, hh].T * hd ** -0.5
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            att[:, hh] = (sc / sc.sum(-1, keepdims=True)) @ v[:, hh]
        h = h + att.reshape(n, VE) @ b["o"].T + b["ob"]
        xn = layernorm(h, b["ln2w"], b["ln2b"])
        h = h + gelu_tanh(xn @ b["fc1"].T + b["fc1b"]) @ b["fc2"].T + b["fc2b"]
        blocks.append(h.copy())
    h = layernorm(h, V["post_w"], V["post_b"])
    # (B, E, VG, VG) -> AvgPool2d(POOL, POOL) -> flatten(2).transpose(1, 2)
    g = VG // POOL
    pooled = h.reshape(g, POOL, g, POOL, VE).mean((1, 3)).reshape(g * g, VE)
    normed = gemma_rms(pooled, V["soft"].astype(np.float64))
    return normed @ V["proj"].astype(np.float64), np.stack(blocks)


# ---- llama.cpp on the pair: its prompt carries HF's "\n\n" around the image (Gemma3Processor's
# full_image_sequence), which mtmd does not add ----
tmp = tempfile.mkdtemp(prefix="gemma3golden-")
L = args.llama_cpp
exe = os.path.join(tmp, "llamacpp_dump")
subprocess.run(["cc", "-O1", "-std=c11", "-I" + L + "/include", "-I" + L + "/ggml/include", "-I" + L + "/tools/mtmd",
                os.path.join(os.path.dirname(os.path.abspath(__file__)), "llamacpp_dump.c"), "-L" + L + "/build/bin",
                "-lmtmd", "-lllama", "-lggml", "-lggml-base", "-Wl,-rpath," + L + "/build/bin", "-o", exe], check=True)
with open(os.path.join(tmp, "prompt.txt"), "w") as f:
    f.write(PROMPT.replace("<image>", "\n\n<image>\n\n"))
subprocess.run([exe, text_path, mm_path, os.path.join(OUT, "image.png"), os.path.join(tmp, "prompt.txt"), tmp],
               check=True, stderr=subprocess.DEVNULL)
with open(os.path.join(tmp, "tokens.json")) as f:
    chunks = json.load(f)["chunks"]
with open(os.path.join(OUT, "tokens.json"), "w") as f:
    json.dump({"chunks": chunks}, f)


# ---- HF Gemma3TextModel (float64) on the rows ----
def rope_cos_sin(pos, base, factor):
    inv = 1.0 / (base ** (np.arange(0, HD, 2, dtype=np.float64) / HD)) / factor
    emb = np.concatenate([np.outer(pos, inv)] * 2, -1)
    return np.cos(emb)[:, None], np.sin(emb)[:, None]


def hf_text(rows, is_text, group, softcap=SOFTCAP):
    """rows [n, NE] input embeddings (token rows already scaled), group[i] = image block of row i or -1
    -> (resid [NL + 1, n, NE], logits [n, NV])."""
    n = rows.shape[0]
    pos = np.arange(n)
    cs_local, cs_global = rope_cos_sin(pos, BASE_LOCAL, 1.0), rope_cos_sin(pos, BASE_GLOBAL, ROPE_FACTOR)
    qi, ki = pos[:, None], pos[None, :]
    same_img = (group[:, None] >= 0) & (group[:, None] == group[None, :])  # token_type_ids_mask_function
    full = (ki <= qi) | same_img
    sliding = ((ki <= qi) & (ki > qi - WINDOW)) | same_img  # sliding_window_causal OR the image block
    h, out = rows.copy(), [rows.copy()]
    for l in range(NL):
        b = {k: v.astype(np.float64) for k, v in W[l].items()}
        is_sliding = (l + 1) % 6 != 0  # layer_types from sliding_window_pattern 6
        cos, sin = cs_local if is_sliding else cs_global
        mask = sliding if is_sliding else full
        x = gemma_rms(h, b["in_norm"])
        q = gemma_rms((x @ b["q"].T).reshape(n, NH, HD), b["q_norm"])
        k = gemma_rms((x @ b["k"].T).reshape(n, NKV, HD), b["k_norm"])
        v = (x @ b["v"].T).reshape(n, NKV, HD)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        att = np.zeros((n, NH, HD))
        for hh in range(NH):
            g = hh // (NH // NKV)
            sc = np.where(mask, q[:, hh] @ k[:, g].T * QPAS ** -0.5, -np.inf)
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            att[:, hh] = (sc / sc.sum(-1, keepdims=True)) @ v[:, g]
        h = h + gemma_rms(att.reshape(n, NH * HD) @ b["o"].T, b["post_attn"])
        x = gemma_rms(h, b["pre_ff"])
        h = h + gemma_rms((gelu_tanh(x @ b["gate"].T) * (x @ b["up"].T)) @ b["down"].T, b["post_ff"])
        out.append(h.copy())
    logits = gemma_rms(h, W["norm"].astype(np.float64)) @ W["embd"].astype(np.float64).T
    if softcap:
        logits = softcap * np.tanh(logits / softcap)
    return np.stack(out), logits


pix = hf_preprocess(img)
img_rows, vis_blocks = hf_vision(pix)
ids, rows, group = [], [], []
embd_scale = math.sqrt(NE)  # Gemma3TextScaledWordEmbedding (in float32 exactly 8 here)
for kind, val in chunks:  # text rows scaled, image rows as the projector gives them (masked_scatter)
    if kind == "text":
        for t in val:
            rows.append(W["embd"][t].astype(np.float64) * embd_scale)
            group.append(-1)
        ids += val
    else:
        assert val == MM_TOKENS
        rows += list(img_rows)
        group += [0] * val
        ids += [-1] * val
rows, group = np.array(rows), np.array(group)
resid, logits = hf_text(rows, np.array(ids) >= 0, group)
n = rows.shape[0]
X = os.path.join(OUT, "expected")
np.save(os.path.join(X, "image_embd.npy"), img_rows.astype(np.float32))
np.save(os.path.join(X, "vision_layers.npy"), vis_blocks.astype(np.float32))
np.save(os.path.join(X, "resid.npy"), resid.astype(np.float32))
np.save(os.path.join(X, "logits_last.npy"), logits[-1].astype(np.float32))
# the same without the image block's bidirectional attention: how much it matters here
resid_c, _ = hf_text(rows, np.array(ids) >= 0, np.full(n, -1))

# ---- agreement with llama.cpp ----
commit = subprocess.run(["git", "-C", L, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
lines = [f"llama.cpp (commit {commit}) vs the HF transcription, max |diff| (scale = max |HF value|)",
         f"rows {n}, image rows {int((group >= 0).sum())}, sliding window {WINDOW}",
         f"causal image block instead of HF's bidirectional one changes the stream by up to "
         f"{np.abs(resid_c - resid).max():.3g}", "array | vs HF | scale"]


def row(name, got, ref):
    lines.append(f"{name} | {np.abs(got - ref).max():.3g} | {np.abs(ref).max():.3g}")


row("image_embd", np.load(os.path.join(tmp, "image_embd.npy")), img_rows)
for l in range(VDEPTH):
    row(f"vision block {l}", np.load(os.path.join(tmp, f"vision_layer-{l}.npy")), vis_blocks[l])
for l in range(NL):
    r = np.load(os.path.join(tmp, f"resid-{l}.npy"))
    row(f"resid {l + 1}" + (" (last row)" if r.shape[0] < n else ""), r, resid[l + 1][-r.shape[0]:])
row("logits (last row)", np.load(os.path.join(tmp, "logits_last.npy")), logits[-1])
with open(os.path.join(OUT, "llamacpp.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
shutil.rmtree(tmp)
