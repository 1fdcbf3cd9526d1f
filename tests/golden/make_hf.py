#!/usr/bin/python3
"""Write the golden GGUF pairs of ../shared/golden (llava-tiny, qwen2vl-tiny) as Hugging Face model
folders with the same weights (and the Qwen2.5-VL golden of tests/golden/qwen25vl-tiny), undoing what llama.cpp's converters do:

- LLaVA-1.5 (llava-hf layout, `LlavaForConditionalGeneration`, tensor names of transformers >= 4.52:
  model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*, lm_head), written as
  two shards with model.safetensors.index.json. Llama's Q/K rows are put back in HF's rotary order
  (the converter's permute, inverted), CLIP's fc1/fc2 come from the legacy mmproj's ffn_down/ffn_up,
  and the tower gets the block the converter drops (vision_feature_layer = -2) and a
  post_layernorm, both random: a loader that used them would give other numbers.
- Qwen2-VL (`Qwen2VLForConditionalGeneration`, the original names: model.*, visual.*; tied
  embeddings), one model.safetensors: the two Conv2D patch kernels stacked back into the Conv3D
  kernel, attn_q/k/v concatenated into qkv.
- tokenizer.json as HF writes it for each vocabulary: Llama-2's as SentencePiece-style BPE (byte
  fallback, Prepend/Replace normalizer, merges in the order of HF's SentencePieceExtractor: by the
  merged piece's score), Qwen2's as byte-level BPE (Split regex + ByteLevel, merges as pairs), with
  tokenizer_config.json, preprocessor_config.json and the chat templates.

The GGUF files are read by the small reader below (numpy only), not by idscope.
- Qwen2.5-VL (`Qwen2_5_VLForConditionalGeneration`): tests/golden/qwen25vl-tiny/mmproj.gguf with the
  Qwen2-VL text model, as that golden uses it: RMSNorms without biases, the gated MLP's gate/up/down,
  fullatt_block_indexes from n_wa_pattern.

Usage: make_hf.py [SHARED_GOLDEN_DIR] OUT_DIR
(writes OUT_DIR/llava-tiny, OUT_DIR/qwen2vl-tiny and OUT_DIR/qwen25vl-tiny)
"""
import json
import os
import struct
import sys

import numpy as np

# ---- GGUF (v3, little-endian) -------------------------------------------------------------------

SCALAR = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1", 10: "<u8", 11: "<i8",
          12: "<f8"}
TYPE_NP = {0: np.float32, 1: np.float16}


def read_gguf(path):
    with open(path, "rb") as f:
        b = f.read()
    pos = 0

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, b, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def rd_str():
        n = rd("Q")
        nonlocal pos
        s = b[pos:pos + n].decode("utf-8", "surrogatepass")
        pos += n
        return s

    def rd_val(t):
        nonlocal pos
        if t == 8:
            return rd_str()
        if t == 9:
            et, n = rd("I"), rd("Q")
            if et == 8:
                return [rd_str() for _ in range(n)]
            a = np.frombuffer(b, dtype=SCALAR[et], count=n, offset=pos)
            pos += a.nbytes
            return a
        v = np.frombuffer(b, dtype=SCALAR[t], count=1, offset=pos)[0]
        pos += v.nbytes
        return v.item()

    assert b[:4] == b"GGUF" and struct.unpack_from("<I", b, 4)[0] == 3
    pos = 8
    n_t, n_kv = rd("Q"), rd("Q")
    kv = {}
    for _ in range(n_kv):
        k = rd_str()
        kv[k] = rd_val(rd("I"))
    infos = []
    for _ in range(n_t):
        name = rd_str()
        nd = rd("I")
        ne = [rd("Q") for _ in range(nd)]
        infos.append((name, ne, rd("I"), rd("Q")))
    align = int(kv.get("general.alignment", 32))
    data0 = (pos + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        n = int(np.prod(ne))
        a = np.frombuffer(b, dtype=TYPE_NP[t], count=n, offset=data0 + off)
        tensors[name] = a.reshape(list(reversed(ne)))  # row-major, outermost first (HF order)
    return kv, tensors


# ---- safetensors ---------------------------------------------------------------------------------

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


# ---- tokenizers ------------------------------------------------------------------------------

def spm_tokenizer(kv):
    toks, scores, types = kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.scores"], kv["tokenizer.ggml.token_type"]
    vocab = {t: i for i, t in enumerate(toks)}
    merges = []  # transformers' SentencePieceExtractor: every split of a piece into two pieces
    for i, piece in enumerate(toks):
        if types[i] != 1:
            continue
        local = [(piece[:k], piece[k:], scores[i]) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        merges.extend(sorted(local, key=lambda x: (vocab[x[0]], vocab[x[1]])))
    merges = sorted(merges, key=lambda x: x[2], reverse=True)
    added = [{"id": i, "content": toks[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in range(len(toks)) if types[i] in (2, 3)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                     {"type": "ByteFallback"}, {"type": "Fuse"},
                                                     {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "vocab": vocab,
                  "merges": [a + " " + b for a, b, _ in merges]},
    }


QWEN2_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
            "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")


def bpe_tokenizer(kv):
    toks, types = kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.token_type"]
    vocab = {t: i for i, t in enumerate(toks) if types[i] == 1}
    added = [{"id": i, "content": toks[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in range(len(toks)) if types[i] == 3]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_RE}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [m.split(" ", 1) for m in kv["tokenizer.ggml.merges"]]},
    }


LLAVA_TEMPLATE = ("{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}"
                  "{% endif %}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
                  "{{ '<image>\n' }}{% endfor %}{% for content in message['content'] | selectattr('type', 'equalto', "
                  "'text') %}{{ content['text'] + ' '}}{% endfor %}{% endfor %}{% if add_generation_prompt %}"
                  "{{ 'ASSISTANT:' }}{% endif %}")
QWEN_TEMPLATE = ("{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
                 "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
                 "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
                 "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
                 "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
                 "{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
                 "<|im_start|>assistant\n{% endif %}")


# ---- LLaVA-1.5 ---------------------------------------------------------------------------------

def unpermute(w, n_head):
    """Inverse of llama.cpp's permute: GGUF row h*d + 2i + j holds HF row h*d + j*d/2 + i."""
    rows, cols = w.shape
    d = rows // n_head
    return w.reshape(n_head, d // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def llava(src, out, rng):
    kv, t = read_gguf(os.path.join(src, "text.gguf"))
    vkv, v = read_gguf(os.path.join(src, "mmproj.gguf"))
    nh, nkv, L = int(kv["llama.attention.head_count"]), int(kv["llama.attention.head_count_kv"]), int(kv["llama.block_count"])
    E, F = int(kv["llama.embedding_length"]), int(kv["llama.feed_forward_length"])
    lm = "model.language_model."
    w = {lm + "embed_tokens.weight": t["token_embd.weight"]}
    for l in range(L):
        p, b = f"{lm}layers.{l}.", f"blk.{l}."
        w[p + "input_layernorm.weight"] = t[b + "attn_norm.weight"]
        w[p + "self_attn.q_proj.weight"] = unpermute(t[b + "attn_q.weight"], nh)
        w[p + "self_attn.k_proj.weight"] = unpermute(t[b + "attn_k.weight"], nkv)
        w[p + "self_attn.v_proj.weight"] = t[b + "attn_v.weight"]
        w[p + "self_attn.o_proj.weight"] = t[b + "attn_output.weight"]
        w[p + "post_attention_layernorm.weight"] = t[b + "ffn_norm.weight"]
        w[p + "mlp.gate_proj.weight"] = t[b + "ffn_gate.weight"]
        w[p + "mlp.up_proj.weight"] = t[b + "ffn_up.weight"]
        w[p + "mlp.down_proj.weight"] = t[b + "ffn_down.weight"]
    w[lm + "norm.weight"] = t["output_norm.weight"]
    w["lm_head.weight"] = t["output.weight"]
    VE, VF, VL = int(vkv["clip.vision.embedding_length"]), int(vkv["clip.vision.feed_forward_length"]), int(vkv["clip.vision.block_count"])
    vt = "model.vision_tower.vision_model."
    vw = {vt + "embeddings.class_embedding": v["v.class_embd"],
          vt + "embeddings.patch_embedding.weight": v["v.patch_embd.weight"],
          vt + "embeddings.position_embedding.weight": v["v.position_embd.weight"],
          vt + "pre_layrnorm.weight": v["v.pre_ln.weight"], vt + "pre_layrnorm.bias": v["v.pre_ln.bias"]}
    names = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_out": "self_attn.out_proj", "ln1": "layer_norm1", "ln2": "layer_norm2",
             "ffn_down": "mlp.fc1", "ffn_up": "mlp.fc2"}  # the legacy file's fc1 is ffn_down
    for l in range(VL + 1):  # block VL is the one the converter drops: random, unused
        for g, h in names.items():
            for s in ("weight", "bias"):
                key = f"v.blk.{l}.{g}.{s}"
                if l < VL:
                    a = v[key]
                else:
                    shape = v[f"v.blk.0.{g}.{s}"].shape
                    a = rng.standard_normal(shape).astype(v[f"v.blk.0.{g}.{s}"].dtype)
                vw[f"{vt}encoder.layers.{l}.{h}.{s}"] = a
    vw[vt + "post_layernorm.weight"] = rng.standard_normal(VE).astype(np.float32)  # unused by LLaVA
    vw[vt + "post_layernorm.bias"] = rng.standard_normal(VE).astype(np.float32)
    mp = "model.multi_modal_projector."
    vw.update({mp + "linear_1.weight": v["mm.0.weight"], mp + "linear_1.bias": v["mm.0.bias"],
               mp + "linear_2.weight": v["mm.2.weight"], mp + "linear_2.bias": v["mm.2.bias"]})
    os.makedirs(out, exist_ok=True)
    shards = {"model-00001-of-00002.safetensors": w, "model-00002-of-00002.safetensors": vw}
    for name, ts in shards.items():
        write_safetensors(os.path.join(out, name), ts)
    write_json(os.path.join(out, "model.safetensors.index.json"), {
        "metadata": {"total_size": sum(a.nbytes for ts in shards.values() for a in ts.values())},
        "weight_map": {k: name for name, ts in shards.items() for k in ts}})
    isz, psz = int(vkv["clip.vision.image_size"]), int(vkv["clip.vision.patch_size"])
    write_json(os.path.join(out, "config.json"), {
        "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "image_token_index": 32000,
        "projector_hidden_act": "gelu", "vision_feature_layer": -2, "vision_feature_select_strategy": "default",
        "tie_word_embeddings": False,
        "text_config": {"model_type": "llama", "hidden_size": E, "intermediate_size": F, "num_hidden_layers": L,
                        "num_attention_heads": nh, "num_key_value_heads": nkv,
                        "rms_norm_eps": float(np.float32(kv["llama.attention.layer_norm_rms_epsilon"])),
                        "rope_theta": kv["llama.rope.freq_base"], "max_position_embeddings": int(kv["llama.context_length"]),
                        "vocab_size": int(t["token_embd.weight"].shape[0]), "torch_dtype": "float32"},
        "vision_config": {"model_type": "clip_vision_model", "hidden_size": VE, "intermediate_size": VF,
                          "num_hidden_layers": VL + 1, "num_attention_heads": int(vkv["clip.vision.attention.head_count"]),
                          "image_size": isz, "patch_size": psz, "projection_dim": int(vkv["clip.vision.projection_dim"]),
                          "layer_norm_eps": 1e-5, "hidden_act": "quick_gelu"}})
    write_json(os.path.join(out, "tokenizer.json"), spm_tokenizer(kv))
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": None, "chat_template": LLAVA_TEMPLATE, "tokenizer_class": "LlamaTokenizer"})
    write_json(os.path.join(out, "preprocessor_config.json"), {
        "image_processor_type": "CLIPImageProcessor", "crop_size": {"height": isz, "width": isz},
        "size": {"shortest_edge": isz}, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "resample": 3, "image_mean": [float(x) for x in vkv["clip.vision.image_mean"]],
        "image_std": [float(x) for x in vkv["clip.vision.image_std"]]})


# ---- Qwen2-VL ----------------------------------------------------------------------------------

def qwen2vl(src, out, mmproj=None):
    """Qwen2-VL, or Qwen2.5-VL when mmproj is a qwen2.5vl_merger file (the text model is the same)."""
    kv, t = read_gguf(os.path.join(src, "text.gguf"))
    vkv, v = read_gguf(mmproj or os.path.join(src, "mmproj.gguf"))
    q25 = vkv["clip.projector_type"] == "qwen2.5vl_merger"
    a = "qwen2vl."
    L, E = int(kv[a + "block_count"]), int(kv[a + "embedding_length"])
    w = {"model.embed_tokens.weight": t["token_embd.weight"]}
    for l in range(L):
        p, b = f"model.layers.{l}.", f"blk.{l}."
        for g, h in (("attn_norm.weight", "input_layernorm.weight"), ("attn_q.weight", "self_attn.q_proj.weight"),
                     ("attn_q.bias", "self_attn.q_proj.bias"), ("attn_k.weight", "self_attn.k_proj.weight"),
                     ("attn_k.bias", "self_attn.k_proj.bias"), ("attn_v.weight", "self_attn.v_proj.weight"),
                     ("attn_v.bias", "self_attn.v_proj.bias"), ("attn_output.weight", "self_attn.o_proj.weight"),
                     ("ffn_norm.weight", "post_attention_layernorm.weight"), ("ffn_gate.weight", "mlp.gate_proj.weight"),
                     ("ffn_up.weight", "mlp.up_proj.weight"), ("ffn_down.weight", "mlp.down_proj.weight")):
            w[p + h] = t[b + g]
    w["model.norm.weight"] = t["output_norm.weight"]
    VL, VE = int(vkv["clip.vision.block_count"]), int(vkv["clip.vision.embedding_length"])
    w["visual.patch_embed.proj.weight"] = np.stack([v["v.patch_embd.weight"], v["v.patch_embd.weight.1"]], axis=2)
    for l in range(VL):
        p, b = f"visual.blocks.{l}.", f"v.blk.{l}."
        for s in ("weight", "bias"):
            w[p + "attn.qkv." + s] = np.concatenate([v[b + "attn_q." + s], v[b + "attn_k." + s], v[b + "attn_v." + s]])
            names = (("attn_out", "attn.proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
                     ("ffn_down", "mlp.down_proj"), ("ln1", "norm1"), ("ln2", "norm2")) if q25 else \
                (("attn_out", "attn.proj"), ("ffn_up", "mlp.fc1"), ("ffn_down", "mlp.fc2"), ("ln1", "norm1"), ("ln2", "norm2"))
            for g, h in names:
                if f"{b}{g}.{s}" in v:  # Qwen2.5-VL's RMSNorms have no bias
                    w[f"{p}{h}.{s}"] = v[f"{b}{g}.{s}"]
    for s in ("weight", "bias"):
        if "v.post_ln." + s in v:
            w["visual.merger.ln_q." + s] = v["v.post_ln." + s]
        w["visual.merger.mlp.0." + s] = v["mm.0." + s]
        w["visual.merger.mlp.2." + s] = v["mm.2." + s]
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), w)
    sec = [int(x) for x in kv[a + "rope.dimension_sections"]][:3]
    heads, VF = int(vkv["clip.vision.attention.head_count"]), int(vkv["clip.vision.feed_forward_length"])
    if q25:
        wa = int(vkv["clip.vision.n_wa_pattern"])
        vision = {"depth": VL, "hidden_size": VE, "intermediate_size": VF, "num_heads": heads, "in_chans": 3,
                  "out_hidden_size": E, "patch_size": int(vkv["clip.vision.patch_size"]), "spatial_merge_size": 2,
                  "temporal_patch_size": 2, "window_size": 112, "hidden_act": "silu",
                  "fullatt_block_indexes": [l for l in range(VL) if (l + 1) % wa == 0]}
    else:
        vision = {"depth": VL, "embed_dim": VE, "mlp_ratio": VF // VE, "num_heads": heads, "in_chans": 3,
                  "hidden_size": E, "patch_size": int(vkv["clip.vision.patch_size"]), "spatial_merge_size": 2,
                  "temporal_patch_size": 2}
    write_json(os.path.join(out, "config.json"), {
        "architectures": ["Qwen2_5_VLForConditionalGeneration" if q25 else "Qwen2VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl" if q25 else "qwen2_vl", "hidden_size": E,
        "intermediate_size": int(kv[a + "feed_forward_length"]), "num_hidden_layers": L,
        "num_attention_heads": int(kv[a + "attention.head_count"]),
        "num_key_value_heads": int(kv[a + "attention.head_count_kv"]),
        "rms_norm_eps": float(np.float32(kv[a + "attention.layer_norm_rms_epsilon"])),
        "rope_theta": kv[a + "rope.freq_base"], "max_position_embeddings": int(kv[a + "context_length"]),
        "vocab_size": int(t["token_embd.weight"].shape[0]), "tie_word_embeddings": True,
        "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
        "image_token_id": 151655, "video_token_id": 151656, "rope_scaling": {"type": "mrope", "mrope_section": sec},
        "vision_config": vision})
    write_json(os.path.join(out, "tokenizer.json"), bpe_tokenizer(kv))
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "unk_token": None, "errors": "replace", "model_max_length": 32768, "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "chat_template": QWEN_TEMPLATE})
    write_json(os.path.join(out, "preprocessor_config.json"), {
        "image_processor_type": "Qwen2VLImageProcessor", "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14,
        "temporal_patch_size": 2, "merge_size": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [float(x) for x in vkv["clip.vision.image_mean"]],
        "image_std": [float(x) for x in vkv["clip.vision.image_std"]]})


def main():
    args = sys.argv[1:]
    golden = args[0] if len(args) == 2 else os.path.join(os.path.dirname(__file__), "../../../shared/golden")
    out = args[-1]
    llava(os.path.join(golden, "llava-tiny"), os.path.join(out, "llava-tiny"), np.random.default_rng(25))
    qwen2vl(os.path.join(golden, "qwen2vl-tiny"), os.path.join(out, "qwen2vl-tiny"))
    qwen2vl(os.path.join(golden, "qwen2vl-tiny"), os.path.join(out, "qwen25vl-tiny"),
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "qwen25vl-tiny", "mmproj.gguf"))


if __name__ == "__main__":
    main()
