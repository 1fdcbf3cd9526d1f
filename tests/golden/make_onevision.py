#!/usr/bin/python3
"""Golden data for LLaVA-OneVision / LLaVA-Video-Qwen2 (HF model_type "llava_onevision"): a random-weight
checkpoint written as a Hugging Face model folder (config.json, model.safetensors in BF16, tokenizer.json,
tokenizer_config.json, preprocessor_config.json, chat_template.json) and the activations of a NumPy
transcription of the HF definition on it:

- image_processing_llava_onevision.py: select_best_resolution over image_grid_pinpoints,
  get_patch_output_size + Pillow bicubic + centred black padding + divide_to_patches, the base image
  stretched to the square with Pillow bicubic, rescale, normalize; the video processor's frames
  stretched to the square;
- modeling_siglip.py (SiglipVisionModel: patch conv with bias, learned positions, pre-norm blocks,
  gelu_pytorch_tanh), hidden_states[vision_feature_layer] with the "full" strategy;
- modeling_llava_onevision.py: LlavaOnevisionMultiModalProjector (linear, GELU erf, linear),
  pack_image_features (base tile first, the tiles' map, unpad_image, the anyres_max_N bilinear shrink,
  image_newline after every row), get_video_features + apply_pooling (bilinear to ceil(g / 2)) and the
  one image_newline after the video, masked_scatter into the prompt;
- the Qwen2 text model (q/k/v biases, rotate_half rotary, untied lm_head).

Token ids of the prompts' text come from llama.cpp's tokenizer (libllama with vocab_only, through
llamacpp_tokenize_files.c beside this script) on the same vocabulary written as a GGUF: llama.cpp cannot run
this family (no converter, no projector), so it checks the tokens only.

The vocabulary is the real Qwen2 byte-level BPE cut to its first tokens plus the words the
experiments ask about (from ../shared/golden/qwen2vl-tiny/text.gguf), with <image> and <video> added
as HF's processor has them.

Usage (from the repository root; python3-numpy, python3-pil, a llama.cpp build made by
../shared/tools/llamacpp-oracle.sh):
    /usr/bin/python3 tests/golden/make_onevision.py [--llama-cpp DIR] [--shared DIR] [--out DIR]
Writes OUT (default tests/golden/onevision-tiny): model/ (the HF folder), image.png, frames/ (a 4-frame
video), prompt.txt, prompt-video.txt and expected/*.npy."""
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
ap.add_argument("--out", default="tests/golden/onevision-tiny")
args = ap.parse_args()
sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402
from make_hf import bpe_tokenizer, write_json  # noqa: E402

OUT = args.out
MODEL = os.path.join(OUT, "model")
for d in ("expected", "model", "frames"):
    shutil.rmtree(os.path.join(OUT, d), ignore_errors=True)
    os.makedirs(os.path.join(OUT, d))
rng = np.random.default_rng(2604)

# ---- sizes: SiglipVisionConfig / Qwen2Config at tiny widths ----
S, PATCH, E, HEADS, FF, VL, FEATURE_LAYER = 70, 14, 32, 2, 64, 3, -2  # 5 x 5 patches; blocks 0, 1 used
G = S // PATCH
NP = G * G
NE, NL, NH, NKV, NFF, EPS, BASE = 32, 3, 4, 2, 96, 1e-6, 1e6
HD = NE // NH
MAX_PATCHES = 9  # vision_aspect_ratio "anyres_max_9"
PINPOINTS = [[a * S, b * S] for a in range(1, 7) for b in range(1, 7)]  # HF's default grid, for 70 px squares
MEAN, STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]  # SigLIP's
N_KEEP = 700
WORDS = ("circle square triangle diamond cross star hexagon heart pentagon arrow red green blue yellow purple orange "
         "white black gray grey pink brown cyan left right above below front behind near far yes no between before "
         "after").split()


def bf16(a):  # stored BF16 (round to nearest even); the reference uses the stored values
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return u


def from_bf16(u):
    return (u.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


W = {}  # HF name -> bf16 bits


def put(name, a):
    W[name] = bf16(a)
    return from_bf16(W[name])


def mat(name, out_f, in_f):
    return put(name, rng.standard_normal((out_f, in_f)) / math.sqrt(in_f))


def vec(name, n, scale=0.1, base=0.0):
    return put(name, base + scale * rng.standard_normal(n))


# ---- the vocabulary ----
src = gguf.GGUFReader(os.path.join(args.shared, "golden/qwen2vl-tiny/text.gguf"))
all_toks = src.fields["tokenizer.ggml.tokens"].contents()
all_merges = src.fields["tokenizer.ggml.merges"].contents()
made_by = {}
for m in all_merges:
    made_by.setdefault(m.replace(" ", ""), m)


def with_parts(tok, acc):
    if tok in acc:
        return
    acc.add(tok)
    if tok in made_by:
        for part in made_by[tok].split(" "):
            with_parts(part, acc)


ALL = set(all_toks)
keep = set(all_toks[:N_KEEP])
for word in WORDS:
    for v in (word, word.capitalize()):
        for tok in (v, "\u0120" + v):
            if tok in made_by or tok in ALL:
                with_parts(tok, keep)
merges = [m for m in all_merges if all(p in keep for p in m.split(" ")) and m.replace(" ", "") in keep]
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
toks = [t for t in all_toks if t in keep] + SPECIAL
ttype = [1] * (len(toks) - len(SPECIAL)) + [3] * len(SPECIAL)
NV = len(toks)
TID = {t: i for i, t in enumerate(toks)}

# ---- weights (HF names of transformers >= 4.52: model.*, lm_head) ----
VT = "model.vision_tower.vision_model."
V = {"patch": put(VT + "embeddings.patch_embedding.weight", rng.standard_normal((E, 3, PATCH, PATCH)) * 0.05),
     "patch_b": vec(VT + "embeddings.patch_embedding.bias", E),
     "pos": put(VT + "embeddings.position_embedding.weight", rng.standard_normal((NP, E)) * 0.3), "blk": []}
for l in range(VL):
    p = f"{VT}encoder.layers.{l}."
    b = {}
    for k in ("q", "k", "v", "out"):
        b[k] = mat(f"{p}self_attn.{k}_proj.weight", E, E)
        b[k + "_b"] = vec(f"{p}self_attn.{k}_proj.bias", E)
    for n in (1, 2):
        b[f"ln{n}"] = vec(f"{p}layer_norm{n}.weight", E, 0.1, 1.0)
        b[f"ln{n}_b"] = vec(f"{p}layer_norm{n}.bias", E)
    b["fc1"], b["fc1_b"] = mat(p + "mlp.fc1.weight", FF, E), vec(p + "mlp.fc1.bias", FF)
    b["fc2"], b["fc2_b"] = mat(p + "mlp.fc2.weight", E, FF), vec(p + "mlp.fc2.bias", E)
    V["blk"].append(b)
vec(VT + "post_layernorm.weight", E, 0.1, 1.0)  # in the checkpoint, unused by LLaVA-OneVision
vec(VT + "post_layernorm.bias", E)
PJ = "model.multi_modal_projector."
V["l1"], V["l1_b"] = mat(PJ + "linear_1.weight", NE, E), vec(PJ + "linear_1.bias", NE)
V["l2"], V["l2_b"] = mat(PJ + "linear_2.weight", NE, NE), vec(PJ + "linear_2.bias", NE)
V["newline"] = vec("model.image_newline", NE, 1.0)
LM = "model.language_model."
T = {"embd": put(LM + "embed_tokens.weight", rng.standard_normal((NV, NE)) * 0.5),
     "norm": vec(LM + "norm.weight", NE, 0.1, 1.0), "head": mat("lm_head.weight", NV, NE), "blk": []}
for l in range(NL):
    p = f"{LM}layers.{l}."
    b = {"attn_norm": vec(p + "input_layernorm.weight", NE, 0.1, 1.0),
         "ffn_norm": vec(p + "post_attention_layernorm.weight", NE, 0.1, 1.0),
         "q": mat(p + "self_attn.q_proj.weight", NH * HD, NE), "q_b": vec(p + "self_attn.q_proj.bias", NH * HD),
         "k": mat(p + "self_attn.k_proj.weight", NKV * HD, NE), "k_b": vec(p + "self_attn.k_proj.bias", NKV * HD),
         "v": mat(p + "self_attn.v_proj.weight", NKV * HD, NE), "v_b": vec(p + "self_attn.v_proj.bias", NKV * HD),
         "o": mat(p + "self_attn.o_proj.weight", NE, NH * HD), "gate": mat(p + "mlp.gate_proj.weight", NFF, NE),
         "up": mat(p + "mlp.up_proj.weight", NFF, NE), "down": mat(p + "mlp.down_proj.weight", NE, NFF)}
    T["blk"].append(b)


def write_safetensors_bf16(path, tensors):
    import struct
    head, off = {}, 0
    for name in sorted(tensors):
        a = tensors[name]
        head[name] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    head["__metadata__"] = {"format": "pt"}
    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for name in sorted(tensors):
            f.write(np.ascontiguousarray(tensors[name]).tobytes())


write_safetensors_bf16(os.path.join(MODEL, "model.safetensors"), W)
write_json(os.path.join(MODEL, "config.json"), {
    "architectures": ["LlavaOnevisionForConditionalGeneration"], "model_type": "llava_onevision",
    "image_token_index": TID["<image>"], "video_token_index": TID["<video>"], "projector_hidden_act": "gelu",
    "multimodal_projector_bias": True, "vision_feature_select_strategy": "full", "vision_feature_layer": FEATURE_LAYER,
    "vision_aspect_ratio": f"anyres_max_{MAX_PATCHES}", "image_grid_pinpoints": PINPOINTS, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "text_config": {"model_type": "qwen2", "hidden_size": NE, "intermediate_size": NFF, "num_hidden_layers": NL,
                    "num_attention_heads": NH, "num_key_value_heads": NKV, "rms_norm_eps": EPS, "rope_theta": BASE,
                    "max_position_embeddings": 4096, "vocab_size": NV, "tie_word_embeddings": False,
                    "hidden_act": "silu"},
    "vision_config": {"model_type": "siglip_vision_model", "hidden_size": E, "intermediate_size": FF,
                      "num_hidden_layers": VL, "num_attention_heads": HEADS, "image_size": S, "patch_size": PATCH,
                      "layer_norm_eps": 1e-6, "hidden_act": "gelu_pytorch_tanh", "vision_use_head": False}})
kv = {"tokenizer.ggml.tokens": toks, "tokenizer.ggml.token_type": ttype, "tokenizer.ggml.merges": merges}
write_json(os.path.join(MODEL, "tokenizer.json"), bpe_tokenizer(kv))
TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}{% for content in "
            "message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}{% for content "
            "in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>\\n' }}{% endfor %}{% for "
            "content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
            "{{'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
write_json(os.path.join(MODEL, "tokenizer_config.json"), {
    "add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
    "unk_token": None, "errors": "replace", "model_max_length": 32768, "split_special_tokens": False,
    "tokenizer_class": "Qwen2Tokenizer"})
write_json(os.path.join(MODEL, "chat_template.json"), {"chat_template": TEMPLATE})
write_json(os.path.join(MODEL, "preprocessor_config.json"), {
    "image_processor_type": "LlavaOnevisionImageProcessor", "processor_class": "LlavaOnevisionProcessor",
    "do_resize": True, "size": {"height": S, "width": S}, "resample": 3, "do_rescale": True,
    "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": MEAN, "image_std": STD, "do_pad": True,
    "do_convert_rgb": True, "image_grid_pinpoints": PINPOINTS})

# ---- the image (300 x 260: a 4 x 5 tile grid, unpadded to 20 x 23 cells, shrunk to 13 x 16) and the video ----
IW, IH = 300, 260
yy, xx = np.mgrid[0:IH, 0:IW]
img = np.stack([(xx * 7 + yy * 3) % 64, (xx * 2 + yy * 5) % 48, 40 + (xx * yy) % 32], -1).astype(np.float64)
img += rng.integers(0, 24, img.shape)
img[(xx - 80) ** 2 + (yy - 130) ** 2 < 40 ** 2] = [220, 30, 30]
img[(abs(xx - 220) < 35) & (abs(yy - 120) < 35)] = [30, 40, 210]
img = np.clip(img, 0, 255).astype(np.uint8)
Image.fromarray(img, "RGB").save(os.path.join(OUT, "image.png"))
FW, FH, NF = 84, 70, 4
frames = []
for f in range(NF):
    yy, xx = np.mgrid[0:FH, 0:FW]
    fr = np.stack([(xx * 5 + yy * 3 + 17 * f) % 80, (xx * 3 + yy * 7) % 60, 50 + (xx * yy + f) % 40], -1).astype(np.float64)
    fr += rng.integers(0, 20, fr.shape)
    if f >= 1:
        fr[(xx - 25) ** 2 + (yy - 35) ** 2 < 15 ** 2] = [220, 30, 30]
    if f >= 2:
        fr[(abs(xx - 60) < 12) & (abs(yy - 35) < 12)] = [30, 40, 210]
    fr = np.clip(fr, 0, 255).astype(np.uint8)
    Image.fromarray(fr, "RGB").save(os.path.join(OUT, "frames", f"frame_{f:02d}.png"))
    frames.append(fr)
PROMPT = ("<|im_start|>user\n<image>\nIs the red circle to the left or right of the blue square?<|im_end|>\n"
          "<|im_start|>assistant\n")
PROMPT_V = ("<|im_start|>user\n<video>\nDoes the circle come before or after the square?<|im_end|>\n"
            "<|im_start|>assistant\n")
for name, p in (("prompt.txt", PROMPT), ("prompt-video.txt", PROMPT_V)):
    with open(os.path.join(OUT, name), "w") as f:
        f.write(p)


# ---- HF LlavaOnevisionImageProcessor / video processor ----
def select_best_resolution(h, w):
    best, best_eff, best_waste = None, 0, float("inf")
    for ph, pw in PINPOINTS:
        scale = min(pw / w, ph / h)
        dw, dh = int(w * scale), int(h * scale)
        eff = min(dw * dh, w * h)
        waste = pw * ph - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (ph, pw), eff, waste
    return best


def pil_resize(a, w, h):
    return np.asarray(Image.fromarray(a, "RGB").resize((w, h), Image.BICUBIC))


def normalize(a):  # rescale (float64 -> float32), then normalize in float32, channels first
    x = (a.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return x.transpose(2, 0, 1)


def image_tiles(a):
    h, w = a.shape[:2]
    bh, bw = select_best_resolution(h, w)
    sw, sh = bw / w, bh / h
    if sw < sh:
        nw, nh = bw, min(math.ceil(h * sw), bh)
    else:
        nh, nw = bh, min(math.ceil(w * sh), bw)
    r = pil_resize(a, nw, nh)
    px, py = (bw - nw) // 2, (bh - nh) // 2
    canvas = np.zeros((bh, bw, 3), np.uint8)
    canvas[py:py + nh, px:px + nw] = r
    tiles = [canvas[i:i + S, j:j + S] for i in range(0, bh, S) for j in range(0, bw, S)]
    return np.stack([normalize(t) for t in [pil_resize(a, S, S)] + tiles]), (bh, bw)


# ---- HF SiglipVisionModel (hidden_states), the projector, pack_image_features, apply_pooling ----
def layer_norm(x, w, b, eps=1e-6):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_erf(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


N_RUN = VL + 1 + FEATURE_LAYER


def siglip(pix):
    """pix [n, 3, S, S] -> (hidden_states[FEATURE_LAYER] [n, NP, E], the stream after each used block)."""
    pw = V["patch"].reshape(E, -1)
    outs, blocks = [], [[] for _ in range(N_RUN)]
    hd = E // HEADS
    for t in pix.astype(np.float64):
        p = t.reshape(3, G, PATCH, G, PATCH).transpose(1, 3, 0, 2, 4).reshape(NP, -1)
        x = p @ pw.T + V["patch_b"] + V["pos"]
        for l in range(N_RUN):
            b = V["blk"][l]
            xn = layer_norm(x, b["ln1"], b["ln1_b"])
            q, k, v = (xn @ b[n].T + b[n + "_b"] for n in ("q", "k", "v"))
            att = np.zeros_like(q)
            for h in range(HEADS):
                s_ = slice(h * hd, (h + 1) * hd)
                sc = q[:, s_] @ k[:, s_].T / math.sqrt(hd)
                sc = np.exp(sc - sc.max(-1, keepdims=True))
                att[:, s_] = (sc / sc.sum(-1, keepdims=True)) @ v[:, s_]
            x = x + att @ b["out"].T + b["out_b"]
            xn = layer_norm(x, b["ln2"], b["ln2_b"])
            x = x + gelu_tanh(xn @ b["fc1"].T + b["fc1_b"]) @ b["fc2"].T + b["fc2_b"]
            blocks[l].append(x.copy())
        outs.append(x)
    return np.stack(outs), np.stack([np.concatenate(b) for b in blocks])


def project(x):
    return gelu_erf(x @ V["l1"].T + V["l1_b"]) @ V["l2"].T + V["l2_b"]


def interpolate_bilinear(m, oh, ow):
    """torch.nn.functional.interpolate(mode="bilinear", align_corners=False) of m [C, ih, iw]."""
    c, ih, iw = m.shape

    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0)
        i0 = src.astype(np.int64)
        i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
        return i0, i1, src - i0

    y0, y1, ly = axis(ih, oh)
    x0, x1, lx = axis(iw, ow)
    top = m[:, y0][:, :, x0] * (1 - lx) + m[:, y0][:, :, x1] * lx
    bot = m[:, y1][:, :, x0] * (1 - lx) + m[:, y1][:, :, x1] * lx
    return top * (1 - ly)[:, None] + bot * ly[:, None]


def unpad(m, h, w):  # unpad_image on [C, H, W] for an original (h, w)
    ch, cw = m.shape[1:]
    if w / h > cw / ch:
        nh = int(round(h * (cw / w), 7))
        pad = (ch - nh) // 2
        return m[:, pad:ch - pad, :]
    nw = int(round(w * (ch / h), 7))
    pad = (cw - nw) // 2
    return m[:, :, pad:cw - pad]


def pack_image(feat, h, w, best):
    base, tiles = feat[0], feat[1:]
    nph, npw = best[0] // S, best[1] // S
    m = tiles.reshape(nph, npw, G, G, -1).transpose(4, 0, 2, 1, 3).reshape(NE, nph * G, npw * G)
    m = unpad(m, h, w)
    c, ch, cw = m.shape
    ratio = math.sqrt(ch * cw / (MAX_PATCHES * G ** 2))
    if ratio > 1.1:
        m = interpolate_bilinear(m, int(ch // ratio), int(cw // ratio))
    m = np.concatenate([m, np.broadcast_to(V["newline"][:, None, None], (NE, m.shape[1], 1))], -1)
    return np.concatenate([base, m.reshape(NE, -1).T]), m.shape[1:]


def pool_video(feat):  # apply_pooling per frame, frames in order, one newline
    p = math.ceil(G / 2)
    rows = [interpolate_bilinear(f.T.reshape(NE, G, G), p, p).reshape(NE, -1).T for f in feat]
    return np.concatenate(rows + [V["newline"][None]])


# ---- the Qwen2 text model ----
def rms(x, w, eps=EPS):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def hf_text(rows):
    n = rows.shape[0]
    inv = 1.0 / (BASE ** (np.arange(0, HD, 2, dtype=np.float64) / HD))
    emb = np.concatenate([np.outer(np.arange(n), inv)] * 2, -1)
    cos, sin = np.cos(emb)[:, None], np.sin(emb)[:, None]
    h, out = rows.copy(), [rows.copy()]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for b in T["blk"]:
        x = rms(h, b["attn_norm"])
        q = (x @ b["q"].T + b["q_b"]).reshape(n, NH, HD)
        k = (x @ b["k"].T + b["k_b"]).reshape(n, NKV, HD)
        v = (x @ b["v"].T + b["v_b"]).reshape(n, NKV, HD)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        att = np.zeros((n, NH, HD))
        for hh in range(NH):
            g = hh // (NH // NKV)
            sc = q[:, hh] @ k[:, g].T / math.sqrt(HD) + mask
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            att[:, hh] = (sc / sc.sum(-1, keepdims=True)) @ v[:, g]
        h = h + att.reshape(n, NE) @ b["o"].T
        x = rms(h, b["ffn_norm"])
        sg = x @ b["gate"].T
        h = h + (sg / (1 + np.exp(-sg)) * (x @ b["up"].T)) @ b["down"].T
        out.append(h.copy())
    return np.stack(out), rms(h, T["norm"]) @ T["head"].T


# ---- llama.cpp's tokens of the prompts' text (the parts around the marker) ----
tmp = tempfile.mkdtemp(prefix="ovgolden-")
L = args.llama_cpp
voc = os.path.join(tmp, "vocab.gguf")
w = gguf.GGUFWriter(voc, "qwen2")
for k, val in (("block_count", NL), ("context_length", 4096), ("embedding_length", NE), ("feed_forward_length", NFF),
               ("attention.head_count", NH), ("attention.head_count_kv", NKV)):
    w.add_uint32("qwen2." + k, val)
w.add_float32("qwen2.attention.layer_norm_rms_epsilon", EPS)
w.add_float32("qwen2.rope.freq_base", BASE)
w.add_string("tokenizer.ggml.model", "gpt2")
w.add_string("tokenizer.ggml.pre", "qwen2")
w.add_array("tokenizer.ggml.tokens", toks)
w.add_array("tokenizer.ggml.token_type", ttype)
w.add_array("tokenizer.ggml.merges", merges)
w.add_uint32("tokenizer.ggml.eos_token_id", TID["<|im_end|>"])
w.add_uint32("tokenizer.ggml.bos_token_id", TID["<|endoftext|>"])
w.add_bool("tokenizer.ggml.add_bos_token", False)
w.write_header_to_file()
w.write_kv_data_to_file()
w.close()
exe = os.path.join(tmp, "llamacpp_tokenize")
subprocess.run(["cc", "-O1", "-std=c11", "-I" + L + "/include", "-I" + L + "/ggml/include",
                os.path.join(os.path.dirname(os.path.abspath(__file__)), "llamacpp_tokenize_files.c"), "-L" + L + "/build/bin",
                "-lllama", "-lggml", "-lggml-base", "-Wl,-rpath," + L + "/build/bin", "-o", exe], check=True)


def tokenize(parts):
    files = []
    for i, p in enumerate(parts):
        files.append(os.path.join(tmp, f"part{i}.txt"))
        with open(files[-1], "w") as f:
            f.write(p)
    out = subprocess.run([exe, voc] + files, check=True, capture_output=True, text=True).stdout.splitlines()
    return [[int(x) for x in line.split()] for line in out]


def run(prompt, marker, vis_rows):
    a, b = tokenize(prompt.split(marker))
    ids = a + [-1] * vis_rows.shape[0] + b
    rows = np.array([T["embd"][t] for t in a] + list(vis_rows) + [T["embd"][t] for t in b])
    resid, logits = hf_text(rows)
    return np.array(ids, np.int32), resid, logits


X = os.path.join(OUT, "expected")
pix, best = image_tiles(img)
assert best == (4 * S, 5 * S) and pix.shape[0] == 21, (best, pix.shape)
hs, vis_blocks = siglip(pix)
img_rows, (ph, pw) = pack_image(project(hs), IH, IW, best)
assert (ph, pw) == (13, 17), (ph, pw)
ids, resid, logits = run(PROMPT, "<image>", img_rows)
np.save(os.path.join(X, "pixels_sel.npy"), np.ascontiguousarray(pix[[0, 1, 20]].astype(np.float32)))
np.save(os.path.join(X, "tokens.npy"), np.ascontiguousarray(ids))
np.save(os.path.join(X, "vision_layers.npy"), np.ascontiguousarray(vis_blocks.astype(np.float32)))
np.save(os.path.join(X, "image_embd.npy"), np.ascontiguousarray(img_rows.astype(np.float32)))
np.save(os.path.join(X, "resid.npy"), np.ascontiguousarray(resid.astype(np.float32)))
np.save(os.path.join(X, "logits_last.npy"), np.ascontiguousarray(logits[-1].astype(np.float32)))

vpix = np.stack([normalize(pil_resize(fr, S, S)) for fr in frames])
vhs, _ = siglip(vpix)
vid_rows = pool_video(project(vhs))
assert vid_rows.shape[0] == NF * 9 + 1
vids, vresid, vlogits = run(PROMPT_V, "<video>", vid_rows)
np.save(os.path.join(X, "video_tokens.npy"), np.ascontiguousarray(vids))
np.save(os.path.join(X, "video_embd.npy"), np.ascontiguousarray(vid_rows.astype(np.float32)))
np.save(os.path.join(X, "video_resid.npy"), np.ascontiguousarray(vresid.astype(np.float32)))
np.save(os.path.join(X, "video_logits_last.npy"), np.ascontiguousarray(vlogits[-1].astype(np.float32)))
shutil.rmtree(tmp)
print(f"vocab {NV}; image: {len(ids)} rows ({img_rows.shape[0]} image rows, map {ph} x {pw}); "
      f"video: {len(vids)} rows ({vid_rows.shape[0]} video rows)")
