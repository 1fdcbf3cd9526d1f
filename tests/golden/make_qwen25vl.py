#!/usr/bin/python3
"""Golden data for the Qwen2.5-VL family (projector "qwen2.5vl_merger"), from two sources that are not
idscope: a NumPy transcription of the HF transformers definition (modeling_qwen2_5_vl.py: the
vision tower with window attention, the merger, get_rope_index and the M-RoPE text model;
image_processing_qwen2_vl.py: smart_resize, Pillow bicubic, rescale, normalize) and llama.cpp
(libmtmd + libllama, through llamacpp_dump.c beside this script) on the same GGUF pair.

The tower is a random-weight model with Qwen2.5-VL's layout at tiny widths, written with llama.cpp's
gguf-py as its converter writes it (conversion/qwenvl.py). The text model is the Qwen2-VL golden
text.gguf of ../shared/golden/qwen2vl-tiny/: Qwen2.5-VL's text model has the same architecture
(llama.cpp arch `qwen2vl`, M-RoPE) and that file carries the real Qwen2 vocabulary (151936 tokens),
so it is used as it is rather than committing another 25 MB.

Usage (from the repository root; needs python3-numpy, python3-pil and a llama.cpp build made by
../shared/tools/llamacpp-oracle.sh):
    /usr/bin/python3 tests/golden/make_qwen25vl.py [--llama-cpp DIR] [--shared DIR] [--out DIR]
Writes OUT (default tests/golden/qwen25vl-tiny): mmproj.gguf, image.png, prompt.txt, tokens.json,
expected/*.npy (the HF transcription), preprocess/ (three HF image-processor resizes) and
llamacpp.txt (max |diff| between llama.cpp and the HF transcription, per array)."""
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
ap.add_argument("--out", default="tests/golden/qwen25vl-tiny")
args = ap.parse_args()
sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
import gguf  # noqa: E402

OUT = args.out
TEXT = os.path.join(args.shared, "golden/qwen2vl-tiny/text.gguf")
os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
os.makedirs(os.path.join(OUT, "preprocess"), exist_ok=True)

# ---- the tiny tower: Qwen2_5_VLVisionConfig at small widths ----
E, HEADS, FF, DEPTH, OUT_DIM = 32, 2, 56, 3, 64
PATCH, MERGE, TPATCH, WINDOW = 14, 2, 2, 112
FULLATT = [1]  # fullatt_block_indexes: block 1 attends across windows, blocks 0 and 2 inside them
N_WA = FULLATT[0] + 1  # the converter's n_wa_pattern
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
rng = np.random.default_rng(2505)


def f16(a):  # matrices are stored F16 (converter with ftype F16); the reference uses the stored values
    return np.asarray(a, np.float32).astype(np.float16)


def mat(out_f, in_f):
    return f16(rng.standard_normal((out_f, in_f)) / math.sqrt(in_f))


def vec(n, scale=0.1, base=0.0):
    return (base + scale * rng.standard_normal(n)).astype(np.float32)


W = {"patch": f16(rng.standard_normal((E, 3, TPATCH, PATCH, PATCH)) / math.sqrt(3 * TPATCH * PATCH * PATCH))}
for l in range(DEPTH):
    b = {"qkv": mat(3 * E, E), "qkv_b": vec(3 * E), "proj": mat(E, E), "proj_b": vec(E),
         "norm1": vec(E, 0.1, 1.0), "norm2": vec(E, 0.1, 1.0),
         "gate": mat(FF, E), "gate_b": vec(FF), "up": mat(FF, E), "up_b": vec(FF),
         "down": mat(E, FF), "down_b": vec(E)}
    W[l] = b
W["ln_q"] = vec(E, 0.1, 1.0)
W["mlp0"], W["mlp0_b"] = mat(4 * E, 4 * E), vec(4 * E)
W["mlp2"], W["mlp2_b"] = mat(OUT_DIM, 4 * E), vec(OUT_DIM)

# ---- mmproj.gguf, as conversion/qwenvl.py writes it ----
mm_path = os.path.join(OUT, "mmproj.gguf")
w = gguf.GGUFWriter(mm_path, "clip")
w.add_bool("clip.has_vision_encoder", True)
w.add_uint32("general.file_type", 1)
w.add_string("general.name", "tiny-qwen2.5vl-mmproj")
w.add_string("clip.projector_type", "qwen2.5vl_merger")
w.add_uint32("clip.vision.image_size", 560)
w.add_uint32("clip.vision.patch_size", PATCH)
w.add_uint32("clip.vision.embedding_length", E)
w.add_uint32("clip.vision.feed_forward_length", FF)
w.add_uint32("clip.vision.projection_dim", OUT_DIM)
w.add_uint32("clip.vision.block_count", DEPTH)
w.add_uint32("clip.vision.attention.head_count", HEADS)
w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
w.add_array("clip.vision.image_mean", MEAN)
w.add_array("clip.vision.image_std", STD)
w.add_bool("clip.use_silu", True)
w.add_uint32("clip.vision.n_wa_pattern", N_WA)
w.add_tensor("v.patch_embd.weight", np.ascontiguousarray(W["patch"][:, :, 0]))
w.add_tensor("v.patch_embd.weight.1", np.ascontiguousarray(W["patch"][:, :, 1]))
for l in range(DEPTH):
    b, p = W[l], f"v.blk.{l}."
    for i, n in enumerate("qkv"):
        w.add_tensor(p + f"attn_{n}.weight", np.ascontiguousarray(b["qkv"][i * E:(i + 1) * E]))
        w.add_tensor(p + f"attn_{n}.bias", b["qkv_b"][i * E:(i + 1) * E].copy())
    w.add_tensor(p + "attn_out.weight", b["proj"])
    w.add_tensor(p + "attn_out.bias", b["proj_b"])
    w.add_tensor(p + "ln1.weight", b["norm1"])
    w.add_tensor(p + "ln2.weight", b["norm2"])
    for n in ("gate", "up", "down"):
        w.add_tensor(p + f"ffn_{n}.weight", b[n])
        w.add_tensor(p + f"ffn_{n}.bias", b[n + "_b"])
w.add_tensor("v.post_ln.weight", W["ln_q"])
w.add_tensor("mm.0.weight", W["mlp0"])
w.add_tensor("mm.0.bias", W["mlp0_b"])
w.add_tensor("mm.2.weight", W["mlp2"])
w.add_tensor("mm.2.bias", W["mlp2_b"])
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# ---- the image: 168 x 140, multiples of 28 (no resize in either implementation): 12 x 10 patches,
# a 6 x 5 merged grid, four windows of 4 x 4, 2 x 4, 4 x 1 and 2 x 1 merged cells ----
IW, IH = 168, 140
yy, xx = np.mgrid[0:IH, 0:IW]
img = np.stack([(xx * 7 + yy * 3) % 64, (xx * 2 + yy * 5) % 48, 40 + (xx * yy) % 32], -1).astype(np.float64)
img += rng.integers(0, 24, img.shape)
circle = (xx - 45) ** 2 + (yy - 70) ** 2 < 26 ** 2
img[circle] = [220, 30, 30]
square = (abs(xx - 125) < 22) & (abs(yy - 60) < 22)
img[square] = [30, 40, 210]
img = np.clip(img, 0, 255).astype(np.uint8)
Image.fromarray(img, "RGB").save(os.path.join(OUT, "image.png"))
PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>Is the red circle "
          "to the left or right of the blue square?<|im_end|>\n<|im_start|>assistant\n")
with open(os.path.join(OUT, "prompt.txt"), "w") as f:
    f.write(PROMPT)


# ---- HF Qwen2VLImageProcessor (slow): smart_resize, Pillow BICUBIC, rescale, normalize ----
def smart_resize(h, w, factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280):
    h_bar, w_bar = round(h / factor) * factor, round(w / factor) * factor  # Python round: half to even
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((h * w) / max_pixels)
        h_bar, w_bar = math.floor(h / beta / factor) * factor, math.floor(w / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar, w_bar = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return h_bar, w_bar


def hf_preprocess(rgb, min_pixels=56 * 56, max_pixels=28 * 28 * 1280):
    h, w = rgb.shape[:2]
    rh, rw = smart_resize(h, w, 28, min_pixels, max_pixels)
    a = np.array(Image.fromarray(rgb, "RGB").resize((rw, rh), resample=Image.BICUBIC))
    a = (a.astype(np.float64) * (1 / 255)).astype(np.float32)  # image_transforms.rescale
    a = (a - np.array(MEAN, np.float32)) / np.array(STD, np.float32)  # image_transforms.normalize (float32)
    return a.transpose(2, 0, 1).astype(np.float32)  # [3, H, W]


def pattern(w, h, k):
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([(x * 37 + y * 11 + k) % 256, (x * x + 3 * y * y) % 256, np.where((x // 5 + y // 4) % 2, 255, 0)], -1)
    return a.astype(np.uint8)


# three resizes: a tie rounded to even (70/28 = 2.5 -> 2), a small image grown to min_pixels, a large
# one shrunk under max_pixels (floor, ending below min_pixels as HF allows)
for (pw, ph, mn, mx) in [(70, 62, 3136, 1003520), (40, 30, 3136, 1003520), (100, 70, 3136, 4000)]:
    src = pattern(pw, ph, pw)
    Image.fromarray(src, "RGB").save(os.path.join(OUT, "preprocess", f"src_{pw}x{ph}.png"))
    px = hf_preprocess(src, mn, mx)
    np.save(os.path.join(OUT, "preprocess", f"pixels_{pw}x{ph}_{mn}_{mx}.npy"), px)


# ---- HF Qwen2_5_VisionTransformerPretrainedModel, transcribed (float64) ----
def rms(x, wt, eps=1e-6):
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


def get_window_index(grid_t, grid_h, grid_w):
    vws = WINDOW // MERGE // PATCH
    lh, lw = grid_h // MERGE, grid_w // MERGE
    index = np.arange(grid_t * lh * lw).reshape(grid_t, lh, lw)
    pad_h, pad_w = vws - lh % vws, vws - lw % vws
    nh, nw = (lh + pad_h) // vws, (lw + pad_w) // vws
    padded = np.pad(index, ((0, 0), (0, pad_h), (0, pad_w)), constant_values=-100)
    padded = padded.reshape(grid_t, nh, vws, nw, vws).transpose(0, 1, 3, 2, 4).reshape(grid_t, nh * nw, vws, vws)
    seqlens = (padded != -100).sum((2, 3)).reshape(-1)
    flat = padded.reshape(-1)
    win_index = flat[flat != -100]
    cu = np.concatenate([[0], np.cumsum(seqlens) * MERGE * MERGE])
    cu = cu[np.concatenate([[True], cu[1:] != cu[:-1]])]  # unique_consecutive
    return win_index, cu


def hf_vision(pix, gelu=gelu_erf):
    """pix [3, H, W] float32 of one image -> (image rows [n/4, OUT_DIM], blocks [DEPTH, n, E] in merge
    order, window_index)."""
    _, H, Wd = pix.shape
    gh, gw = H // PATCH, Wd // PATCH
    n = gh * gw
    x = np.stack([pix, pix])  # the processor repeats a still image to the temporal patch size
    x = x.reshape(1, TPATCH, 3, gh // MERGE, MERGE, PATCH, gw // MERGE, MERGE, PATCH)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(n, 3 * TPATCH * PATCH * PATCH).astype(np.float64)
    h = x @ W["patch"].astype(np.float64).reshape(E, -1).T
    # rot_pos_emb: (row, column) of each patch in merge order
    hp = np.arange(gh)[:, None].repeat(gw, 1).reshape(gh // MERGE, MERGE, gw // MERGE, MERGE).transpose(0, 2, 1, 3)
    wp = np.arange(gw)[None, :].repeat(gh, 0).reshape(gh // MERGE, MERGE, gw // MERGE, MERGE).transpose(0, 2, 1, 3)
    hd = E // HEADS
    dim = hd // 2
    inv_freq = 1.0 / (10000.0 ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    freqs = np.outer(np.arange(max(gh, gw)), inv_freq)
    rot = np.concatenate([freqs[hp.reshape(-1)], freqs[wp.reshape(-1)]], -1)  # [n, hd/2]
    win_index, cu_win = get_window_index(1, gh, gw)
    u = MERGE * MERGE
    h = h.reshape(n // u, u, E)[win_index].reshape(n, E)
    rot = rot.reshape(n // u, u, -1)[win_index].reshape(n, -1)
    emb = np.concatenate([rot, rot], -1)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    cu_full = np.array([0, n])
    rev = np.argsort(win_index)
    blocks = []
    for l in range(DEPTH):
        b = {k: v.astype(np.float64) for k, v in W[l].items()}
        cu = cu_full if l in FULLATT else cu_win
        xn = rms(h, b["norm1"])
        qkv = (xn @ b["qkv"].T + b["qkv_b"]).reshape(n, 3, HEADS, hd)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        att = np.zeros((n, HEADS, hd))
        for s in range(len(cu) - 1):
            a, z = cu[s], cu[s + 1]
            for hh in range(HEADS):
                sc = q[a:z, hh] @ k[a:z, hh].T / math.sqrt(hd)
                sc = np.exp(sc - sc.max(-1, keepdims=True))
                att[a:z, hh] = (sc / sc.sum(-1, keepdims=True)) @ v[a:z, hh]
        h = h + att.reshape(n, E) @ b["proj"].T + b["proj_b"]
        xn = rms(h, b["norm2"])
        h = h + (silu(xn @ b["gate"].T + b["gate_b"]) * (xn @ b["up"].T + b["up_b"])) @ b["down"].T + b["down_b"]
        blocks.append(h.reshape(n // u, u, E)[rev].reshape(n, E))
    m = rms(h, W["ln_q"].astype(np.float64)).reshape(n // u, u * E)
    m = gelu(m @ W["mlp0"].astype(np.float64).T + W["mlp0_b"]) @ W["mlp2"].astype(np.float64).T + W["mlp2_b"]
    return m[rev], np.stack(blocks), win_index


# ---- llama.cpp on the pair ----
tmp = tempfile.mkdtemp(prefix="q25golden-")
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

# ---- HF Qwen2_5_VLModel: get_rope_index and the text model (weights of TEXT) ----
rd = gguf.GGUFReader(TEXT)
kv = {k: f.contents() for k, f in rd.fields.items() if not k.startswith("tokenizer.")}
T = {t.name: np.asarray(t.data).astype(np.float64) for t in rd.tensors}
NE, NL = kv["qwen2vl.embedding_length"], kv["qwen2vl.block_count"]
NH, NKV = kv["qwen2vl.attention.head_count"], kv["qwen2vl.attention.head_count_kv"]
HD, EPS, BASE = NE // NH, kv["qwen2vl.attention.layer_norm_rms_epsilon"], kv["qwen2vl.rope.freq_base"]
SECTIONS = [s for s in kv["qwen2vl.rope.dimension_sections"] if s][:3]


def hf_text(rows, pos, eps=EPS):
    """rows [n, NE] input embeddings, pos [3, n] -> (resid [NL + 1, n, NE], logits [n, vocab])."""
    n = rows.shape[0]
    inv = 1.0 / (BASE ** (np.arange(0, HD, 2, dtype=np.float64) / HD))
    emb = [np.concatenate([np.outer(pos[s], inv)] * 2, -1) for s in range(3)]  # t, h, w: [n, HD]
    sect = SECTIONS * 2
    cuts = np.cumsum(sect)[:-1]
    cos = np.concatenate([np.split(np.cos(emb[i % 3]), cuts, -1)[i] for i in range(len(sect))], -1)[:, None]
    sin = np.concatenate([np.split(np.sin(emb[i % 3]), cuts, -1)[i] for i in range(len(sect))], -1)[:, None]
    h, out = rows.copy(), [rows.copy()]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(NL):
        p = f"blk.{l}."
        x = rms(h, T[p + "attn_norm.weight"], eps)
        q = (x @ T[p + "attn_q.weight"].T + T[p + "attn_q.bias"]).reshape(n, NH, HD)
        k = (x @ T[p + "attn_k.weight"].T + T[p + "attn_k.bias"]).reshape(n, NKV, HD)
        v = (x @ T[p + "attn_v.weight"].T + T[p + "attn_v.bias"]).reshape(n, NKV, HD)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        att = np.zeros((n, NH, HD))
        for hh in range(NH):
            g = hh // (NH // NKV)
            sc = q[:, hh] @ k[:, g].T / math.sqrt(HD) + mask
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            att[:, hh] = (sc / sc.sum(-1, keepdims=True)) @ v[:, g]
        h = h + att.reshape(n, NE) @ T[p + "attn_output.weight"].T
        x = rms(h, T[p + "ffn_norm.weight"], eps)
        h = h + (silu(x @ T[p + "ffn_gate.weight"].T) * (x @ T[p + "ffn_up.weight"].T)) @ T[p + "ffn_down.weight"].T
        out.append(h.copy())
    logits = rms(h, T["output_norm.weight"], eps) @ T.get("output.weight", T["token_embd.weight"]).T
    return np.stack(out), logits


pix = hf_preprocess(img)
assert pix.shape == (3, IH, IW)
img_rows, vis_blocks, win_index = hf_vision(pix)
ids, rows, pos = [], [], [[], [], []]
st = 0
for kind, val in chunks:  # input ids with <|image_pad|> rows replaced by the image rows (masked_scatter)
    if kind == "text":
        for t in val:
            rows.append(T["token_embd.weight"][t])
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
rows, pos = np.array(rows), np.array(pos)
resid, logits = hf_text(rows, pos)
n = rows.shape[0]
X = os.path.join(OUT, "expected")
np.save(os.path.join(X, "positions.npy"), np.ascontiguousarray(pos.T, dtype=np.int32))
np.save(os.path.join(X, "image_embd.npy"), img_rows.astype(np.float32))
np.save(os.path.join(X, "vision_layers.npy"), vis_blocks.astype(np.float32))
np.save(os.path.join(X, "resid.npy"), resid.astype(np.float32))
# the last row's logits at every 8th token id and at the 32 largest (the whole row would be 600 KB)
last = logits[-1].astype(np.float32)
keep = np.union1d(np.arange(0, last.shape[0], 8), np.argsort(-last)[:32]).astype(np.int32)
np.save(os.path.join(X, "logits_last_ids.npy"), keep)
np.save(os.path.join(X, "logits_last_vals.npy"), last[keep])

# ---- agreement with llama.cpp: with HF's definition, and with llama.cpp's two differences
# reproduced (tanh GELU in the merger, RMS eps 0 in the text model) ----
img_l, _, _ = hf_vision(pix, gelu=gelu_tanh)
rows_l = rows.copy()
rows_l[np.array(ids) == -1] = img_l
resid_l, logits_l = hf_text(rows_l, pos, eps=0.0)
lpos = np.load(os.path.join(tmp, "positions.npy"))
commit = subprocess.run(["git", "-C", L, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
lines = [f"llama.cpp (commit {commit}) vs the HF transcription, max |diff| (scale = max |HF value|)",
         f"positions equal: {bool((lpos == pos.T).all())}", "array | vs HF | vs HF with llama.cpp's differences | scale"]


def row(name, got, ref, ref_l):
    lines.append(f"{name} | {np.abs(got - ref).max():.3g} | {np.abs(got - ref_l).max():.3g} | {np.abs(ref).max():.3g}")


row("image_embd", np.load(os.path.join(tmp, "image_embd.npy")), img_rows, img_l)
u = MERGE * MERGE
for l in range(DEPTH):  # llama.cpp's tower stream is in window order
    v = np.load(os.path.join(tmp, f"vision_layer-{l}.npy"))
    v = v.reshape(-1, u, E)[np.argsort(win_index)].reshape(-1, E)
    row(f"vision block {l}", v, vis_blocks[l], vis_blocks[l])
for l in range(NL):
    r = np.load(os.path.join(tmp, f"resid-{l}.npy"))
    row(f"resid {l + 1}" + (" (last row)" if r.shape[0] < n else ""), r, resid[l + 1][-r.shape[0]:],
        resid_l[l + 1][-r.shape[0]:])
row("logits (last row)", np.load(os.path.join(tmp, "logits_last.npy")), logits[-1], logits_l[-1])
with open(os.path.join(OUT, "llamacpp.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
shutil.rmtree(tmp)
