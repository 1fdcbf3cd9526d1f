#!/usr/bin/python3
"""Write the golden GGUF pairs of Gemma 3, InternVL and Qwen3-VL (tests/golden/gemma3-tiny, internvl-tiny,
qwen3vl-tiny) as Hugging Face model folders with the same weights, undoing what llama.cpp's converters do
(make_hf.py does the same for LLaVA-1.5 and Qwen2-VL; its GGUF reader and writers are used here):

- gemma3-tiny (`Gemma3ForConditionalGeneration`, the names of the published checkpoints:
  language_model.model.*, vision_tower.vision_model.*, multi_modal_projector.*; no lm_head, tied):
  every `*norm.weight` (and the soft-embedding norm) stored as w = GGUF value - 1, HF's parameter
  (conversion/gemma.py adds the 1); the patch kernel stored F16 (the converter forces F32) and the input
  projection F32 (forced to F16): both exact in the other type, so a loader that forgot the forcing gives
  other tensor types, one that forgot the shift other numbers. tokenizer.json as HF writes Gemma's:
  SentencePiece-style BPE with byte fallback, spaces replaced by "▁" and no prefix space.
- internvl-tiny (`InternVLChatModel`, OpenGVLab's remote-code layout: vision_model.*, mlp1.*,
  language_model.model.*, llm_config): the fused attn.qkv rows, CLS (1, 1, E) and position (1, N + 1, E)
  tables, ls1/ls2; the tokenizer as that layout ships it, vocab.json + merges.txt +
  tokenizer_config.json's added_tokens_decoder (Qwen2Tokenizer), no tokenizer.json.
- internvl-hf (`InternVLForConditionalGeneration`, transformers' layout from
  convert_internvl_weights_to_hf.py: model.vision_tower.* with q/k/v_proj, lambda_1/2, layernorm_before/
  after; model.multi_modal_projector.{layer_norm,linear_1,linear_2}; model.language_model.*), two shards
  with model.safetensors.index.json, tokenizer.json.
- qwen3vl-tiny (`Qwen3VLForConditionalGeneration`, model.language_model.*, model.visual.*): the two
  Conv2D patch kernels stacked back into the Conv3D kernel, DeepStack mergers numbered by their place in
  deepstack_visual_indexes (the GGUF numbers them by tower block). Its text model is the joined
  build/golden/qwen3vl-tiny/text.gguf (`make`); without it the folder is not written.

Usage: make_hf_families.py OUT_DIR   (writes OUT_DIR/gemma3-tiny, internvl-tiny, internvl-hf, qwen3vl-tiny)
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_hf import QWEN_TEMPLATE, bpe_tokenizer, read_gguf, spm_tokenizer, write_json, write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def f32(x):
    return float(np.float32(x))


def minus1(a):  # HF's Gemma RMSNorm weight w from the converter's stored w + 1 (exact: values near 1)
    return (a.astype(np.float32) - np.float32(1.0)).astype(np.float32)


# ---- Gemma 3 ---------------------------------------------------------------------------------------

def gemma3(src, out):
    kv, t = read_gguf(os.path.join(src, "text.gguf"))
    vkv, v = read_gguf(os.path.join(src, "mmproj.gguf"))
    a = "gemma3."
    L, E, NV = int(kv[a + "block_count"]), int(kv[a + "embedding_length"]), int(t["token_embd.weight"].shape[0])
    lm = "language_model.model."
    w = {lm + "embed_tokens.weight": t["token_embd.weight"], lm + "norm.weight": minus1(t["output_norm.weight"])}
    names = (("attn_norm", "input_layernorm"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
             ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"), ("attn_q_norm", "self_attn.q_norm"),
             ("attn_k_norm", "self_attn.k_norm"), ("post_attention_norm", "post_attention_layernorm"),
             ("ffn_norm", "pre_feedforward_layernorm"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
             ("ffn_down", "mlp.down_proj"), ("post_ffw_norm", "post_feedforward_layernorm"))
    for l in range(L):
        for g, h in names:
            x = t[f"blk.{l}.{g}.weight"]
            w[f"{lm}layers.{l}.{h}.weight"] = minus1(x) if g.endswith("norm") else x
    vt = "vision_tower.vision_model."
    VL = int(vkv["clip.vision.block_count"])
    w[vt + "embeddings.patch_embedding.weight"] = v["v.patch_embd.weight"].astype(np.float16)  # exact: f16 values
    w[vt + "embeddings.patch_embedding.bias"] = v["v.patch_embd.bias"]
    w[vt + "embeddings.position_embedding.weight"] = v["v.position_embd.weight"]
    for l in range(VL):
        for g, h in (("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
                     ("attn_out", "self_attn.out_proj"), ("ln1", "layer_norm1"), ("ln2", "layer_norm2"),
                     ("ffn_up", "mlp.fc1"), ("ffn_down", "mlp.fc2")):
            for s in ("weight", "bias"):
                w[f"{vt}encoder.layers.{l}.{h}.{s}"] = v[f"v.blk.{l}.{g}.{s}"]
    w[vt + "post_layernorm.weight"] = v["v.post_ln.weight"]
    w[vt + "post_layernorm.bias"] = v["v.post_ln.bias"]
    w["multi_modal_projector.mm_soft_emb_norm.weight"] = minus1(v["mm.soft_emb_norm.weight"])
    w["multi_modal_projector.mm_input_projection_weight"] = v["mm.input_projection.weight"].astype(np.float32)
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), w)
    isz, psz = int(vkv["clip.vision.image_size"]), int(vkv["clip.vision.patch_size"])
    mm_tokens = ((isz // psz) // 4) ** 2  # the converter's default pooling: 4 x 4
    write_json(os.path.join(out, "config.json"), {
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "mm_tokens_per_image": mm_tokens,
        "boi_token_index": 6, "eoi_token_index": 7, "image_token_index": 8, "initializer_range": 0.02,
        "text_config": {
            "model_type": "gemma3_text", "hidden_size": E, "intermediate_size": int(kv[a + "feed_forward_length"]),
            "num_hidden_layers": L, "num_attention_heads": int(kv[a + "attention.head_count"]),
            "num_key_value_heads": int(kv[a + "attention.head_count_kv"]), "head_dim": int(kv[a + "attention.key_length"]),
            "rms_norm_eps": f32(kv[a + "attention.layer_norm_rms_epsilon"]), "rope_theta": kv[a + "rope.freq_base"],
            "rope_local_base_freq": kv[a + "rope.freq_base_swa"],
            "rope_scaling": {"factor": kv[a + "rope.scaling.factor"], "rope_type": "linear"},
            "sliding_window": int(kv[a + "attention.sliding_window"]), "sliding_window_pattern": 6,
            "query_pre_attn_scalar": int(kv[a + "attention.key_length"]),
            "final_logit_softcapping": kv[a + "final_logit_softcapping"], "attn_logit_softcapping": None,
            "max_position_embeddings": int(kv[a + "context_length"]), "vocab_size": NV, "hidden_activation":
            "gelu_pytorch_tanh"},
        "vision_config": {
            "model_type": "siglip_vision_model", "hidden_size": int(vkv["clip.vision.embedding_length"]),
            "intermediate_size": int(vkv["clip.vision.feed_forward_length"]), "num_hidden_layers": VL,
            "num_attention_heads": int(vkv["clip.vision.attention.head_count"]), "image_size": isz, "patch_size": psz,
            "layer_norm_eps": f32(vkv["clip.vision.attention.layer_norm_epsilon"]), "vision_use_head": False}})
    tj = spm_tokenizer(kv)
    tj["normalizer"] = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}  # no prefix space
    tj["pre_tokenizer"] = {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False}
    tj["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                                                     {"Sequence": {"id": "A", "type_id": 0}}],
                            "pair": [], "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}}
    tj["model"]["unk_token"] = "<unk>"
    write_json(os.path.join(out, "tokenizer.json"), tj)
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>",
        "pad_token": "<pad>", "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
        "image_token": "<image_soft_token>", "tokenizer_class": "GemmaTokenizer", "spaces_between_special_tokens": False})
    write_json(os.path.join(out, "preprocessor_config.json"), {
        "image_processor_type": "Gemma3ImageProcessor", "do_resize": True, "size": {"height": isz, "width": isz},
        "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [float(x) for x in vkv["clip.vision.image_mean"]],
        "image_std": [float(x) for x in vkv["clip.vision.image_std"]], "image_seq_length": mm_tokens,
        "do_pan_and_scan": False, "processor_class": "Gemma3Processor"})


# ---- InternVL ----------------------------------------------------------------------------------------

def qwen2_text(t, L, lm):
    w = {lm + "embed_tokens.weight": t["token_embd.weight"], lm + "norm.weight": t["output_norm.weight"]}
    for l in range(L):
        for g, h in (("attn_norm.weight", "input_layernorm.weight"), ("attn_q.weight", "self_attn.q_proj.weight"),
                     ("attn_q.bias", "self_attn.q_proj.bias"), ("attn_k.weight", "self_attn.k_proj.weight"),
                     ("attn_k.bias", "self_attn.k_proj.bias"), ("attn_v.weight", "self_attn.v_proj.weight"),
                     ("attn_v.bias", "self_attn.v_proj.bias"), ("attn_output.weight", "self_attn.o_proj.weight"),
                     ("ffn_norm.weight", "post_attention_layernorm.weight"), ("ffn_gate.weight", "mlp.gate_proj.weight"),
                     ("ffn_up.weight", "mlp.up_proj.weight"), ("ffn_down.weight", "mlp.down_proj.weight")):
            w[f"{lm}layers.{l}.{h}"] = t[f"blk.{l}.{g}"]
    return w


def internvl(src, out, hf_layout):
    kv, t = read_gguf(os.path.join(src, "text.gguf"))
    vkv, v = read_gguf(os.path.join(src, "mmproj.gguf"))
    a = "qwen2."
    L, E = int(kv[a + "block_count"]), int(kv[a + "embedding_length"])
    VL, VE = int(vkv["clip.vision.block_count"]), int(vkv["clip.vision.embedding_length"])
    w = qwen2_text(t, L, "model.language_model." if hf_layout else "language_model.model.")
    if hf_layout:
        vt, emb, lay = "model.vision_tower.", "embeddings.", "encoder.layer."
        names = {"cls": emb + "cls_token", "patch": emb + "patch_embeddings.projection", "pos": emb + "position_embeddings",
                 "o": "attention.projection_layer", "ln1": "layernorm_before", "ln2": "layernorm_after", "ls1": "lambda_1",
                 "ls2": "lambda_2"}
        mm = ("model.multi_modal_projector.layer_norm", "model.multi_modal_projector.linear_1",
              "model.multi_modal_projector.linear_2")
    else:
        vt, emb, lay = "vision_model.", "embeddings.", "encoder.layers."
        names = {"cls": emb + "class_embedding", "patch": emb + "patch_embedding", "pos": emb + "position_embedding",
                 "o": "attn.proj", "ln1": "norm1", "ln2": "norm2", "ls1": "ls1", "ls2": "ls2"}
        mm = ("mlp1.0", "mlp1.1", "mlp1.3")
    w[vt + names["cls"]] = v["v.class_embd"].reshape(1, 1, VE)
    w[vt + names["patch"] + ".weight"] = v["v.patch_embd.weight"]
    w[vt + names["patch"] + ".bias"] = v["v.patch_embd.bias"]
    w[vt + names["pos"]] = v["v.position_embd.weight"].reshape(1, -1, VE)
    for l in range(VL):
        p, b = f"{vt}{lay}{l}.", f"v.blk.{l}."
        for s in ("weight", "bias"):
            if hf_layout:
                for g in ("q", "k", "v"):
                    w[f"{p}attention.{g}_proj.{s}"] = v[f"{b}attn_{g}.{s}"]
            else:
                w[f"{p}attn.qkv.{s}"] = np.concatenate([v[f"{b}attn_{g}.{s}"] for g in ("q", "k", "v")])
            for g, h in (("attn_out", names["o"]), ("ln1", names["ln1"]), ("ln2", names["ln2"]), ("ffn_up", "mlp.fc1"),
                         ("ffn_down", "mlp.fc2")):
                w[f"{p}{h}.{s}"] = v[f"{b}{g}.{s}"]
        w[p + names["ls1"]] = v[b + "ls1.weight"]
        w[p + names["ls2"]] = v[b + "ls2.weight"]
    for k, h in zip((0, 1, 3), mm):
        for s in ("weight", "bias"):
            w[f"{h}.{s}"] = v[f"mm.model.mlp.{k}.{s}"]
    os.makedirs(out, exist_ok=True)
    if hf_layout:  # two shards: the language model, then the rest
        shards = [{k: x for k, x in w.items() if k.startswith("model.language_model.")},
                  {k: x for k, x in w.items() if not k.startswith("model.language_model.")}]
        idx = {}
        for i, s in enumerate(shards):
            fn = f"model-0000{i + 1}-of-00002.safetensors"
            write_safetensors(os.path.join(out, fn), s)
            idx.update({k: fn for k in s})
        write_json(os.path.join(out, "model.safetensors.index.json"), {"metadata": {}, "weight_map": idx})
    else:
        write_safetensors(os.path.join(out, "model.safetensors"), w)
    isz, psz = int(vkv["clip.vision.image_size"]), int(vkv["clip.vision.patch_size"])
    toks = kv["tokenizer.ggml.tokens"]
    text = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": E,
            "intermediate_size": int(kv[a + "feed_forward_length"]), "num_hidden_layers": L,
            "num_attention_heads": int(kv[a + "attention.head_count"]),
            "num_key_value_heads": int(kv[a + "attention.head_count_kv"]),
            "rms_norm_eps": f32(kv[a + "attention.layer_norm_rms_epsilon"]), "rope_theta": kv[a + "rope.freq_base"],
            "max_position_embeddings": int(kv[a + "context_length"]), "vocab_size": len(toks),
            "tie_word_embeddings": True, "bos_token_id": int(kv["tokenizer.ggml.bos_token_id"]),
            "eos_token_id": int(kv["tokenizer.ggml.eos_token_id"])}
    vision = {"hidden_size": VE, "intermediate_size": int(vkv["clip.vision.feed_forward_length"]),
              "num_hidden_layers": VL, "num_attention_heads": int(vkv["clip.vision.attention.head_count"]),
              "layer_norm_eps": f32(vkv["clip.vision.attention.layer_norm_epsilon"]), "hidden_act": "gelu",
              "norm_type": "layer_norm"}
    ids = {"bos_token_id": int(kv["tokenizer.ggml.bos_token_id"]), "eos_token_id": int(kv["tokenizer.ggml.eos_token_id"])}
    if hf_layout:
        vision.update({"model_type": "internvl_vision", "image_size": [isz, isz], "patch_size": [psz, psz],
                       "attention_bias": True, "use_qk_norm": False, "layer_scale_init_value": 0.1})
        cfg = {"architectures": ["InternVLForConditionalGeneration"], "model_type": "internvl", "downsample_ratio": 0.5,
               "vision_feature_layer": -1, "vision_feature_select_strategy": "default", "projector_hidden_act": "gelu",
               "image_token_id": toks.index("<IMG_CONTEXT>"), "text_config": text, "vision_config": vision, **ids}
    else:
        vision.update({"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", "image_size": isz,
                       "patch_size": psz, "qkv_bias": True, "qk_normalization": False, "use_flash_attn": False})
        cfg = {"architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "downsample_ratio": 0.5,
               "dynamic_image_size": True, "force_image_size": isz, "min_dynamic_patch": 1, "max_dynamic_patch": 12,
               "ps_version": "v2", "select_layer": -1, "template": "internvl2_5", "use_thumbnail": True,
               "llm_config": text, "vision_config": vision, **ids}
    write_json(os.path.join(out, "config.json"), cfg)
    tc = {"add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
          "unk_token": None, "errors": "replace", "model_max_length": 8192, "split_special_tokens": False,
          "tokenizer_class": "Qwen2Tokenizer", "chat_template": QWEN_TEMPLATE}
    types = kv["tokenizer.ggml.token_type"]
    if hf_layout:
        write_json(os.path.join(out, "tokenizer.json"), bpe_tokenizer(kv))
    else:  # the slow tokenizer's files only
        write_json(os.path.join(out, "vocab.json"), {x: i for i, x in enumerate(toks) if types[i] == 1})
        with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n" + "\n".join(kv["tokenizer.ggml.merges"]) + "\n")
        tc["added_tokens_decoder"] = {str(i): {"content": toks[i], "lstrip": False, "normalized": False, "rstrip": False,
                                               "single_word": False, "special": True}
                                      for i in range(len(toks)) if types[i] == 3}
    write_json(os.path.join(out, "tokenizer_config.json"), tc)
    pre = {"image_mean": [float(x) for x in vkv["clip.vision.image_mean"]],
           "image_std": [float(x) for x in vkv["clip.vision.image_std"]], "do_normalize": True, "do_rescale": True,
           "rescale_factor": 1 / 255, "resample": 3}
    if hf_layout:
        pre.update({"image_processor_type": "GotOcr2ImageProcessorFast", "crop_to_patches": True, "min_patches": 1,
                    "max_patches": 12, "size": {"height": isz, "width": isz}})
    else:
        pre.update({"crop_size": isz, "do_center_crop": True, "size": isz})
    write_json(os.path.join(out, "preprocessor_config.json"), pre)


# ---- Qwen3-VL ----------------------------------------------------------------------------------------

def qwen3vl(text_gguf, mmproj, out):
    kv, t = read_gguf(text_gguf)
    vkv, v = read_gguf(mmproj)
    a = "qwen3vl."
    L, E = int(kv[a + "block_count"]), int(kv[a + "embedding_length"])
    lm = "model.language_model."
    w = {lm + "embed_tokens.weight": t["token_embd.weight"], lm + "norm.weight": t["output_norm.weight"]}
    for l in range(L):
        for g, h in (("attn_norm", "input_layernorm"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
                     ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"), ("attn_q_norm", "self_attn.q_norm"),
                     ("attn_k_norm", "self_attn.k_norm"), ("ffn_norm", "post_attention_layernorm"),
                     ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"), ("ffn_down", "mlp.down_proj")):
            w[f"{lm}layers.{l}.{h}.weight"] = t[f"blk.{l}.{g}.weight"]
    vp = "model.visual."
    VL, VE = int(vkv["clip.vision.block_count"]), int(vkv["clip.vision.embedding_length"])
    w[vp + "patch_embed.proj.weight"] = np.stack([v["v.patch_embd.weight"], v["v.patch_embd.weight.1"]], axis=2)
    w[vp + "patch_embed.proj.bias"] = v["v.patch_embd.bias"]
    w[vp + "pos_embed.weight"] = v["v.position_embd.weight"]
    for l in range(VL):
        for g, h in (("attn_qkv", "attn.qkv"), ("attn_out", "attn.proj"), ("ffn_up", "mlp.linear_fc1"),
                     ("ffn_down", "mlp.linear_fc2"), ("ln1", "norm1"), ("ln2", "norm2")):
            for s in ("weight", "bias"):
                w[f"{vp}blocks.{l}.{h}.{s}"] = v[f"v.blk.{l}.{g}.{s}"]
    ds = [l for l, f in enumerate(vkv["clip.vision.is_deepstack_layers"]) if f]
    for s in ("weight", "bias"):
        w[f"{vp}merger.norm.{s}"] = v[f"v.post_ln.{s}"]
        w[f"{vp}merger.linear_fc1.{s}"] = v[f"mm.0.{s}"]
        w[f"{vp}merger.linear_fc2.{s}"] = v[f"mm.2.{s}"]
        for k, l in enumerate(ds):
            for g, h in (("norm", "norm"), ("fc1", "linear_fc1"), ("fc2", "linear_fc2")):
                w[f"{vp}deepstack_merger_list.{k}.{h}.{s}"] = v[f"v.deepstack.{l}.{g}.{s}"]
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), w)
    psz, npos = int(vkv["clip.vision.patch_size"]), int(v["v.position_embd.weight"].shape[0])
    write_json(os.path.join(out, "config.json"), {
        "architectures": ["Qwen3VLForConditionalGeneration"], "model_type": "qwen3_vl", "image_token_id": 151655,
        "video_token_id": 151656, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
        "tie_word_embeddings": True, "bos_token_id": 151643, "eos_token_id": 151645,
        "text_config": {
            "model_type": "qwen3_vl_text", "hidden_size": E, "intermediate_size": int(kv[a + "feed_forward_length"]),
            "num_hidden_layers": L, "num_attention_heads": int(kv[a + "attention.head_count"]),
            "num_key_value_heads": int(kv[a + "attention.head_count_kv"]), "head_dim": int(kv[a + "attention.key_length"]),
            "rms_norm_eps": f32(kv[a + "attention.layer_norm_rms_epsilon"]), "rope_theta": kv[a + "rope.freq_base"],
            "max_position_embeddings": int(kv[a + "context_length"]), "vocab_size": int(t["token_embd.weight"].shape[0]),
            "rope_scaling": {"mrope_interleaved": True, "mrope_section": [int(x) for x in kv[a + "rope.dimension_sections"]][:3],
                             "rope_type": "default"},
            "tie_word_embeddings": True, "attention_bias": False},
        "vision_config": {
            "model_type": "qwen3_vl", "depth": VL, "hidden_size": VE,
            "intermediate_size": int(vkv["clip.vision.feed_forward_length"]),
            "num_heads": int(vkv["clip.vision.attention.head_count"]), "in_channels": 3, "patch_size": psz,
            "spatial_merge_size": int(vkv["clip.vision.spatial_merge_size"]), "temporal_patch_size": 2,
            "out_hidden_size": E, "num_position_embeddings": npos, "deepstack_visual_indexes": ds,
            "hidden_act": "gelu_pytorch_tanh"}})
    write_json(os.path.join(out, "tokenizer.json"), bpe_tokenizer(kv))
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "unk_token": None, "errors": "replace", "model_max_length": 262144, "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "chat_template": QWEN_TEMPLATE})
    write_json(os.path.join(out, "preprocessor_config.json"), {
        "image_processor_type": "Qwen2VLImageProcessorFast", "size": {"shortest_edge": 65536, "longest_edge": 16777216},
        "patch_size": psz, "temporal_patch_size": 2, "merge_size": 2, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": [float(x) for x in vkv["clip.vision.image_mean"]],
        "image_std": [float(x) for x in vkv["clip.vision.image_std"]]})


def main():
    out = sys.argv[1]
    gemma3(os.path.join(HERE, "gemma3-tiny"), os.path.join(out, "gemma3-tiny"))
    internvl(os.path.join(HERE, "internvl-tiny"), os.path.join(out, "internvl-tiny"), False)
    internvl(os.path.join(HERE, "internvl-tiny"), os.path.join(out, "internvl-hf"), True)
    q3 = os.path.join(HERE, "../../build/golden/qwen3vl-tiny/text.gguf")
    if os.path.exists(q3):
        qwen3vl(q3, os.path.join(HERE, "qwen3vl-tiny", "mmproj.gguf"), os.path.join(out, "qwen3vl-tiny"))
    else:
        print("qwen3vl-tiny not written: no build/golden/qwen3vl-tiny/text.gguf (make)")


if __name__ == "__main__":
    main()
