"""idscope from Python: vision-language models from GGUF files, their activations and edits.

    import idscope
    m = idscope.load()                                   # the bundled model (or load(TEXT, MMPROJ))
    logits, cache = m.run_with_cache("USER: <image>\\nWhere is the circle? ASSISTANT:",
                                     images=["scene.png"])
    cache["blocks.0.hook_resid_pre"]    # [n_rows, n_embd]: the stream entering block 0
    cache["blocks.3.hook_resid_post"]   # the stream after block 3
    out = m.run_with_hooks(PROMPT, images=["scene.png"],
                           edits=[idscope.add("blocks.2.hook_resid_post", vec, rows="word:circle")])

The work is done by libidscope (C) through ctypes; NumPy is the only dependency. Hook names follow
TransformerLens: blocks.{l}.hook_resid_pre is idscope's residual layer l (the stream entering
block l; layer 0 = the embeddings), blocks.{l}.hook_resid_post its layer l + 1,
blocks.{l}.hook_attn_out / hook_mlp_out the outputs of block l's attention and MLP (before they are
added to the stream), blocks.{l}.attn.hook_pattern its attention probabilities [n_head, rows, keys], and for Qwen3-VL
blocks.{l}.hook_deepstack the DeepStack rows added to the stream after block l (so that
hook_resid_post is the stream after them), and for Llama-3.2-Vision (mllama) at its cross-attention
layers blocks.{l}.hook_xattn_out (the cross-attention output before its gate) and
blocks.{l}.hook_xattn_gate (per row: tanh of the attention gate, tanh of the MLP gate times the row's
mask; [rows, 2]); there hook_attn_out / hook_mlp_out are the gated outputs.
Rows are chosen as in the CLI: "all", "last", "text", "image", "image:K", "word:WORD[:N]" (the N-th
occurrence of the word's token after the last image row), an index, a list of indices or a range.
Errors of the library are raised as idscope.Error with its message.
"""
import ctypes
import json
import os
import re
import struct
import threading

import numpy as np

from . import _lib
from ._lib import STATUS_NAMES

__all__ = ["Error", "Model", "Run", "ActivationCache", "Edit", "load", "add", "replace", "scale",
           "control_vector", "bundled_model", "load_capture", "library_path", "version",
           "Result", "Stimulus", "run", "extract_ids", "swap", "steer_belief", "steer_grid", "depth", "deviation", "mask",
           "compare", "temporal_extract", "temporal_swap", "temporal_steer", "evaluate", "stimulus", "stimuli"]

SITES = ("resid", "attn_out", "mlp_out", "attn_probs", "deepstack", "xattn_out", "xattn_gate")
_RESID, _ATTN_OUT, _MLP_OUT, _ATTN_PROBS, _DEEPSTACK, _XATTN_OUT, _XATTN_GATE = range(7)
_CAPTURE, _ADD, _REPLACE, _SCALE = range(4)
_LOGITS = {None: 0, "none": 0, "last": 1, "all": 2}
_PRECISION = {"f32": 0, "bf16": 1, "int8": 2}


class Error(Exception):
    """A failure reported by the library: str(e) is its message (naming the file, key or value at
    fault); e.status is the kind ("io", "format", "not_found", "type", "range", "unsupported",
    "arg", "nomem")."""

    def __init__(self, message, code=0):
        super().__init__(message)
        self.code = code
        self.status = STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else str(code)


def _check(status):
    if status != 0:
        msg = _lib.lib().ids_ffi_error()
        raise Error(msg.decode("utf-8", "replace") if msg else "error %d" % status, status)


def _take_str(ptr):
    """A string the library allocated: decoded and released."""
    try:
        return ctypes.string_at(ptr.value).decode("utf-8", "replace") if ptr.value else ""
    finally:
        _lib.lib().ids_ffi_free(ptr)


def _fspath(p):
    return os.fsencode(os.fspath(p))


def version():
    """The library's version and the source it was built from, e.g. "0.1.0 (git 6567ebc)"."""
    L = _lib.lib()
    return "%s (%s)" % (L.ids_version().decode(), L.ids_build_source().decode())


def library_path():
    """The shared library in use."""
    return _lib.path()


# ---- the bundled model ----------------------------------------------------------------------


def _model_dirs():
    """Folders that may hold tiny-llava/, in the order the CLI looks: $IDSCOPE_MODELS, the
    checkout's models/, an install's share/idscope/models (beside the library or this package),
    ./models."""
    dirs = []
    env = os.environ.get("IDSCOPE_MODELS")
    if env:
        dirs.append(env)
    here = os.path.dirname(os.path.abspath(__file__))
    dirs.append(os.path.join(here, "..", "..", "models"))
    try:
        libdir = os.path.dirname(os.path.abspath(_lib.path())) if os.sep in _lib.path() else None
    except ImportError:
        libdir = None
    if libdir:
        dirs.append(os.path.join(libdir, "..", "..", "models"))
        dirs.append(os.path.join(libdir, "..", "share", "idscope", "models"))
    dirs.append(os.path.join(here, "..", "..", "..", "..", "share", "idscope", "models"))
    dirs.append("models")
    return [os.path.normpath(d) for d in dirs]


def bundled_model():
    """(text.gguf, mmproj.gguf) of the bundled model, found as the CLI finds it."""
    tried = []
    for d in _model_dirs():
        t = os.path.join(d, "tiny-llava", "text.gguf")
        mm = os.path.join(d, "tiny-llava", "mmproj.gguf")
        if os.path.isfile(t) and os.path.isfile(mm):
            return os.path.abspath(t), os.path.abspath(mm)
        tried.append(t)
    raise Error("the bundled model is not in any of: " + ", ".join(tried) + " (set IDSCOPE_MODELS)", 1)


def load(text=None, mmproj=None):
    """Load a VLM from its text GGUF and mmproj GGUF, or from a Hugging Face model folder given alone
    (llava, qwen2_vl, qwen2_5_vl, gemma3, qwen3_vl, internvl_chat, internvl, llava_onevision: config.json, safetensors,
    tokenizer files); with no arguments, the
    bundled model."""
    if text is None and mmproj is None:
        text, mmproj = bundled_model()
    elif text is None or (mmproj is None and not os.path.isdir(text)):
        raise ValueError("give both the text GGUF and the mmproj GGUF, a Hugging Face model folder, or neither "
                         "(the bundled model)")
    return Model(text, mmproj)


# ---- hook names and edits --------------------------------------------------------------------

_NAME_RE = re.compile(r"^blocks\.(\d+)\.(hook_resid_pre|hook_resid_post|hook_attn_out|hook_mlp_out|"
                      r"attn\.hook_pattern|hook_pattern|hook_deepstack|hook_xattn_out|hook_xattn_gate)$")


def _parse_name(name, n_layer):
    """A hook name (TransformerLens style, or (site, layer) in idscope's numbering) -> (site, layer)."""
    if isinstance(name, tuple) and len(name) == 2 and name[0] in SITES:
        site, layer = SITES.index(name[0]), int(name[1])
        hi = n_layer if site == _RESID else n_layer - 1
        if not 0 <= layer <= hi:
            raise ValueError("hook %r: layer %d is outside 0..%d" % (name, layer, hi))
        return site, layer
    m = _NAME_RE.match(name) if isinstance(name, str) else None
    if not m:
        raise ValueError("unknown hook name %r (blocks.L.hook_resid_pre, hook_resid_post, hook_attn_out, "
                         "hook_mlp_out, attn.hook_pattern, hook_deepstack (Qwen3-VL), hook_xattn_out, hook_xattn_gate "
                         "(mllama), or (site, layer) with site one "
                         "of %s)" % (name, SITES))
    b, kind = int(m.group(1)), m.group(2)
    if b >= n_layer:
        raise ValueError("hook %r: block %d is outside 0..%d (the model has %d blocks)" % (name, b, n_layer - 1, n_layer))
    return {"hook_resid_pre": (_RESID, b), "hook_resid_post": (_RESID, b + 1), "hook_attn_out": (_ATTN_OUT, b),
            "hook_mlp_out": (_MLP_OUT, b), "attn.hook_pattern": (_ATTN_PROBS, b),
            "hook_pattern": (_ATTN_PROBS, b), "hook_deepstack": (_DEEPSTACK, b), "hook_xattn_out": (_XATTN_OUT, b),
            "hook_xattn_gate": (_XATTN_GATE, b)}[kind]


def _all_names(n_layer, xattn=()):
    names = []
    for b in range(n_layer):
        names += ["blocks.%d.hook_resid_pre" % b, "blocks.%d.hook_attn_out" % b, "blocks.%d.hook_mlp_out" % b,
                  "blocks.%d.attn.hook_pattern" % b, "blocks.%d.hook_resid_post" % b]
        if b in xattn:  # mllama's cross-attention layers
            names += ["blocks.%d.hook_xattn_out" % b, "blocks.%d.hook_xattn_gate" % b]
    return names


class Edit:
    """One intervention: made by idscope.add, idscope.replace or idscope.scale."""

    __slots__ = ("name", "action", "vec", "rows", "factor")

    def __init__(self, name, action, vec, rows, factor):
        self.name, self.action, self.vec, self.rows, self.factor = name, action, vec, rows, factor

    def __repr__(self):
        kind = {_ADD: "add", _REPLACE: "replace", _SCALE: "scale"}[self.action]
        return "idscope.%s(%r, rows=%r%s)" % (kind, self.name, self.rows,
                                            ", factor=%g" % self.factor if self.action == _SCALE else "")


def _vector(vec, what):
    a = np.asarray(vec, dtype=np.float32)
    if a.ndim not in (1, 2) or a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError("%s: a vector [width] or rows [n_rows, width] of finite numbers is needed, got shape %s"
                         % (what, a.shape))
    return a


def add(name, vec, rows="all", scale=1.0):
    """Add scale * vec to the rows chosen at a hook: vec [width] (every row) or [n_rows, width]."""
    return Edit(name, _ADD, _vector(vec, "add %s" % (name,)) * np.float32(scale), rows, 1.0)


def replace(name, vec, rows="all"):
    """Replace the rows chosen at a hook by vec: [width] (the same on every row) or [n_rows, width]."""
    return Edit(name, _REPLACE, _vector(vec, "replace %s" % (name,)), rows, 1.0)


def scale(name, factor, rows="all"):
    """Multiply the rows chosen at a hook by factor (attention probabilities too)."""
    return Edit(name, _SCALE, None, rows, float(factor))


def control_vector(path, scale=1.0):
    """A llama.cpp control vector (GGUF) as edits: each direction.K added, times scale, at every row
    of residual layer K + 1 (blocks.K.hook_resid_post), as llama.cpp's --control-vector adds it after
    block K. Directions past a model's blocks raise an error when run (llama.cpp ignores them)."""
    L = _lib.lib()
    n, e = ctypes.c_int(), ctypes.c_int()
    layers = ctypes.POINTER(ctypes.c_int)()
    dirs = ctypes.POINTER(ctypes.c_float)()
    _check(L.ids_ffi_cvec_read(_fspath(path), ctypes.byref(n), ctypes.byref(e), ctypes.byref(layers), ctypes.byref(dirs)))
    try:
        lay = np.ctypeslib.as_array(layers, (n.value,)).copy()
        d = np.ctypeslib.as_array(dirs, (n.value, e.value)).copy()
    finally:
        L.ids_ffi_free(layers)
        L.ids_ffi_free(dirs)
    return [add(("resid", int(l)), d[i], rows="all", scale=scale) for i, l in enumerate(lay)]


# ---- the cache -------------------------------------------------------------------------------


class ActivationCache(dict):
    """Activations by hook name (see the module's notes), plus the facts of every row: tokens
    (int32, -1 on image rows), str_tokens (each token as it reads; "" on image rows), roles
    ("text" or "image"), row_image (the image block of a row, -1 for text), row_cell ([row, col]
    of its patch or merged cell, -1 for text), row_frame (the temporal patch of a video or the
    InternVL tile of an image, thumbnail last; -1 for text), positions (rotary t, h, w), and rows (the captured
    row indices). Every key is also an attribute. "blocks.L.hook_pattern" is accepted for
    "blocks.L.attn.hook_pattern"."""

    @staticmethod
    def _canon(key):
        if isinstance(key, str) and key.endswith(".hook_pattern") and not key.endswith(".attn.hook_pattern"):
            return key[: -len("hook_pattern")] + "attn.hook_pattern"
        return key

    def __getitem__(self, key):
        return dict.__getitem__(self, self._canon(key))

    def __contains__(self, key):
        return dict.__contains__(self, self._canon(key))

    def get(self, key, default=None):
        return dict.get(self, self._canon(key), default)

    def __getattr__(self, key):
        try:
            return dict.__getitem__(self, key)
        except KeyError:
            raise AttributeError(key) from None


def _row_facts(rows, tok_text):
    """Cache entries describing the rows ([n, 9] from ids_ffi_run_rows)."""
    tokens = rows[:, 0].copy()
    return {
        "tokens": tokens,
        "str_tokens": np.array([tok_text(int(t)) if t >= 0 else "" for t in tokens], dtype=object),
        "roles": np.array(["image" if k == 1 else "text" for k in rows[:, 1]], dtype=object),
        "row_image": rows[:, 2].copy(),
        "row_cell": rows[:, 3:5].copy(),
        "row_frame": rows[:, 5].copy(),
        "positions": rows[:, 6:9].copy(),
    }


def _fptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) if a is not None else None


def _iptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)) if a is not None else None


# ---- the model -------------------------------------------------------------------------------


class Model:
    """A loaded VLM (text GGUF + mmproj GGUF, or a Hugging Face folder: mmproj None). Its memory is
    released by close() or when the object goes."""

    def __init__(self, text, mmproj):
        L = _lib.lib()
        h = ctypes.c_void_p()
        _check(L.ids_ffi_vlm_load(ctypes.byref(h), _fspath(text), None if mmproj is None else _fspath(mmproj)))
        self._h = h
        self._L = L
        self._tok_cache = {}
        for k in ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "n_ff"):
            setattr(self, k, int(L.ids_ffi_vlm_size(h, k.encode())))
        self.arch = L.ids_ffi_vlm_text(h, b"arch").decode()
        self.projector = L.ids_ffi_vlm_text(h, b"projector").decode()
        self.text_path = os.fsdecode(L.ids_ffi_vlm_text(h, b"text_path"))
        self.mmproj_path = os.fsdecode(L.ids_ffi_vlm_text(h, b"mmproj_path"))
        self.vision_n_layer = int(L.ids_ffi_vlm_size(h, b"vision_n_layer"))
        self.vision_n_embd = int(L.ids_ffi_vlm_size(h, b"vision_n_embd"))
        self.xattn_layers = tuple(int(L.ids_ffi_vlm_size(h, b"xattn_layer.%d" % k))
                                  for k in range(max(0, int(L.ids_ffi_vlm_size(h, b"n_xattn")))))

    def close(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            self._L.ids_vlm_free(h)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "idscope.Model(%r, %r: %s, %d blocks, n_embd %d)" % (self.text_path, self.mmproj_path, self.arch,
                                                                      self.n_layer, self.n_embd)

    def _handle(self):
        if not self._h:
            raise ValueError("the model is closed")
        return self._h

    # -- text --

    def tokenize(self, text, bos=True, special=True):
        """Token ids (int32) of text, as llama.cpp tokenizes it (BOS when the vocabulary asks)."""
        ids = ctypes.POINTER(ctypes.c_int32)()
        n = ctypes.c_int()
        _check(self._L.ids_ffi_tokenize(self._handle(), text.encode(), int(bool(bos)), int(bool(special)),
                                        ctypes.byref(ids), ctypes.byref(n)))
        try:
            return np.ctypeslib.as_array(ids, (n.value,)).copy() if n.value else np.zeros(0, np.int32)
        finally:
            self._L.ids_ffi_free(ids)

    def token_text(self, token):
        """One token as it reads in decoded text (control tokens included)."""
        t = self._tok_cache.get(token)
        if t is None:
            p = ctypes.c_void_p()
            _check(self._L.ids_ffi_token_text(self._handle(), int(token), ctypes.byref(p)))
            t = self._tok_cache[token] = _take_str(p)
        return t

    def to_str_tokens(self, text_or_ids, bos=True):
        ids = self.tokenize(text_or_ids, bos) if isinstance(text_or_ids, str) else text_or_ids
        return [self.token_text(int(t)) for t in ids]

    def decode(self, ids, special=False):
        a = np.ascontiguousarray(ids, dtype=np.int32)
        p = ctypes.c_void_p()
        _check(self._L.ids_ffi_detokenize(self._handle(), _iptr(a), a.size, int(bool(special)), ctypes.byref(p)))
        return _take_str(p)

    def word_token(self, word):
        """The token of a word by the paper's rule: the last piece of tokenize(" " + word)."""
        t = ctypes.c_int32()
        _check(self._L.ids_ffi_word_token(self._handle(), word.encode(), ctypes.byref(t)))
        return t.value

    def prompt(self, question, n_images=1):
        """The model's chat prompt around a question, with n_images <image> markers."""
        p = ctypes.c_void_p()
        _check(self._L.ids_ffi_prompt(self._handle(), question.encode(), int(n_images), ctypes.byref(p)))
        return _take_str(p)

    # -- runs --

    def run(self, prompt, images=(), video_frames=0, vision=False, threads=0, precision="f32"):
        """A prompt with its images, encoded once: its clean run is kept, so that any number of
        edited runs reuse it (a Run)."""
        return Run(self, prompt, images, video_frames, vision, threads, precision)

    def run_with_cache(self, prompt, images=(), names_filter=None, rows="all", edits=(), threads=0,
                       precision="f32", video_frames=0):
        """Run prompt + images once; returns (logits [n_rows, n_vocab], ActivationCache). With edits,
        the activations and logits of the edited run."""
        keep = _name_filter(names_filter)
        want_vision = _wants_vision(keep, self.vision_n_layer) and not video_frames
        with Run(self, prompt, images, video_frames, want_vision, threads, precision) as s:
            return s.run_with_cache(keep, rows, edits)

    def run_with_hooks(self, prompt, images=(), edits=(), candidates=None, logits="all", threads=0,
                       precision="f32", video_frames=0):
        """One run with edits. Returns the logits ([n_rows, n_vocab] with logits="all", [n_vocab]
        with "last"), or with candidates (words or token ids) their log-probabilities as the next
        token after the prompt."""
        with Run(self, prompt, images, video_frames, False, threads, precision) as s:
            return s.run_with_hooks(edits, candidates, logits)

    def run_with_hooks_batch(self, prompt, images=(), variants=(), candidates=None, logits="last", threads=0,
                             precision="f32", video_frames=0):
        """Many edited runs over one clean run, computed together: variants is a list of edit
        lists. Returns [n_variants, n_candidates] log-probabilities, or logits [n_variants, n_vocab]
        ("last") / [n_variants, n_rows, n_vocab] ("all")."""
        with Run(self, prompt, images, video_frames, False, threads, precision) as s:
            return s.run_with_hooks_batch(variants, candidates, logits)

    def generate(self, prompt, images=(), n=16, edits=(), threads=0, precision="f32", video_frames=0):
        """The greedy answer (text) of up to n tokens, with edits applied to the prompt."""
        with Run(self, prompt, images, video_frames, False, threads, precision) as s:
            s._set("gen_room", n)
            return s.generate(n, edits)


def _name_filter(names_filter):
    """names_filter (None, a name, names, or a predicate on names) as a predicate."""
    if names_filter is None:
        return lambda name: True
    if callable(names_filter):
        return lambda name: bool(names_filter(name))
    if isinstance(names_filter, str):
        names_filter = [names_filter]
    wanted = {ActivationCache._canon(n) for n in names_filter}
    return lambda name: name in wanted


def _wants_vision(keep, n_vblocks):
    return any(keep("vision.blocks.%d" % b) for b in range(n_vblocks))


class Run:
    """One prompt with its images over a Model: the rows are built (images encoded) once and the
    clean run is kept, so edited runs (run_with_hooks, run_with_hooks_batch, generate) recompute
    only what an edit can change. Row facts: n_rows, tokens, str_tokens, roles, row_image,
    row_cell, row_frame, positions. Not for use from two threads at once (a lock serialises calls)."""

    def __init__(self, model, prompt, images=(), video_frames=0, vision=False, threads=0, precision="f32"):
        if isinstance(images, (str, bytes, os.PathLike, np.ndarray)):
            images = [images]
        images = list(images)
        n = len(images)
        paths = (ctypes.c_char_p * max(n, 1))()
        rgb = (ctypes.POINTER(ctypes.c_uint8) * max(n, 1))()
        w = (ctypes.c_int * max(n, 1))()
        h = (ctypes.c_int * max(n, 1))()
        keep = []
        for i, im in enumerate(images):
            if isinstance(im, np.ndarray):
                a = np.ascontiguousarray(im, dtype=np.uint8)
                if a.ndim != 3 or a.shape[2] != 3:
                    raise ValueError("image %d: pixels [height, width, 3] (uint8 RGB) are needed, got shape %s"
                                     % (i, im.shape))
                keep.append(a)
                rgb[i] = a.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
                h[i], w[i] = a.shape[0], a.shape[1]
            else:
                paths[i] = _fspath(im)
        if precision not in _PRECISION:
            raise ValueError("precision %r is not one of %s" % (precision, ", ".join(_PRECISION)))
        self.model = model
        self._L = model._L
        self._lock = threading.Lock()
        r = ctypes.c_void_p()
        _check(self._L.ids_ffi_run_new(ctypes.byref(r), model._handle(), prompt.encode(), n, paths, rgb, w, h,
                                       int(video_frames), int(bool(vision)), int(threads)))
        self._h = r
        self._vision = bool(vision)
        self._set("threads", int(threads))
        self._set("precision", _PRECISION[precision])
        self.n_rows = self._L.ids_ffi_run_len(r)
        self.n_images = self._L.ids_ffi_run_n_images(r)
        rows = np.zeros((self.n_rows, 9), np.int32)
        self._L.ids_ffi_run_rows(r, _iptr(rows))
        self._facts = _row_facts(rows, model.token_text)
        for k, v in self._facts.items():
            setattr(self, k, v)

    def _set(self, key, value):
        _check(self._L.ids_ffi_run_set(self._handle(), key.encode(), int(value)))

    def close(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            self._L.ids_ffi_run_free(h)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if not self._h:
            raise ValueError("the run is closed")
        return self._h

    # -- rows --

    def _sel(self, rows):
        """A row choice as the library's selector text."""
        if rows is None:
            return b"all"
        if isinstance(rows, str):
            return rows.encode()
        if isinstance(rows, slice):
            rows = range(self.n_rows)[rows]
        if isinstance(rows, (int, np.integer)):
            rows = [int(rows)]
        idx = [int(i) for i in rows]
        if not idx:
            raise ValueError("an empty row list")
        out = []
        for i in idx:
            j = i + self.n_rows if i < 0 else i
            if not 0 <= j < self.n_rows:
                raise IndexError("row %d is outside the sequence of %d rows" % (i, self.n_rows))
            out.append(str(j))
        return ",".join(out).encode()

    def rows(self, rows):
        """The row indices a selector chooses (see the module's notes)."""
        p = ctypes.POINTER(ctypes.c_int)()
        n = ctypes.c_int()
        _check(self._L.ids_ffi_run_select(self._handle(), self._sel(rows), ctypes.byref(p), ctypes.byref(n)))
        try:
            return np.ctypeslib.as_array(p, (n.value,)).astype(np.int64)
        finally:
            self._L.ids_ffi_free(p)

    def _hook(self, variant, site, layer, rows, action, data=None, factor=1.0, per_row=0):
        nr, wd = ctypes.c_int(), ctypes.c_int()
        _check(self._L.ids_ffi_run_hook(self._handle(), variant, site, layer, self._sel(rows), action, _fptr(data),
                                        data.size if data is not None else 0, float(factor), per_row,
                                        ctypes.byref(nr), ctypes.byref(wd)))
        return nr.value, wd.value

    def _add_edits(self, variant, edits, alive):
        for e in edits:
            if not isinstance(e, Edit):
                raise TypeError("edits are made by idscope.add, idscope.replace or idscope.scale, not %r" % (e,))
            site, layer = _parse_name(e.name, self.model.n_layer)
            if site == _ATTN_PROBS and e.action != _SCALE:
                raise ValueError("%r: attention probabilities can be captured or scaled, not added to or replaced" % (e,))
            if e.action == _SCALE:
                self._hook(variant, site, layer, e.rows, _SCALE, factor=e.factor)
                continue
            n, width = self._hook(variant, site, layer, e.rows, -1)
            v = e.vec
            if v.shape[-1] != width:
                raise ValueError("%r: the vector has %d values per row, the hook %d" % (e, v.shape[-1], width))
            if v.ndim == 2 and v.shape[0] != n:
                raise ValueError("%r: %d rows of values for %d selected rows" % (e, v.shape[0], n))
            per_row = 0
            if e.action == _REPLACE and v.ndim == 1:
                v = np.tile(v, (n, 1))
            elif e.action == _ADD and v.ndim == 2:
                per_row = 1
            v = np.ascontiguousarray(v, dtype=np.float32)
            alive.append(v)
            self._hook(variant, site, layer, e.rows, e.action, v, per_row=per_row)

    def _candidates(self, candidates):
        toks = [self.model.word_token(c) if isinstance(c, str) else int(c) for c in candidates]
        return np.array(toks, dtype=np.int32)

    # -- runs --

    def run_with_cache(self, names_filter=None, rows="all", edits=()):
        """(logits [n_rows, n_vocab], ActivationCache) of the clean run, or of the edited run with
        edits. rows: the rows captured (all by default)."""
        keep = _name_filter(names_filter)
        M = self.model
        with self._lock:
            self._L.ids_ffi_run_clear(self._handle())
            alive = []
            cache = ActivationCache()
            sel = self._sel(rows).decode()
            # the input rows first, then the edits, then the captures: what a hook shows at a site is
            # what the rest of the run sees there (the edited stream)
            img = self._facts["roles"] == "image"
            if img.any() and keep("image_embd"):
                cache["image_embd"] = np.zeros((int(img.sum()), M.n_embd), np.float32)
                self._hook(0, _RESID, 0, "image", _CAPTURE, cache["image_embd"])
            self._add_edits(0, edits, alive)
            captured = {}
            for name in _all_names(M.n_layer, M.xattn_layers):
                if not keep(name):
                    continue
                site, layer = _parse_name(name, M.n_layer)
                if (site, layer) not in captured:
                    n, width = self._hook(0, site, layer, sel, -1)
                    shape = (n, M.n_head, self.n_rows) if site == _ATTN_PROBS else (n, width)
                    buf = np.zeros(shape, np.float32)
                    self._hook(0, site, layer, sel, _CAPTURE, buf)
                    captured[(site, layer)] = buf
                a = captured[(site, layer)]
                cache[name] = a.transpose(1, 0, 2) if site == _ATTN_PROBS else a
            logits = np.zeros((self.n_rows, M.n_vocab), np.float32)
            try:
                if edits:
                    _check(self._L.ids_ffi_run_variants(self._handle(), 1, 2, _fptr(logits), None, 0, None, 0))
                else:
                    _check(self._L.ids_ffi_run_prefill(self._handle(), 2, _fptr(logits), None, 0, None))
            finally:
                self._L.ids_ffi_run_clear(self._handle())
        picked = self.rows(rows)
        cache.update(self._facts if picked.size == self.n_rows and (picked == np.arange(self.n_rows)).all() else
                     {k: v[picked] for k, v in self._facts.items()})
        cache["rows"] = picked
        cache["logits"] = logits
        if self._vision:
            self._vision_blocks(cache, keep)
        return logits, cache

    def _vision_blocks(self, cache, keep):
        per_image = []
        for i in range(self.n_images):
            nb, nt, wd = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
            p = ctypes.POINTER(ctypes.c_float)()
            _check(self._L.ids_ffi_run_vision(self._handle(), i, ctypes.byref(nb), ctypes.byref(nt), ctypes.byref(wd),
                                              ctypes.byref(p)))
            per_image.append(np.ctypeslib.as_array(p, (nb.value, nt.value, wd.value)).copy())
        if not per_image:
            return
        same = len({a.shape for a in per_image}) == 1
        for b in range(per_image[0].shape[0]):
            name = "vision.blocks.%d" % b
            if not keep(name):
                continue
            if len(per_image) == 1:
                cache[name] = per_image[0][b]
            elif same:
                cache[name] = np.stack([a[b] for a in per_image])
            else:
                for i, a in enumerate(per_image):
                    cache["vision.%d.blocks.%d" % (i, b)] = a[b]

    def run_with_hooks(self, edits=(), candidates=None, logits="all"):
        """One edited run (reusing the clean run): logits, or the candidates' log-probabilities."""
        out = self.run_with_hooks_batch([list(edits)], candidates, logits)
        return out[0]

    def run_with_hooks_batch(self, variants, candidates=None, logits="last", full_recompute=False):
        """Many edited runs of this prompt, computed together over its clean run (see
        Model.run_with_hooks_batch)."""
        variants = [list(v) for v in variants]
        if not variants:
            raise ValueError("no variants")
        if logits not in _LOGITS:
            raise ValueError("logits=%r is not one of 'all', 'last', None" % (logits,))
        mode = _LOGITS[logits] if candidates is None else 0
        M = self.model
        cand = self._candidates(candidates) if candidates is not None else None
        nv = len(variants)
        out = None
        if mode == 2:
            out = np.zeros((nv, self.n_rows, M.n_vocab), np.float32)
        elif mode == 1:
            out = np.zeros((nv, M.n_vocab), np.float32)
        lp = np.zeros((nv, len(cand)), np.float32) if cand is not None else None
        with self._lock:
            self._L.ids_ffi_run_clear(self._handle())
            alive = []
            try:
                for k, v in enumerate(variants):
                    self._add_edits(k, v, alive)
                _check(self._L.ids_ffi_run_variants(self._handle(), nv, mode, _fptr(out), _iptr(cand),
                                                    len(cand) if cand is not None else 0, _fptr(lp),
                                                    int(bool(full_recompute))))
            finally:
                self._L.ids_ffi_run_clear(self._handle())
        return lp if cand is not None else out

    def generate(self, n=16, edits=()):
        """The greedy answer (text) of up to n tokens with edits applied to the prompt."""
        toks = np.zeros(max(int(n), 1), np.int32)
        got = ctypes.c_int()
        with self._lock:
            self._L.ids_ffi_run_clear(self._handle())
            alive = []
            try:
                self._add_edits(0, edits, alive)
                _check(self._L.ids_ffi_run_generate(self._handle(), 0 if edits else -1, int(n), _iptr(toks),
                                                    ctypes.byref(got)))
            finally:
                self._L.ids_ffi_run_clear(self._handle())
        return self.model.decode(toks[: got.value])


# ---- capture files ---------------------------------------------------------------------------


def _read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise Error("%s: not a safetensors file (%d bytes)" % (path, len(data)), 2)
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise Error("%s: header of %d bytes in a file of %d" % (path, n, len(data)), 2)
    head = json.loads(data[8:8 + n])
    meta = head.pop("__metadata__", {}) or {}
    types = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "F16": np.float16, "U8": np.uint8}
    arrays = {}
    for k, t in head.items():
        a, b = t["data_offsets"]
        arrays[k] = np.frombuffer(data, types[t["dtype"]], count=(b - a) // np.dtype(types[t["dtype"]]).itemsize,
                                  offset=8 + n + a).reshape(t["shape"]).copy()
    return arrays, meta


def load_capture(path):
    """A capture file of 'idscope capture' as an ActivationCache with the names of run_with_cache
    (its rows are the captured positions: cache.rows)."""
    arrays, meta = _read_safetensors(path)
    cache = ActivationCache()
    n_layer = int(meta.get("n_layer", "-1"))
    layers = [int(x) for x in meta.get("layers", "").split(",") if x]
    blocks = [int(x) for x in meta.get("block_layers", "").split(",") if x]
    if "resid" in arrays:
        for i, l in enumerate(layers):
            if l < n_layer or n_layer < 0:
                cache["blocks.%d.hook_resid_pre" % l] = arrays["resid"][i]
            if l > 0:
                cache["blocks.%d.hook_resid_post" % (l - 1)] = arrays["resid"][i]
    for site, hook in (("attn_out", "hook_attn_out"), ("mlp_out", "hook_mlp_out"), ("attn_probs", "attn.hook_pattern")):
        if site in arrays:
            for i, b in enumerate(blocks):
                a = arrays[site][i]
                cache["blocks.%d.%s" % (b, hook)] = a.transpose(1, 0, 2) if site == "attn_probs" else a
    if "vision" in arrays:
        v = arrays["vision"]
        for b in range(v.shape[-3]):
            cache["vision.blocks.%d" % b] = v[..., b, :, :]
    for k in arrays:
        if k.startswith("vision."):
            for b in range(arrays[k].shape[0]):
                cache["vision.%s.blocks.%d" % (k.split(".")[1], b)] = arrays[k][b]
    xl = [int(x) for x in meta.get("xattn_layers", "").split(",") if x]
    for site in ("xattn_out", "xattn_gate"):  # mllama: one per cross-attention layer
        for i, b in enumerate(xl if site in arrays else ()):
            cache["blocks.%d.hook_%s" % (b, site)] = arrays[site][i]
    if "deepstack" in arrays:  # Qwen3-VL: the rows added after blocks 0, 1, ...
        for b in range(arrays["deepstack"].shape[0]):
            cache["blocks.%d.hook_deepstack" % b] = arrays["deepstack"][b]
    for k in ("logits", "image_embd", "image_embd_deepstack", "cross_states", "tokens", "positions"):
        if k in arrays:
            cache[k] = arrays[k]
    cache["rows"] = np.array([int(x) for x in meta.get("positions", "").split(",") if x], np.int64)
    if "token_strings" in meta:
        cache["str_tokens"] = np.array(json.loads(meta["token_strings"]), dtype=object)
    if "roles" in meta:
        cache["roles"] = np.array(json.loads(meta["roles"]), dtype=object)
    if "cells" in meta:
        cells = np.array(json.loads(meta["cells"]), np.int32).reshape(-1, 3)
        cache["row_image"], cache["row_cell"] = cells[:, 0], cells[:, 1:]
    if "frames" in meta:
        cache["row_frame"] = np.array(json.loads(meta["frames"]), np.int32)
    cache["metadata"] = meta
    return cache


from .experiments import (Result, Stimulus, compare, deviation, depth, evaluate, extract_ids, mask, run,  # noqa: E402
                          steer_belief, steer_grid, stimuli, stimulus, swap, temporal_extract, temporal_steer,
                          temporal_swap)
