#!/usr/bin/python3
"""Golden data for the Qwen3-VL family (text architecture "qwen3vl", projector "qwen3vl_merger"), from
two sources that are not idscope: a NumPy transcription of the HF transformers definition
(modeling_qwen3_vl.py: Qwen3VLVisionModel with fast_pos_embed_interpolate, rot_pos_emb, the blocks,
the merger and the DeepStack mergers; get_rope_index; Qwen3VLTextModel with QK-norm, interleaved
M-RoPE and the DeepStack additions; image_processing_qwen2_vl.py: smart_resize, Pillow bicubic,
rescale, normalize) and llama.cpp (libmtmd + libllama, through llamacpp_dump.c beside this script) on
the same GGUF pair.

Both files are random-weight models with Qwen3-VL's layout at tiny widths, written with llama.cpp's
gguf-py as its converter writes them (conversion/qwen3vl.py). The text model takes the real Qwen2
vocabulary (151936 tokens: the tokenizer keys and token_embd of ../shared/golden/qwen2vl-tiny/text.gguf,
n_embd 64); so that 25 MB are not committed again, the folder keeps text-blocks.gguf (every key and
tensor of the text model but those) and the build joins the two (tests/golden/gguf_join.c, into
build/golden/qwen3vl-tiny/text.gguf); the join is the file written here as text.gguf.

Usage (from the repository root; needs python3-numpy, python3-pil and a llama.cpp build made by
../shared/tools/llamacpp-oracle.sh):
    /usr/bin/python3 tests/golden/make_qwen3vl.py [--llama-cpp DIR] [--shared DIR] [--out DIR]
Writes OUT (default tests/golden/qwen3vl-tiny): mmproj.gguf, text-blocks.gguf, image.png, prompt.txt,
tokens.json, expected/*.npy (the HF transcription), preprocess/ (three HF image-processor resizes)
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
ap.add_argument("--shared", default="../shared")
ap.add_argument("--out", default="tests/golden/qwen3vl-tiny")
args = ap.parse_args()
sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
import gguf  # noqa: E402

OUT = args.out
BASE = os.path.join(args.shared, "golden/qwen2vl-tiny/text.gguf")
os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
os.makedirs(os.path.join(OUT, "preprocess"), exist_ok=True)
rng = np.random.default_rng(3003)

# ---- the tiny model: Qwen3VLVisionConfig / Qwen3VLTextConfig at small widths ----
E, HEADS, FF, DEPTH = 32, 2, 48, 3          # vision
PATCH, MERGE, TPATCH, POS_SIDE = 16, 2, 2, 4  # num_position_embeddings = 16
DEEPSTACK = [0, 1]                          # deepstack_visual_indexes
NE, NL, NH, NKV, HD, NFF = 64, 3, 4, 2, 32, 96  # text: head_dim 32 (q width 128 != n_embd 64)
SECTIONS = [6, 5, 5]                        # mrope_section (16 rotary pairs), interleaved
EPS, BASE_FREQ = 1e-6, 5000000.0
MEAN = STD = [0.5, 0.5, 0.5]
MIN_PX, MAX_PX = 65536, 16777216            # HF Qwen3-VL processor: shortest_edge, longest_edge


def f16(a):  # matrices are stored F16 (converter with ftype F16); the reference uses the stored values
    return np.asarray(a, np.float32).astype(np.float16)


def mat(out_f, in_f, scale=1.0):
    return f16(scale * rng.standard_normal((out_f, in_f)) / math.sqrt(in_f))


def vec(n, scale=0.1, base=0.0):
    return (base + scale * rng.standard_normal(n)).astype(np.float32)


V = {"patch": f16(rng.standard_normal((E, 3, TPATCH, PATCH, PATCH)) / math.sqrt(3 * TPATCH * PATCH * PATCH)),
     "patch_b": vec(E), "pos": (0.5 * rng.standard_normal((POS_SIDE * POS_SIDE, E))).astype(np.float32)}  # F32: ggml_interpolate needs it
for l in range(DEPTH):
    V[l] = {"qkv": mat(3 * E, E), "qkv_b": vec(3 * E), "proj": mat(E, E), "proj_b": vec(E),
            "n1": vec(E, 0.1, 1.0), "n1b": vec(E), "n2": vec(E, 0.1, 1.0), "n2b": vec(E),
            "fc1": mat(FF, E), "fc1_b": vec(FF), "fc2": mat(E, FF), "fc2_b": vec(E)}
V["ln"], V["ln_b"] = vec(E, 0.1, 1.0), vec(E)
V["mlp0"], V["mlp0_b"] = mat(4 * E, 4 * E), vec(4 * E)
V["mlp2"], V["mlp2_b"] = mat(NE, 4 * E), vec(NE)
for k in range(len(DEEPSTACK)):
    V["ds", k] = {"n": vec(4 * E, 0.1, 1.0), "nb": vec(4 * E), "fc1": mat(4 * E, 4 * E), "fc1_b": vec(4 * E),
                  "fc2": mat(NE, 4 * E), "fc2_b": vec(NE)}
T = {}
for l in range(NL):
    p = f"blk.{l}."
    T[p + "attn_norm.weight"], T[p + "ffn_norm.weight"] = vec(NE, 0.1, 1.0), vec(NE, 0.1, 1.0)
    T[p + "attn_q.weight"] = mat(NH * HD, NE).astype(np.float32)
    T[p + "attn_k.weight"] = mat(NKV * HD, NE).astype(np.float32)
    T[p + "attn_v.weight"] = mat(NKV * HD, NE).astype(np.float32)
    T[p + "attn_output.weight"] = mat(NE, NH * HD).astype(np.float32)
    T[p + "attn_q_norm.weight"], T[p + "attn_k_norm.weight"] = vec(HD, 0.2, 1.0), vec(HD, 0.2, 1.0)
    T[p + "ffn_gate.weight"] = mat(NFF, NE).astype(np.float32)
    T[p + "ffn_up.weight"] = mat(NFF, NE).astype(np.float32)
    T[p + "ffn_down.weight"] = mat(NE, NFF).astype(np.float32)
T["output_norm.weight"] = vec(NE, 0.1, 1.0)

# ---- mmproj.gguf, as conversion/qwen3vl.py writes it ----
mm_path = os.path.join(OUT, "mmproj.gguf")
w = gguf.GGUFWriter(mm_path, "clip")
w.add_bool("clip.has_vision_encoder", True)
w.add_uint32("general.file_type", 1)
w.add_string("general.name", "tiny-qwen3vl-mmproj")
w.add_string("clip.projector_type", "qwen3vl_merger")
w.add_uint32("clip.vision.image_size", POS_SIDE * PATCH)
w.add_uint32("clip.vision.patch_size", PATCH)
w.add_uint32("clip.vision.embedding_length", E)
w.add_uint32("clip.vision.feed_forward_length", FF)
w.add_uint32("clip.vision.projection_dim", NE)
w.add_uint32("clip.vision.block_count", DEPTH)
w.add_uint32("clip.vision.attention.head_count", HEADS)
w.add_float32("clip.vision.attention.layer_norm_epsilon", EPS)
w.add_array("clip.vision.image_mean", MEAN)
w.add_array("clip.vision.image_std", STD)
w.add_bool("clip.use_gelu", True)
w.add_uint32("clip.vision.spatial_merge_size", MERGE)
w.add_array("clip.vision.is_deepstack_layers", [l in DEEPSTACK for l in range(DEPTH)])
w.add_tensor("v.patch_embd.weight", np.ascontiguousarray(V["patch"][:, :, 0]))
w.add_tensor("v.patch_embd.weight.1", np.ascontiguousarray(V["patch"][:, :, 1]))
w.add_tensor("v.patch_embd.bias", V["patch_b"])
w.add_tensor("v.position_embd.weight", V["pos"])
for l in range(DEPTH):
    b, p = V[l], f"v.blk.{l}."
    w.add_tensor(p + "attn_qkv.weight", b["qkv"])
    w.add_tensor(p + "attn_qkv.bias", b["qkv_b"])
    w.add_tensor(p + "attn_out.weight", b["proj"])
    w.add_tensor(p + "attn_out.bias", b["proj_b"])
    w.add_tensor(p + "ln1.weight", b["n1"])
    w.add_tensor(p + "ln1.bias", b["n1b"])
    w.add_tensor(p + "ln2.weight", b["n2"])
    w.add_tensor(p + "ln2.bias", b["n2b"])
    w.add_tensor(p + "ffn_up.weight", b["fc1"])
    w.add_tensor(p + "ffn_up.bias", b["fc1_b"])
    w.add_tensor(p + "ffn_down.weight", b["fc2"])
    w.add_tensor(p + "ffn_down.bias", b["fc2_b"])
w.add_tensor("v.post_ln.weight", V["ln"])
w.add_tensor("v.post_ln.bias", V["ln_b"])
w.add_tensor("mm.0.weight", V["mlp0"])
w.add_tensor("mm.0.bias", V["mlp0_b"])
w.add_tensor("mm.2.weight", V["mlp2"])
w.add_tensor("mm.2.bias", V["mlp2_b"])
for k, L in enumerate(DEEPSTACK):
    d = V["ds", k]
    for n, key in (("norm.weight", "n"), ("norm.bias", "nb"), ("fc1.weight", "fc1"), ("fc1.bias", "fc1_b"),
                   ("fc2.weight", "fc2"), ("fc2.bias", "fc2_b")):
        w.add_tensor(f"v.deepstack.{L}.{n}", d[key])
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# ---- the text model: text-blocks.gguf (committed) and text.gguf (with the base's vocabulary) ----
base = gguf.GGUFReader(BASE)
tok_embd = np.asarray(base.get_tensor(0).data) if base.get_tensor(0).name == "token_embd.weight" else None
assert tok_embd is not None and tok_embd.shape[1] == NE


def text_writer(path, full):
    tw = gguf.GGUFWriter(path, "qwen3vl")
    tw.add_string("general.name", "tiny-qwen3vl-text")
    tw.add_uint32("general.file_type", 0)
    tw.add_uint32("qwen3vl.block_count", NL)
    tw.add_uint32("qwen3vl.context_length", 4096)
    tw.add_uint32("qwen3vl.embedding_length", NE)
    tw.add_uint32("qwen3vl.feed_forward_length", NFF)
    tw.add_uint32("qwen3vl.attention.head_count", NH)
    tw.add_uint32("qwen3vl.attention.head_count_kv", NKV)
    tw.add_uint32("qwen3vl.attention.key_length", HD)
    tw.add_uint32("qwen3vl.attention.value_length", HD)
    tw.add_float32("qwen3vl.attention.layer_norm_rms_epsilon", EPS)
    tw.add_float32("qwen3vl.rope.freq_base", BASE_FREQ)
    tw.add_array("qwen3vl.rope.dimension_sections", SECTIONS + [0])
    tw.add_uint32("qwen3vl.n_deepstack_layers", len(DEEPSTACK))
    if full:
        for k, f in base.fields.items():
            if not k.startswith("tokenizer."):
                continue
            v = f.contents()
            if f.types[0] == gguf.GGUFValueType.ARRAY:
                tw.add_key_value(k, v, gguf.GGUFValueType.ARRAY, sub_type=f.types[-1])
            else:
                tw.add_key_value(k, v, f.types[0])
        tw.add_tensor("token_embd.weight", tok_embd)
    for n, t in T.items():
        tw.add_tensor(n, t)
    tw.write_header_to_file()
    tw.write_kv_data_to_file()
    tw.write_tensors_to_file()
    tw.close()


tmp = tempfile.mkdtemp(prefix="q3golden-")
TEXT = os.path.join(tmp, "text.gguf")
text_writer(TEXT, True)
text_writer(os.path.join(OUT, "text-blocks.gguf"), False)

# ---- the image: 320 x 224 (multiples of 32, 71680 pixels inside HF's and llama.cpp's bounds: no
# resize in either): 20 x 14 patches, a 10 x 7 merged grid; positions interpolated from 4 x 4 ----
IW, IH = 320, 224
yy, xx = np.mgrid[0:IH, 0:IW]
img = np.stack([(xx * 7 + yy * 3) % 64, (xx * 2 + yy * 5) % 48, 40 + (xx * yy) % 32], -1).astype(np.float64)
img += rng.integers(0, 24, img.shape)
img[(xx - 80) ** 2 + (yy - 120) ** 2 < 40 ** 2] = [220, 30, 30]
img[(abs(xx - 240) < 36) & (abs(yy - 90) < 36)] = [30, 40, 210]
img = np.clip(img, 0, 255).astype(np.uint8)
Image.fromarray(img, "RGB").save(os.path.join(OUT, "image.png"))
PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>Is the red circle "
          "to the left or right of the blue square?<|im_end|>\n<|im_start|>assistant\n")
with open(os.path.join(OUT, "prompt.txt"), "w") as f:
    f.write(PROMPT)


# ---- HF Qwen2VLImageProcessor (slow) with Qwen3-VL's settings: factor 32, min/max pixels ----
def smart_resize(h, w, factor=32, min_pixels=MIN_PX, max_pixels=MAX_PX):
    h_bar, w_bar = round(h / factor) * factor, round(w / factor) * factor  # Python round: half to even
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((h * w) / max_pixels)
        h_bar, w_bar = math.floor(h / beta / factor) * factor, math.floor(w / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar, w_bar = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return h_bar, w_bar


def hf_preprocess(rgb, min_pixels=MIN_PX, max_pixels=MAX_PX):
    h, w = rgb.shape[:2]
    rh, rw = smart_resize(h, w, 32, min_pixels, max_pixels)
    a = np.array(Image.fromarray(rgb, "RGB").resize((rw, rh), resample=Image.BICUBIC)) if (rh, rw) != (h, w) else rgb
    a = (a.astype(np.float64) * (1 / 255)).astype(np.float32)  # image_transforms.rescale
    a = (a - np.array(MEAN, np.float32)) / np.array(STD, np.float32)  # image_transforms.normalize (float32)
    return a.transpose(2, 0, 1).astype(np.float32)  # [3, H, W]


def pattern(w, h, k):
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([(x * 37 + y * 11 + k) % 256, (x * x + 3 * y * y) % 256, np.where((x // 5 + y // 4) % 2, 255, 0)], -1)
    return a.astype(np.uint8)


# three resizes: ties rounded to even (80/32 = 2.5 -> 2, 48/32 = 1.5 -> 2), a small one grown to
# min_pixels by ceil, a large one shrunk under max_pixels by floor
for (pw, ph, mn, mx) in [(80, 48, 4096, 16777216), (50, 40, 8192, 16777216), (300, 200, 8192, 20000)]:
    src = pattern(pw, ph, pw)
    Image.fromarray(src, "RGB").save(os.path.join(OUT, "preprocess", f"src_{pw}x{ph}.png"))
    np.save(os.path.join(OUT, "preprocess", f"pixels_{pw}x{ph}_{mn}_{mx}.npy"), hf_preprocess(src, mn, mx))


# ---- HF Qwen3VLVisionModel, transcribed (float64 except the position interpolation, float32 as HF) ----
def layernorm(x, wt, b, eps=1e-6):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * wt + b


def rms(x, wt, eps=EPS):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * wt


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def gelu_erf(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1 + np.exp(-x))


def linspace32(end, n):  # torch.linspace(0, end, n) in float32: first half from the start, the rest from the end
    if n == 1:
        return np.zeros(1, np.float32)
    step = np.float32(end) / np.float32(n - 1)
    i = np.arange(n)
    return np.where(i < n // 2, step * i.astype(np.float32), np.float32(end) - step * (n - 1 - i).astype(np.float32)
                    ).astype(np.float32)


def pos_interpolate(gh, gw):  # fast_pos_embed_interpolate for one image, rows in merge order
    S = POS_SIDE
    hi, wi = linspace32(S - 1, gh), linspace32(S - 1, gw)
    hf, wf = hi.astype(np.int64), wi.astype(np.int64)
    hc, wc = np.minimum(hf + 1, S - 1), np.minimum(wf + 1, S - 1)
    dh, dw = (hi - hf).astype(np.float32), (wi - wf).astype(np.float32)
    tab = V["pos"].astype(np.float32)
    one = np.float32(1)
    idx = [(hf[:, None] * S + wf[None]), (hf[:, None] * S + wc[None]), (hc[:, None] * S + wf[None]),
           (hc[:, None] * S + wc[None])]
    wts = [(one - dh)[:, None] * (one - dw)[None], (one - dh)[:, None] * dw[None], dh[:, None] * (one - dw)[None],
           dh[:, None] * dw[None]]
    pe = [tab[i.reshape(-1)] * wt.reshape(-1, 1).astype(np.float32) for i, wt in zip(idx, wts)]
    pe = ((pe[0] + pe[1]) + pe[2]) + pe[3]
    return pe.reshape(gh // MERGE, MERGE, gw // MERGE, MERGE, E).transpose(0, 2, 1, 3, 4).reshape(gh * gw, E)


def merger(x, d, post, gelu):  # Qwen3VLVisionPatchMerger; post: LayerNorm after the 2x2 grouping
    n = x.shape[0] // 4
    x = layernorm(x.reshape(n, 4 * E), d["n"], d["nb"]) if post else layernorm(x, d["n"], d["nb"]).reshape(n, 4 * E)
    return gelu(x @ d["fc1"].astype(np.float64).T + d["fc1_b"]) @ d["fc2"].astype(np.float64).T + d["fc2_b"]


def hf_vision(pix, gelu=gelu_erf):
    """pix [3, H, W] float32 of one image -> (main rows [n/4, NE], DeepStack rows [n_ds, n/4, NE], blocks
    [DEPTH, n, E] in merge order)."""
    _, H, Wd = pix.shape
    gh, gw = H // PATCH, Wd // PATCH
    n = gh * gw
    x = np.stack([pix, pix])  # the processor repeats a still image to the temporal patch size
    x = x.reshape(1, TPATCH, 3, gh // MERGE, MERGE, PATCH, gw // MERGE, MERGE, PATCH)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(n, 3 * TPATCH * PATCH * PATCH).astype(np.float64)
    h = x @ V["patch"].astype(np.float64).reshape(E, -1).T + V["patch_b"]
    h = h + pos_interpolate(gh, gw).astype(np.float64)
    hp = np.arange(gh)[:, None].repeat(gw, 1).reshape(gh // MERGE, MERGE, gw // MERGE, MERGE).transpose(0, 2, 1, 3)
    wp = np.arange(gw)[None, :].repeat(gh, 0).reshape(gh // MERGE, MERGE, gw // MERGE, MERGE).transpose(0, 2, 1, 3)
    hd = E // HEADS
    dim = hd // 2
    inv_freq = 1.0 / (10000.0 ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    freqs = np.outer(np.arange(max(gh, gw)), inv_freq)
    rot = np.concatenate([freqs[hp.reshape(-1)], freqs[wp.reshape(-1)]], -1)
    emb = np.concatenate([rot, rot], -1)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    blocks, ds = [], []
    for l in range(DEPTH):
        b = {k: v.astype(np.float64) for k, v in V[l].items()}
        xn = layernorm(h, b["n1"], b["n1b"])
        qkv = (xn @ b["qkv"].T + b["qkv_b"]).reshape(n, 3, HEADS, hd)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        att = np.zeros((n, HEADS, hd))
        for hh in range(HEADS):
            sc = q[:, hh] @ k[:, hh].T / math.sqrt(hd)
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            att[:, hh] = (sc / sc.sum(-1, keepdims=True)) @ v[:, hh]
        h = h + att.reshape(n, E) @ b["proj"].T + b["proj_b"]
        xn = layernorm(h, b["n2"], b["n2b"])
        h = h + gelu_tanh(xn @ b["fc1"].T + b["fc1_b"]) @ b["fc2"].T + b["fc2_b"]  # gelu_pytorch_tanh
        blocks.append(h.copy())
        if l in DEEPSTACK:
            ds.append(merger(h, V["ds", DEEPSTACK.index(l)], True, gelu))
    main = merger(h, {"n": V["ln"], "nb": V["ln_b"], "fc1": V["mlp0"], "fc1_b": V["mlp0_b"], "fc2": V["mlp2"],
                      "fc2_b": V["mlp2_b"]}, False, gelu)
    return main, np.stack(ds), np.stack(blocks)


# ---- llama.cpp on the pair ----
L = args.llama_cpp
exe = os.path.join(tmp, "llamacpp_dump")
subprocess.run(["cc", "-O1", "-std=c11", "-I" + L + "/include", "-I" + L + "/ggml/include", "-I" + L + "/tools/mtmd",
                os.path.join(os.path.dirname(os.path.abspath(__file__)), "llamacpp_dump.c"), "-L" + L + "/build/bin",
                "-lmtmd", "-lllama", "-lggml", "-lggml-base", "-Wl,-rpath," + L + "/build/bin", "-o", exe], check=True)
subprocess.run([exe, TEXT, mm_path, os.path.join(OUT, "image.png"), os.path.join(OUT, "prompt.txt"), tmp], check=True,
               stderr=subprocess.DEVNULL)
with open(os.path.join(tmp, "tokens.json")) as f:
    chunks = json.load(f)["chunks"]
with open(os.path.join(OUT, "tokens.json"), "w") as f:
    json.dump({"chunks": chunks}, f)

# ---- HF Qwen3VLModel: get_rope_index and Qwen3VLTextModel ----
TE = tok_embd.astype(np.float64)
T64 = {k: v.astype(np.float64) for k, v in T.items()}


def hf_text(rows, pos, ds_rows, vis_mask):
    """rows [n, NE] input embeddings, pos [3, n], ds_rows [n_ds, n_vis, NE] added at the visual rows after
    blocks 0..n_ds-1 -> (resid [NL + 1, n, NE] (l = input of block l), pre [NL, n, NE] (block l's output
    before its DeepStack addition), logits [n, vocab])."""
    n = rows.shape[0]
    inv = 1.0 / (BASE_FREQ ** (np.arange(0, HD, 2, dtype=np.float64) / HD))
    freqs = [np.outer(pos[s], inv) for s in range(3)]  # t, h, w: [n, HD/2]
    f = freqs[0].copy()  # apply_interleaved_mrope
    for dim, off in ((1, 1), (2, 2)):
        idx = slice(off, SECTIONS[dim] * 3, 3)
        f[:, idx] = freqs[dim][:, idx]
    emb = np.concatenate([f, f], -1)
    cos, sin = np.cos(emb)[:, None], np.sin(emb)[:, None]
    h, out, pre = rows.copy(), [rows.copy()], []
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(NL):
        p = f"blk.{l}."
        x = rms(h, T64[p + "attn_norm.weight"])
        q = rms((x @ T64[p + "attn_q.weight"].T).reshape(n, NH, HD), T64[p + "attn_q_norm.weight"])
        k = rms((x @ T64[p + "attn_k.weight"].T).reshape(n, NKV, HD), T64[p + "attn_k_norm.weight"])
        v = (x @ T64[p + "attn_v.weight"].T).reshape(n, NKV, HD)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        att = np.zeros((n, NH, HD))
        for hh in range(NH):
            g = hh // (NH // NKV)
            sc = q[:, hh] @ k[:, g].T / math.sqrt(HD) + mask
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            att[:, hh] = (sc / sc.sum(-1, keepdims=True)) @ v[:, g]
        h = h + att.reshape(n, NH * HD) @ T64[p + "attn_output.weight"].T
        x = rms(h, T64[p + "ffn_norm.weight"])
        h = h + (silu(x @ T64[p + "ffn_gate.weight"].T) * (x @ T64[p + "ffn_up.weight"].T)) @ T64[p + "ffn_down.weight"].T
        pre.append(h.copy())
        if l < len(ds_rows):  # _deepstack_process
            h[vis_mask] = h[vis_mask] + ds_rows[l]
        out.append(h.copy())
    logits = rms(h, T64["output_norm.weight"]) @ TE.T
    return np.stack(out), np.stack(pre), logits


pix = hf_preprocess(img)
assert pix.shape == (3, IH, IW)
img_rows, ds_rows, vis_blocks = hf_vision(pix)
ids, rows, pos = [], [], [[], [], []]
st = 0
for kind, val in chunks:  # input ids with <|image_pad|> rows replaced by the image rows (masked_scatter)
    if kind == "text":
        for t in val:
            rows.append(TE[t])
            for s in range(3):
                pos[s].append(st)
            st += 1
        ids += val
    else:
        lh, lw = IH // PATCH // MERGE, IW // PATCH // MERGE
        assert val == lh * lw
        rows += list(img_rows)
        for i in range(val):  # get_rope_index: t = 0, h, w of the merged grid, after the text before it
            pos[0].append(st)
            pos[1].append(st + i // lw)
            pos[2].append(st + i % lw)
        st += max(lh, lw)
        ids += [-1] * val
rows, pos, vis = np.array(rows), np.array(pos), np.array(ids) == -1
resid, pre, logits = hf_text(rows, pos, ds_rows, vis)
n = rows.shape[0]
X = os.path.join(OUT, "expected")
np.save(os.path.join(X, "positions.npy"), np.ascontiguousarray(pos.T, dtype=np.int32))
np.save(os.path.join(X, "image_embd.npy"), img_rows.astype(np.float32))
np.save(os.path.join(X, "deepstack.npy"), ds_rows.astype(np.float32))
np.save(os.path.join(X, "vision_layers.npy"), vis_blocks.astype(np.float32))
np.save(os.path.join(X, "resid.npy"), resid.astype(np.float32))
last = logits[-1].astype(np.float32)
keep = np.union1d(np.arange(0, last.shape[0], 8), np.argsort(-last)[:32]).astype(np.int32)
np.save(os.path.join(X, "logits_last_ids.npy"), keep)
np.save(os.path.join(X, "logits_last_vals.npy"), last[keep])

# ---- agreement with llama.cpp: with HF's definition, and with llama.cpp's difference reproduced
# (tanh GELU in both kinds of merger); llama.cpp's l_out-N is block N's output before its DeepStack
# addition (idscope's layer N + 1 is after it) ----
img_l, ds_l, _ = hf_vision(pix, gelu=gelu_tanh)
rows_l = rows.copy()
rows_l[vis] = img_l
_, pre_l, logits_l = hf_text(rows_l, pos, ds_l, vis)
lpos = np.load(os.path.join(tmp, "positions.npy"))
commit = subprocess.run(["git", "-C", L, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
lines = [f"llama.cpp (commit {commit}) vs the HF transcription, max |diff| (scale = max |HF value|)",
         f"positions equal: {bool((lpos == pos.T).all())}", "array | vs HF | vs HF with llama.cpp's difference | scale"]


def row(name, got, ref, ref_l):
    lines.append(f"{name} | {np.abs(got - ref).max():.3g} | {np.abs(got - ref_l).max():.3g} | {np.abs(ref).max():.3g}")


lie = np.load(os.path.join(tmp, "image_embd.npy"))  # [n_img, NE * (1 + n_ds)]: main, then each DeepStack row
row("image_embd (main rows)", lie[:, :NE], img_rows, img_l)
for k in range(len(DEEPSTACK)):
    row(f"deepstack {k} (tower block {DEEPSTACK[k]})", lie[:, NE * (k + 1):NE * (k + 2)], ds_rows[k], ds_l[k])
for l in range(DEPTH):
    # merge order; a DeepStack block's output is passed to the callback twice (as [E, n] and as [4E, n/4])
    v = np.load(os.path.join(tmp, f"vision_layer-{l}.npy")).reshape(-1, E)[:vis_blocks.shape[1]]
    row(f"vision block {l}", v, vis_blocks[l], vis_blocks[l])
for l in range(NL):
    r = np.load(os.path.join(tmp, f"resid-{l}.npy"))
    row(f"l_out-{l} (block {l} before its DeepStack addition)" + (" (last row)" if r.shape[0] < n else ""), r,
        pre[l][-r.shape[0]:], pre_l[l][-r.shape[0]:])
row("logits (last row)", np.load(os.path.join(tmp, "logits_last.npy")), logits[-1], logits_l[-1])
with open(os.path.join(OUT, "llamacpp.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
shutil.rmtree(tmp)
