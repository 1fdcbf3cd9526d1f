#!/usr/bin/python3
"""Golden data for the InternVL 2.5 / 3 family (projector "internvl", text architecture "qwen2"), from
two sources that are not idscope: a NumPy transcription of the HF transformers definition
(modeling_internvl.py: InternVLVisionModel with layer scale, InternVLModel.pixel_shuffle and
get_image_features, InternVLMultiModalProjector, the Qwen2 text model; image_processing_got_ocr2.py:
get_optimal_tiled_canvas, crop_image_to_patches with the thumbnail, Pillow bicubic, rescale,
normalize; processing_internvl.py: <img> + 256 x tiles context rows + </img>) and llama.cpp (libmtmd +
libllama, through llamacpp_dump.c beside this script) on the same GGUF pair.

Both files are random-weight models with the real layout at tiny widths, written with llama.cpp's
gguf-py as conversion/internvl.py and the Qwen2 text converter write them. The text model's
vocabulary is the real Qwen2 byte-level BPE cut to its first tokens (the merges among them kept in
order) plus the special tokens InternVL3 uses, taken from ../shared/golden/qwen2vl-tiny/text.gguf.

Usage (from the repository root; needs python3-numpy, python3-pil and a llama.cpp build made by
../shared/tools/llamacpp-oracle.sh):
    /usr/bin/python3 tests/golden/make_internvl.py [--llama-cpp DIR] [--shared DIR] [--out DIR]
Writes OUT (default tests/golden/internvl-tiny): text.gguf, mmproj.gguf, mmproj-qknorm.gguf,
image.png, prompt.txt, tokens.json, expected/*.npy (the HF transcription), preprocess/cases.json (the
HF image processor on four images) and llamacpp.txt (max |diff| between llama.cpp and the HF
transcription, per array)."""
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
ap.add_argument("--shared", default="../shared")
ap.add_argument("--out", default="tests/golden/internvl-tiny")
args = ap.parse_args()
sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
import gguf  # noqa: E402

OUT = args.out
for d in ("expected", "preprocess"):
    os.makedirs(os.path.join(OUT, d), exist_ok=True)
rng = np.random.default_rng(2503)

# ---- sizes: InternVisionConfig / Qwen2Config at tiny widths ----
S, PATCH, E, HEADS, FF, DEPTH, MERGE = 112, 14, 32, 2, 64, 2, 2  # tiles of 112 px: 8 x 8 patches, 4 x 4 rows
G = S // PATCH
NP = G * G
NE, NL, NH, NKV, NFF, EPS, BASE = 32, 3, 4, 2, 96, 1e-6, 1e6  # the text model
HD = NE // NH
MIN_TILES, MAX_TILES = 1, 12
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # ImageNet
N_KEEP = 700  # Qwen2 tokens kept (byte symbols and the first merges), and the words below
WORDS = ("circle square triangle diamond cross star hexagon heart pentagon arrow red green blue yellow purple orange "
         "white black gray grey pink brown cyan left right above below front behind near far yes no between").split()


def f16(a):  # matrices are stored F16; the reference uses the stored values
    return np.asarray(a, np.float32).astype(np.float16)


def mat(out_f, in_f):
    return f16(rng.standard_normal((out_f, in_f)) / math.sqrt(in_f))


def vec(n, scale=0.1, base=0.0):
    return (base + scale * rng.standard_normal(n)).astype(np.float32)


def tower_weights(qk_norm):
    W = {"patch": f16(rng.standard_normal((E, 3, PATCH, PATCH)) / math.sqrt(3 * PATCH * PATCH)),
         "patch_b": vec(E), "cls": vec(E, 0.5), "pos": (0.5 * rng.standard_normal((NP + 1, E))).astype(np.float32)}
    for l in range(DEPTH):
        b = {"qkv": mat(3 * E, E), "proj": mat(E, E), "proj_b": vec(E), "norm1": vec(E, 0.1, 1.0),
             "norm2": vec(E, 0.1, 1.0), "fc1": mat(FF, E), "fc1_b": vec(FF), "fc2": mat(E, FF), "fc2_b": vec(E),
             "ls1": vec(E, 0.1, 0.6), "ls2": vec(E, 0.1, 0.6)}
        if qk_norm:  # InternViT-6B: RMSNorm everywhere, no qkv bias, q_norm / k_norm over the whole width
            b["q_norm"], b["k_norm"] = vec(E, 0.1, 1.0), vec(E, 0.1, 1.0)
        else:
            b["qkv_b"], b["norm1_b"], b["norm2_b"] = vec(3 * E), vec(E), vec(E)
        W[l] = b
    W["mlp0"], W["mlp0_b"] = vec(4 * E, 0.1, 1.0), vec(4 * E)
    W["mlp1"], W["mlp1_b"] = mat(NE, 4 * E), vec(NE)
    W["mlp3"], W["mlp3_b"] = mat(NE, NE), vec(NE)
    return W


def write_mmproj(path, W, qk_norm):
    w = gguf.GGUFWriter(path, "clip")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_uint32("general.file_type", 1)
    w.add_string("general.name", "tiny-internvl-mmproj" + ("-qknorm" if qk_norm else ""))
    w.add_string("clip.projector_type", "internvl")
    w.add_uint32("clip.vision.image_size", S)
    w.add_uint32("clip.vision.patch_size", PATCH)
    w.add_uint32("clip.vision.embedding_length", E)
    w.add_uint32("clip.vision.feed_forward_length", FF)
    w.add_uint32("clip.vision.projection_dim", NE)
    w.add_uint32("clip.vision.block_count", DEPTH)
    w.add_uint32("clip.vision.attention.head_count", HEADS)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    w.add_array("clip.vision.image_mean", MEAN)
    w.add_array("clip.vision.image_std", STD)
    w.add_bool("clip.use_gelu", True)
    w.add_uint32("clip.vision.projector.scale_factor", MERGE)
    w.add_uint32("clip.vision.preproc_min_tiles", MIN_TILES)
    w.add_uint32("clip.vision.preproc_max_tiles", MAX_TILES)
    w.add_tensor("v.patch_embd.weight", W["patch"])
    w.add_tensor("v.patch_embd.bias", W["patch_b"])
    w.add_tensor("v.class_embd", W["cls"])
    w.add_tensor("v.position_embd.weight", W["pos"])
    for l in range(DEPTH):
        b, p = W[l], f"v.blk.{l}."
        for i, n in enumerate("qkv"):
            w.add_tensor(p + f"attn_{n}.weight", np.ascontiguousarray(b["qkv"][i * E:(i + 1) * E]))
            if "qkv_b" in b:
                w.add_tensor(p + f"attn_{n}.bias", b["qkv_b"][i * E:(i + 1) * E].copy())
        if "q_norm" in b:
            w.add_tensor(p + "attn_q_norm.weight", b["q_norm"])
            w.add_tensor(p + "attn_k_norm.weight", b["k_norm"])
        w.add_tensor(p + "attn_out.weight", b["proj"])
        w.add_tensor(p + "attn_out.bias", b["proj_b"])
        w.add_tensor(p + "ln1.weight", b["norm1"])
        w.add_tensor(p + "ln2.weight", b["norm2"])
        if "norm1_b" in b:
            w.add_tensor(p + "ln1.bias", b["norm1_b"])
            w.add_tensor(p + "ln2.bias", b["norm2_b"])
        w.add_tensor(p + "ls1.weight", b["ls1"])
        w.add_tensor(p + "ls2.weight", b["ls2"])
        w.add_tensor(p + "ffn_up.weight", b["fc1"])
        w.add_tensor(p + "ffn_up.bias", b["fc1_b"])
        w.add_tensor(p + "ffn_down.weight", b["fc2"])
        w.add_tensor(p + "ffn_down.bias", b["fc2_b"])
    for i in (0, 1, 3):
        w.add_tensor(f"mm.model.mlp.{i}.weight", W[f"mlp{i}"])
        w.add_tensor(f"mm.model.mlp.{i}.bias", W[f"mlp{i}_b"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


WV = tower_weights(False)
WQ = tower_weights(True)
MM = os.path.join(OUT, "mmproj.gguf")
write_mmproj(MM, WV, False)
write_mmproj(os.path.join(OUT, "mmproj-qknorm.gguf"), WQ, True)

# ---- text.gguf: Qwen2 (q/k/v biases, NEOX rotary), the vocabulary cut from the shared Qwen2 one ----
src = gguf.GGUFReader(os.path.join(args.shared, "golden/qwen2vl-tiny/text.gguf"))
all_toks = src.fields["tokenizer.ggml.tokens"].contents()
all_merges = src.fields["tokenizer.ggml.merges"].contents()
made_by = {}
for m in all_merges:
    made_by.setdefault(m.replace(" ", ""), m)


def with_parts(tok, acc):  # a token and, recursively, the merge that makes it
    if tok in acc:
        return
    acc.add(tok)
    if tok in made_by:
        for part in made_by[tok].split(" "):
            with_parts(part, acc)


ALL = set(all_toks)
keep = set(all_toks[:N_KEEP])
for word in WORDS:  # the words the experiments ask about, whole tokens as in the real vocabulary
    for v in (word, word.capitalize()):
        for tok in (v, "\u0120" + v):
            if tok in made_by or tok in ALL:
                with_parts(tok, keep)
merges = [m for m in all_merges if all(p in keep for p in m.split(" ")) and m.replace(" ", "") in keep]
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>"]
toks = [t for t in all_toks if t in keep] + SPECIAL
ttype = [1] * (len(toks) - len(SPECIAL)) + [3] * len(SPECIAL)
NV = len(toks)
TID = {t: i for i, t in enumerate(toks)}
T = {"token_embd.weight": f16(rng.standard_normal((NV, NE)) * 0.5), "output_norm.weight": vec(NE, 0.1, 1.0)}
for l in range(NL):
    p = f"blk.{l}."
    T[p + "attn_norm.weight"], T[p + "ffn_norm.weight"] = vec(NE, 0.1, 1.0), vec(NE, 0.1, 1.0)
    T[p + "attn_q.weight"], T[p + "attn_q.bias"] = mat(NH * HD, NE), vec(NH * HD)
    T[p + "attn_k.weight"], T[p + "attn_k.bias"] = mat(NKV * HD, NE), vec(NKV * HD)
    T[p + "attn_v.weight"], T[p + "attn_v.bias"] = mat(NKV * HD, NE), vec(NKV * HD)
    T[p + "attn_output.weight"] = mat(NE, NH * HD)
    T[p + "ffn_gate.weight"], T[p + "ffn_up.weight"] = mat(NFF, NE), mat(NFF, NE)
    T[p + "ffn_down.weight"] = mat(NE, NFF)
TEXT = os.path.join(OUT, "text.gguf")
w = gguf.GGUFWriter(TEXT, "qwen2")
w.add_string("general.name", "tiny-internvl-text")
w.add_uint32("general.file_type", 1)
w.add_uint32("qwen2.block_count", NL)
w.add_uint32("qwen2.context_length", 4096)
w.add_uint32("qwen2.embedding_length", NE)
w.add_uint32("qwen2.feed_forward_length", NFF)
w.add_uint32("qwen2.attention.head_count", NH)
w.add_uint32("qwen2.attention.head_count_kv", NKV)
w.add_float32("qwen2.attention.layer_norm_rms_epsilon", EPS)
w.add_float32("qwen2.rope.freq_base", BASE)
w.add_string("tokenizer.ggml.model", "gpt2")
w.add_string("tokenizer.ggml.pre", "qwen2")
w.add_array("tokenizer.ggml.tokens", toks)
w.add_array("tokenizer.ggml.token_type", ttype)
w.add_array("tokenizer.ggml.merges", merges)
w.add_uint32("tokenizer.ggml.eos_token_id", TID["<|im_end|>"])
w.add_uint32("tokenizer.ggml.bos_token_id", TID["<|endoftext|>"])
w.add_uint32("tokenizer.ggml.padding_token_id", TID["<|endoftext|>"])
w.add_bool("tokenizer.ggml.add_bos_token", False)
for name, a in T.items():
    w.add_tensor(name, a)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# ---- the image: 224 x 112, two tiles and a thumbnail in HF and in llama.cpp alike (an exact 2 x 1
# grid: no resize of the tiles, the same Pillow bicubic thumbnail) ----
IW, IH = 2 * S, S
yy, xx = np.mgrid[0:IH, 0:IW]
img = np.stack([(xx * 7 + yy * 3) % 64, (xx * 2 + yy * 5) % 48, 40 + (xx * yy) % 32], -1).astype(np.float64)
img += rng.integers(0, 24, img.shape)
img[(xx - 60) ** 2 + (yy - 56) ** 2 < 30 ** 2] = [220, 30, 30]
img[(abs(xx - 170) < 26) & (abs(yy - 50) < 26)] = [30, 40, 210]
img = np.clip(img, 0, 255).astype(np.uint8)
Image.fromarray(img, "RGB").save(os.path.join(OUT, "image.png"))
PROMPT = ("<|im_start|>user\n<image>\nIs the red circle to the left or right of the blue square?<|im_end|>\n"
          "<|im_start|>assistant\n")
with open(os.path.join(OUT, "prompt.txt"), "w") as f:
    f.write(PROMPT)


# ---- HF GotOcr2ImageProcessor with crop_to_patches (InternVLProcessor's default) ----
def optimal_grid(h, w):
    grids = sorted([(c, r) for c in range(1, MAX_TILES + 1) for r in range(1, MAX_TILES + 1)
                    if MIN_TILES <= c * r <= MAX_TILES], key=lambda g: g[0] * g[1])
    aspect, area = w / h, w * h
    best, best_grid = float("inf"), (1, 1)
    for c, r in grids:
        d = abs(aspect - c / r)
        if d < best:
            best, best_grid = d, (c, r)
        elif d == best and area > 0.5 * S * S * c * r:
            best_grid = (c, r)
    return best_grid


def pil_resize(a, w, h):
    return np.array(Image.fromarray(a, "RGB").resize((w, h), resample=Image.BICUBIC))


def hf_tiles(rgb):
    """[n_tiles, 3, S, S] float32, thumbnail last; and the grid (cols, rows)."""
    h, w = rgb.shape[:2]
    cols, rows = optimal_grid(h, w) if MAX_TILES > 1 else (1, 1)
    big = pil_resize(rgb, cols * S, rows * S)
    tiles = [big[(i // cols) * S:(i // cols + 1) * S, (i % cols) * S:(i % cols + 1) * S] for i in range(cols * rows)]
    if len(tiles) != 1:
        tiles.append(pil_resize(rgb, S, S))
    out = []
    for t in tiles:
        a = (t.astype(np.float64) * (1 / 255)).astype(np.float32)  # image_transforms.rescale
        a = (a - np.array(MEAN, np.float32)) / np.array(STD, np.float32)  # image_transforms.normalize
        out.append(a.transpose(2, 0, 1).astype(np.float32))
    return np.stack(out), (cols, rows)


def fnv64(a):
    h = 0xcbf29ce484222325
    for byte in np.ascontiguousarray(a, np.float32).tobytes():
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def pattern(w, h, k):
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([(x * 37 + y * 11 + k) % 256, (x * x + 3 * y * y) % 256, np.where((x // 5 + y // 4) % 2, 255, 0)], -1)
    return a.astype(np.uint8)


# four images: 300x200 grown onto a 3 x 2 grid, 100x60 (smaller than a tile, tiled all the same),
# 500x90 shrunk onto a wide grid, 120x118 one tile without a thumbnail
cases = []
for (pw, ph) in [(300, 200), (100, 60), (500, 90), (120, 118)]:
    src_img = pattern(pw, ph, pw)
    name = f"src_{pw}x{ph}.png"
    Image.fromarray(src_img, "RGB").save(os.path.join(OUT, "preprocess", name))
    px, (c, r) = hf_tiles(src_img)
    cases.append({"image": name, "cols": c, "rows": r, "n_tiles": int(px.shape[0]),
                  "fnv64": [fnv64(t) for t in px], "sample": [float(v) for v in px.reshape(-1)[::997][:24]]})
with open(os.path.join(OUT, "preprocess", "cases.json"), "w") as f:
    json.dump({"hash": "FNV-1a 64 of each tile's float32 [3, S, S] bytes (little endian)", "cases": cases}, f,
              indent=1)


# ---- HF InternVLVisionModel + pixel_shuffle + InternVLMultiModalProjector, transcribed (float64) ----
def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def rms(x, w, eps=1e-6):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def gelu_erf(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def pixel_shuffle(x, scale=0.5):  # HF InternVLModel.pixel_shuffle on (n, w, h, c)
    n, wd, ht, c = x.shape
    x = x.reshape(n, wd, int(ht * scale), int(c / scale)).transpose(0, 2, 1, 3)
    x = x.reshape(n, int(ht * scale), int(wd * scale), int(c / (scale * scale))).transpose(0, 2, 1, 3)
    return x


def hf_vision(tiles, W, llama=False):
    """tiles [n, 3, S, S] -> (image rows [n * 16, NE], blocks [DEPTH, n * (NP + 1), E]). llama=True
    reproduces llama.cpp's definition: CLS appended last with the table added as stored (patch i gets
    row i), tanh GELU in the tower's MLP and the projector; its blocks then have CLS last."""
    gelu = gelu_tanh if llama else gelu_erf
    rows_out, blocks = [], [[] for _ in range(DEPTH)]
    pw = W["patch"].astype(np.float64).reshape(E, -1)
    for t in tiles:
        p = t.reshape(3, G, PATCH, G, PATCH).transpose(1, 3, 0, 2, 4).reshape(NP, -1).astype(np.float64)
        x = p @ pw.T + W["patch_b"]
        x = np.concatenate([x, W["cls"][None]]) if llama else np.concatenate([W["cls"][None], x])
        x = x + W["pos"]
        hd = E // HEADS
        for l in range(DEPTH):
            b = {k: v.astype(np.float64) for k, v in W[l].items()}
            qk = "q_norm" in b
            xn = rms(x, b["norm1"]) if qk else layer_norm(x, b["norm1"], b["norm1_b"], 1e-6)
            qkv = xn @ b["qkv"].T + (b["qkv_b"] if "qkv_b" in b else 0)
            q, k, v = qkv[:, :E], qkv[:, E:2 * E], qkv[:, 2 * E:]
            if qk:
                q, k = rms(q, b["q_norm"]), rms(k, b["k_norm"])
            att = np.zeros_like(q)
            for h in range(HEADS):
                s_ = slice(h * hd, (h + 1) * hd)
                sc = q[:, s_] @ k[:, s_].T / math.sqrt(hd)
                sc = np.exp(sc - sc.max(-1, keepdims=True))
                att[:, s_] = (sc / sc.sum(-1, keepdims=True)) @ v[:, s_]
            x = x + b["ls1"] * (att @ b["proj"].T + b["proj_b"])
            xn = rms(x, b["norm2"]) if qk else layer_norm(x, b["norm2"], b["norm2_b"], 1e-6)
            x = x + b["ls2"] * (gelu(xn @ b["fc1"].T + b["fc1_b"]) @ b["fc2"].T + b["fc2_b"])
            blocks[l].append(x.copy())
        f = x[:NP] if llama else x[1:]  # vision_feature_select_strategy "default": CLS dropped
        f = pixel_shuffle(f.reshape(1, G, G, E)).reshape(-1, 4 * E)
        f = layer_norm(f, W["mlp0"].astype(np.float64), W["mlp0_b"], 1e-5)
        f = gelu(f @ W["mlp1"].astype(np.float64).T + W["mlp1_b"]) @ W["mlp3"].astype(np.float64).T + W["mlp3_b"]
        rows_out.append(f)
    return np.concatenate(rows_out), np.stack([np.concatenate(b) for b in blocks])


# ---- HF Qwen2 text model (weights of TEXT), positions 0..n-1, NEOX (rotate_half) rotary ----
def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def hf_text(rows):
    Td = {k: v.astype(np.float64) for k, v in T.items()}
    n = rows.shape[0]
    inv = 1.0 / (BASE ** (np.arange(0, HD, 2, dtype=np.float64) / HD))
    emb = np.concatenate([np.outer(np.arange(n), inv)] * 2, -1)
    cos, sin = np.cos(emb)[:, None], np.sin(emb)[:, None]
    h, out = rows.copy(), [rows.copy()]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(NL):
        p = f"blk.{l}."
        x = rms(h, Td[p + "attn_norm.weight"], EPS)
        q = (x @ Td[p + "attn_q.weight"].T + Td[p + "attn_q.bias"]).reshape(n, NH, HD)
        k = (x @ Td[p + "attn_k.weight"].T + Td[p + "attn_k.bias"]).reshape(n, NKV, HD)
        v = (x @ Td[p + "attn_v.weight"].T + Td[p + "attn_v.bias"]).reshape(n, NKV, HD)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        att = np.zeros((n, NH, HD))
        for hh in range(NH):
            g = hh // (NH // NKV)
            sc = q[:, hh] @ k[:, g].T / math.sqrt(HD) + mask
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            att[:, hh] = (sc / sc.sum(-1, keepdims=True)) @ v[:, g]
        h = h + att.reshape(n, NE) @ Td[p + "attn_output.weight"].T
        x = rms(h, Td[p + "ffn_norm.weight"], EPS)
        sg = x @ Td[p + "ffn_gate.weight"].T
        h = h + (sg / (1 + np.exp(-sg)) * (x @ Td[p + "ffn_up.weight"].T)) @ Td[p + "ffn_down.weight"].T
        out.append(h.copy())
    logits = rms(h, Td["output_norm.weight"], EPS) @ Td["token_embd.weight"].T  # tied output
    return np.stack(out), logits


# ---- llama.cpp on the pair ----
tmp = tempfile.mkdtemp(prefix="ivlgolden-")
L = args.llama_cpp
exe = os.path.join(tmp, "llamacpp_dump")
subprocess.run(["cc", "-O1", "-std=c11", "-I" + L + "/include", "-I" + L + "/ggml/include", "-I" + L + "/tools/mtmd",
                os.path.join(os.path.dirname(os.path.abspath(__file__)), "llamacpp_dump.c"), "-L" + L + "/build/bin",
                "-lmtmd", "-lllama", "-lggml", "-lggml-base", "-Wl,-rpath," + L + "/build/bin", "-o", exe], check=True)
subprocess.run([exe, TEXT, MM, os.path.join(OUT, "image.png"), os.path.join(OUT, "prompt.txt"), tmp], check=True,
               stderr=subprocess.DEVNULL)
with open(os.path.join(tmp, "tokens.json")) as f:
    chunks = json.load(f)["chunks"]
with open(os.path.join(OUT, "tokens.json"), "w") as f:
    json.dump({"chunks": chunks}, f)

# ---- HF InternVLModel.forward: <img> + <IMG_CONTEXT> x 16 per tile + </img>, masked_scatter ----
tiles, (cols, rows_) = hf_tiles(img)
assert (cols, rows_) == (2, 1) and tiles.shape[0] == 3
img_rows, vis_blocks = hf_vision(tiles, WV)
ids, rows = [], []
for kind, val in chunks:  # llama.cpp's chunks: the text, then one chunk per tile (thumbnail last)
    if kind == "text":
        ids += val
        rows += [T["token_embd.weight"][t].astype(np.float64) for t in val]
    else:
        ids += [-1] * val
        rows += [None] * val
assert sum(1 for t in ids if t == -1) == img_rows.shape[0], "llama.cpp's image chunks differ from HF's tiles"
k = 0
for i, t in enumerate(ids):
    if t == -1:
        rows[i] = img_rows[k]
        k += 1
rows = np.array(rows)
resid, logits = hf_text(rows)
X = os.path.join(OUT, "expected")
np.save(os.path.join(X, "tokens.npy"), np.array(ids, np.int32))
np.save(os.path.join(X, "image_embd.npy"), img_rows.astype(np.float32))
np.save(os.path.join(X, "vision_layers.npy"), vis_blocks.astype(np.float32))
np.save(os.path.join(X, "resid.npy"), resid.astype(np.float32))
np.save(os.path.join(X, "logits_last.npy"), logits[-1].astype(np.float32))
qk_rows, _ = hf_vision(tiles, WQ)
np.save(os.path.join(X, "qknorm_image_embd.npy"), qk_rows.astype(np.float32))

# ---- agreement with llama.cpp: with HF's definition, and with llama.cpp's differences reproduced
# (CLS last with unshifted positions, tanh GELU in the tower and the projector) ----
img_l, blk_l = hf_vision(tiles, WV, llama=True)
rows_l = rows.copy()
rows_l[np.array(ids) == -1] = img_l
resid_l, logits_l = hf_text(rows_l)
commit = subprocess.run(["git", "-C", L, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
lines = [f"llama.cpp (commit {commit}) vs the HF transcription, max |diff| (scale = max |HF value|)",
         f"tokens equal: {[t for t in ids if t >= 0] == [t for k_, v in chunks if k_ == 'text' for t in v]}",
         "array | vs HF | vs HF with llama.cpp's differences | scale"]


def row(name, got, ref, ref_l):
    lines.append(f"{name} | {np.abs(got - ref).max():.3g} | {np.abs(got - ref_l).max():.3g} | {np.abs(ref).max():.3g}")


row("image_embd", np.load(os.path.join(tmp, "image_embd.npy")), img_rows, img_l)
n = rows.shape[0]
for l in range(DEPTH):  # llama.cpp's tower stream has CLS last in each tile
    v = np.load(os.path.join(tmp, f"vision_layer-{l}.npy")).reshape(-1, NP + 1, E)
    hf = vis_blocks[l].reshape(-1, NP + 1, E)
    row(f"vision block {l} (patches)", v[:, :NP], hf[:, 1:], blk_l[l].reshape(-1, NP + 1, E)[:, :NP])
for l in range(NL):
    r = np.load(os.path.join(tmp, f"resid-{l}.npy"))
    row(f"resid {l + 1}" + (" (last row)" if r.shape[0] < n else ""), r, resid[l + 1][-r.shape[0]:],
        resid_l[l + 1][-r.shape[0]:])
row("logits (last row)", np.load(os.path.join(tmp, "logits_last.npy")), logits[-1], logits_l[-1])
with open(os.path.join(OUT, "llamacpp.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
shutil.rmtree(tmp)
