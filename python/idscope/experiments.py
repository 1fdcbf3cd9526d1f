"""The experiments and the stimulus engine from Python: each function runs the command of the same
name in the library (same options, same defaults, same seed: same numbers) and returns a Result with
the command's JSON fields, its arrays (NumPy) and its provenance; out=DIR (or result.write(DIR))
writes the files the command writes.

    import idscope
    m = idscope.load()
    ids = idscope.extract_ids(m, out="ids", grid=3)           # ids/ids.safetensors, ids.json
    ids.universal.shape                                       # [layers, y, x, size, embd]
    belief = idscope.steer_belief(m, ids="ids/ids.safetensors", n=2, layers=(1, 3))
    belief.rate_id, belief.best3["id"], belief.provenance["seed"]
    img = idscope.stimulus("grid", index=5, size=224)         # .image (h, w, 3) uint8, .objects, .truth
"""
import ctypes
import json
import numbers
import os

import numpy as np

from . import _lib

_DTYPES = {0: np.float32, 1: np.uint8, 2: np.int8, 3: np.int32, 4: np.float64}


def _value(key, v):
    """An option value as the command's string."""
    if isinstance(v, Result):
        if not v.out:
            raise ValueError("%s: the result was not written (give out=DIR when making it)" % key)
        v = os.path.join(v.out, v.main_tensor_file())
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return repr(float(v))
    if key == "layers" and isinstance(v, (tuple, list)):
        return "%d-%d" % (int(v[0]), int(v[1]))
    if isinstance(v, (tuple, list)):
        return ",".join(_value(key, x) for x in v)
    if isinstance(v, str):
        return v
    return os.fsdecode(os.fspath(v))


def _options(opts):
    keys, values = [], []
    for k, v in opts.items():
        if v is None:
            continue
        if k == "dirs":
            for d in v:
                keys.append(b"dirs")
                values.append(_value(k, d).encode())
            continue
        keys.append(k.encode())
        values.append(_value(k, v).encode())
    n = len(keys)
    return n, (ctypes.c_char_p * max(n, 1))(*keys), (ctypes.c_char_p * max(n, 1))(*values)


class Result:
    """A result of an experiment: every field of its JSON file as an attribute (result.json holds the
    whole document, result.provenance how it was made), its arrays as NumPy attributes (listed in
    result.arrays), and the files the command writes (result.files, result.write(DIR)). The C memory
    is released by close() or when the object goes."""

    def __init__(self, kind, handle, out=None):
        from . import _check
        L = _lib.lib()
        self._L, self._h, self.kind, self.out = L, handle, kind, out
        text = L.ids_ffi_result_json(handle)
        self.json = json.loads(text.decode("utf-8")) if text else {}
        self.provenance = self.json.get("provenance", {})
        self.arrays = {}
        for i in range(L.ids_ffi_result_n_arrays(handle)):
            name, dt, nd = ctypes.c_char_p(), ctypes.c_int(), ctypes.c_int()
            shape, data = (ctypes.c_longlong * 6)(), ctypes.c_void_p()
            _check(L.ids_ffi_result_array(handle, i, ctypes.byref(name), ctypes.byref(dt), ctypes.byref(nd), shape,
                                          ctypes.byref(data)))
            shp = tuple(int(shape[d]) for d in range(nd.value))
            t = np.dtype(_DTYPES[dt.value])
            count = int(np.prod(shp)) if shp else 1
            buf = ctypes.string_at(data.value, count * t.itemsize) if count else b""
            self.arrays[name.value.decode()] = np.frombuffer(buf, t).reshape(shp).copy()
        self.files = []
        for i in range(L.ids_ffi_result_n_files(handle)):
            name, data, n = ctypes.c_char_p(), ctypes.c_void_p(), ctypes.c_longlong()
            _check(L.ids_ffi_result_file(handle, i, ctypes.byref(name), ctypes.byref(data), ctypes.byref(n)))
            self.files.append(name.value.decode())

    def __getattr__(self, key):
        d = self.__dict__
        if key in d.get("arrays", {}):
            return d["arrays"][key]
        if key in d.get("json", {}):
            v = d["json"][key]
            return np.array(v, np.float64) if isinstance(v, list) and v and all(
                isinstance(x, (int, float)) or x is None for x in v) else v
        raise AttributeError("%s result has no field %r (fields: %s)" % (d.get("kind"), key, ", ".join(self.fields())))

    def fields(self):
        """The JSON fields and arrays of the result."""
        return sorted(set(self.json) | set(self.arrays))

    def main_tensor_file(self):
        for f in self.files:
            if f.endswith(".safetensors"):
                return f
        raise ValueError("%s: the result has no tensor file" % self.kind)

    def file(self, name):
        """The bytes of one of the result's files (as the command writes it)."""
        from . import _check
        L = self._L
        for i in range(L.ids_ffi_result_n_files(self._handle())):
            nm, data, n = ctypes.c_char_p(), ctypes.c_void_p(), ctypes.c_longlong()
            _check(L.ids_ffi_result_file(self._h, i, ctypes.byref(nm), ctypes.byref(data), ctypes.byref(n)))
            if nm.value.decode() == name:
                return ctypes.string_at(data.value, n.value)
        raise KeyError(name)

    def write(self, out):
        """Write the command's files into the folder out (created)."""
        from . import _check, _fspath
        _check(self._L.ids_ffi_result_write(self._handle(), _fspath(out)))
        self.out = os.fspath(out)
        return self

    def _handle(self):
        if not self._h:
            raise ValueError("the result is closed")
        return self._h

    def close(self):
        h, self._h = self.__dict__.get("_h"), None
        if h:
            self._L.ids_ffi_result_free(h)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return "idscope.Result(%s: %s)" % (self.kind, ", ".join(self.fields()))


def _model(model):
    from . import load
    global _bundled
    if model is not None:
        return model
    if _bundled is None:
        _bundled = load()
    return _bundled


_bundled = None


def run(command, model=None, out=None, **opts):
    """Run an experiment by its command name ("swap", "steer belief", ...) with the command's long
    options as keywords (per_pair=True for --per-pair); model None: the bundled model."""
    from . import _check, _fspath
    L = _lib.lib()
    n, keys, values = _options(opts)
    h = ctypes.c_void_p()
    v = None if command == "compare" else _model(model)._handle()
    _check(L.ids_ffi_exp_run(v, command.encode(), n, keys, values, None if out is None else _fspath(out), ctypes.byref(h)))
    return Result(command, h, None if out is None else os.fspath(out))


def extract_ids(model=None, out=None, **opts):
    """`idscope ids extract`: the spatial IDs (arrays universal [layers, y, x, size, embd], x_axis,
    y_axis, per_pair with per_pair=True; fields of ids.json). Options: objects, grid, sizes,
    image_size, per_pair, set, n, seed, threads, precision, instruction, no_instruction."""
    return run("ids extract", model, out, **opts)


def swap(model=None, out=None, **opts):
    """`idscope swap`: recovered fractions per layer and position set (left, right, diff, diff_pooled
    [layers, 3: image, text, objects], item_diff; the JSON's fields and intervals). Options: control,
    hue, objects, set, n, grid, seed, threads, precision, instruction, no_instruction."""
    return run("swap", model, out, **opts)


def steer_belief(model=None, out=None, **opts):
    """`idscope steer belief` (ids=IDS.safetensors required): rate_id, rate_noise, greedy_*, item_*.
    Options: relation, factor, layers=(lo, hi), greedy, objects, set, n, seed, holdout_objects, ..."""
    return run("steer belief", model, out, **opts)


def steer_grid(model=None, out=None, **opts):
    """`idscope steer grid` (ids= required): delta [grid, grid] and its controls delta_random,
    delta_orthogonal, item_delta. Options: relation, factor, layers (one layer), variant, ..."""
    return run("steer grid", model, out, **opts)


def depth(model=None, out=None, **opts):
    """`idscope depth` (ids= required): ab_down, ab_up, fb_down, fb_up per layer of the band, the
    controls random_* and orthogonal_*, item_ab, item_fb. Options: factor, layers, raw, ..."""
    return run("depth", model, out, **opts)


def deviation(model=None, out=None, **opts):
    """`idscope deviation` (ids= and set= required): dev [items, layers], correct, gx, gy, pos,
    id_pos and the JSON's mann_whitney. Options: layer, n, seed, ..."""
    return run("deviation", model, out, **opts)


def mask(model=None, out=None, **opts):
    """`idscope mask` (set= required): lp [items, 2 + random, 2], ok, and the JSON's accuracies and
    changes. Options: radius, random, n, seed, ..."""
    return run("mask", model, out, **opts)


def compare(dirs, out=None):
    """`idscope compare RUN_DIR...`: rho (Spearman of score and accuracy) and the JSON's table."""
    return run("compare", None, out, dirs=list(dirs))


def temporal_extract(model=None, out=None, **opts):
    """`idscope temporal extract`: temporal [layers, frames - 1, embd], time_axis, and temporal.json's
    per-layer PCA. Options: objects, frames, image_size, seed, ..."""
    return run("temporal extract", model, out, **opts)


def temporal_swap(model=None, out=None, **opts):
    """`idscope temporal swap`: first, second, diff, diff_pooled [layers, 3], item_diff. Options:
    objects, frames, n, seed, mvbench, videos, ..."""
    return run("temporal swap", model, out, **opts)


def temporal_steer(model=None, out=None, **opts):
    """`idscope temporal steer` (ids=temporal.safetensors required): d_before, d_after [band, frames],
    rho_after, random_after, orthogonal_after, item_after. Options: factor, layers, source, ..."""
    return run("temporal steer", model, out, **opts)


def evaluate(model=None, out=None, task="all", **opts):
    """`idscope eval --out`: correct per task (the JSON's tasks with accuracies). Options: n (default
    500), seed, held_out ("only", "exclude", "all"), threads, precision."""
    return run("eval", model, out, task=task, **opts)


class Stimulus:
    """One item of a stimulus set: frames [n_frames, h, w, 3] uint8 (image: the first), objects
    (name, word, cx, cy, size, rot, cell_x, cell_y, lateral, depth, appear, visible, color), truth
    ({relation: right answer}), count (items in the set)."""

    def __init__(self, res):
        self.frames = res.arrays["frames"]
        self.image = self.frames[0]
        for k in ("set", "index", "count", "grid", "mirrored", "recolored", "objects", "truth"):
            setattr(self, k, res.json[k])
        res.close()

    def save(self, path):
        """The first frame (or frame k of save(path, k)) as a PNG file, as the stimulus sets write it."""
        return self.save_frame(path, 0)

    def save_frame(self, path, k):
        from . import _check, _fspath
        a = np.ascontiguousarray(self.frames[k], np.uint8)
        _check(_lib.lib().ids_ffi_png_write(a.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), a.shape[1], a.shape[0],
                                            _fspath(path)))

    def __repr__(self):
        return "idscope.Stimulus(%s #%d of %d: %s)" % (self.set, self.index, self.count,
                                                       ", ".join(o["name"] for o in self.objects))


_VARIANTS = {None: 0, "mirror": 1, "recolor": 2}


def stimulus(set="grid", index=0, variant=None, **opts):
    """Item `index` of a stimulus set drawn as `idscope stimuli SET` draws it (options: size, grid,
    sizes, objects, all_pairs, jitter, size_jitter, rotate, bg, frames, near_threshold, repeats,
    seed); variant "mirror" or "recolor" for the edited copies."""
    from . import _check
    if variant not in _VARIANTS:
        raise ValueError("variant: None, 'mirror' or 'recolor'")
    n, keys, values = _options(dict(opts, set_kind=set))
    h = ctypes.c_void_p()
    _check(_lib.lib().ids_ffi_stimulus(n, keys, values, int(index), _VARIANTS[variant], ctypes.byref(h)))
    return Stimulus(Result("stimulus", h))


def stimuli(set="grid", out=None, **opts):
    """The whole set written into out as `idscope stimuli SET --out DIR` writes it (plus mirror,
    recolor, mp4, limit); returns the manifest (a dict)."""
    from . import _check, _fspath
    if out is None:
        raise ValueError("stimuli: give out=DIR")
    n, keys, values = _options(dict(opts, set_kind=set))
    h = ctypes.c_void_p()
    _check(_lib.lib().ids_ffi_stimuli_write(n, keys, values, _fspath(out), ctypes.byref(h)))
    r = Result("stimuli", h, os.fspath(out))
    manifest = r.json
    r.close()
    return manifest
