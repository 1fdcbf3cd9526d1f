"""The shared library, found and bound with ctypes (the flat API of include/idscope/engine.h)."""
import ctypes
import os
from ctypes import POINTER, c_char_p, c_float, c_int, c_int32, c_longlong, c_uint8, c_void_p

_HERE = os.path.dirname(os.path.abspath(__file__))
SONAME = "libidscope.so.0"
FFI_VERSION = 1

# status codes (ids_status)
STATUS_NAMES = ["ok", "io", "format", "not_found", "type", "range", "unsupported", "arg", "nomem"]


def candidates():
    """Where the library is looked for, in order: $IDSCOPE_LIB alone when set; else a checkout's
    build/release (this package in python/idscope/), an install's PREFIX/lib (this package in
    PREFIX/lib/pythonX.Y/dist-packages/idscope/), then the system's search path."""
    env = os.environ.get("IDSCOPE_LIB")
    if env:
        return [env]
    return [
        os.path.normpath(os.path.join(_HERE, "..", "..", "build", "release", SONAME)),
        os.path.normpath(os.path.join(_HERE, "..", "..", "..", SONAME)),
        SONAME,
    ]


_lib = None
_path = None


def path():
    """The file the library was loaded from (a bare soname when the system search found it)."""
    lib()
    return _path


def _bind(L):
    P_int = POINTER(c_int)
    P_i32 = POINTER(c_int32)
    P_f = POINTER(c_float)
    sigs = {
        "ids_ffi_version": (c_int, []),
        "ids_ffi_error": (c_char_p, []),
        "ids_ffi_free": (None, [c_void_p]),
        "ids_version": (c_char_p, []),
        "ids_build_source": (c_char_p, []),
        "ids_ffi_vlm_load": (c_int, [POINTER(c_void_p), c_char_p, c_char_p]),
        "ids_vlm_free": (None, [c_void_p]),
        "ids_ffi_vlm_size": (c_longlong, [c_void_p, c_char_p]),
        "ids_ffi_vlm_text": (c_char_p, [c_void_p, c_char_p]),
        "ids_ffi_prompt": (c_int, [c_void_p, c_char_p, c_int, POINTER(c_void_p)]),
        "ids_ffi_tokenize": (c_int, [c_void_p, c_char_p, c_int, c_int, POINTER(P_i32), P_int]),
        "ids_ffi_detokenize": (c_int, [c_void_p, P_i32, c_int, c_int, POINTER(c_void_p)]),
        "ids_ffi_token_text": (c_int, [c_void_p, c_int32, POINTER(c_void_p)]),
        "ids_ffi_word_token": (c_int, [c_void_p, c_char_p, P_i32]),
        "ids_ffi_cvec_read": (c_int, [c_char_p, P_int, P_int, POINTER(P_int), POINTER(P_f)]),
        "ids_ffi_run_new": (c_int, [POINTER(c_void_p), c_void_p, c_char_p, c_int, POINTER(c_char_p),
                                    POINTER(POINTER(c_uint8)), P_int, P_int, c_int, c_int, c_int]),
        "ids_ffi_run_free": (None, [c_void_p]),
        "ids_ffi_run_set": (c_int, [c_void_p, c_char_p, c_longlong]),
        "ids_ffi_run_len": (c_int, [c_void_p]),
        "ids_ffi_run_n_images": (c_int, [c_void_p]),
        "ids_ffi_run_rows": (None, [c_void_p, P_i32]),
        "ids_ffi_run_vision": (c_int, [c_void_p, c_int, P_int, P_int, P_int, POINTER(P_f)]),
        "ids_ffi_run_select": (c_int, [c_void_p, c_char_p, POINTER(P_int), P_int]),
        "ids_ffi_run_hook": (c_int, [c_void_p, c_int, c_int, c_int, c_char_p, c_int, P_f, c_longlong, c_float, c_int,
                                     P_int, P_int]),
        "ids_ffi_run_clear": (None, [c_void_p]),
        "ids_ffi_run_prefill": (c_int, [c_void_p, c_int, P_f, P_i32, c_int, P_f]),
        "ids_ffi_run_variants": (c_int, [c_void_p, c_int, c_int, P_f, P_i32, c_int, P_f, c_int]),
        "ids_ffi_run_generate": (c_int, [c_void_p, c_int, c_int, P_i32, P_int]),
        "ids_ffi_exp_run": (c_int, [c_void_p, c_char_p, c_int, POINTER(c_char_p), POINTER(c_char_p), c_char_p,
                                    POINTER(c_void_p)]),
        "ids_ffi_stimulus": (c_int, [c_int, POINTER(c_char_p), POINTER(c_char_p), c_int, c_int, POINTER(c_void_p)]),
        "ids_ffi_stimuli_write": (c_int, [c_int, POINTER(c_char_p), POINTER(c_char_p), c_char_p, POINTER(c_void_p)]),
        "ids_ffi_png_write": (c_int, [POINTER(c_uint8), c_int, c_int, c_char_p]),
        "ids_ffi_result_free": (None, [c_void_p]),
        "ids_ffi_result_json": (c_char_p, [c_void_p]),
        "ids_ffi_result_n_arrays": (c_int, [c_void_p]),
        "ids_ffi_result_array": (c_int, [c_void_p, c_int, POINTER(c_char_p), P_int, P_int, POINTER(c_longlong),
                                         POINTER(c_void_p)]),
        "ids_ffi_result_n_files": (c_int, [c_void_p]),
        "ids_ffi_result_file": (c_int, [c_void_p, c_int, POINTER(c_char_p), POINTER(c_void_p), POINTER(c_longlong)]),
        "ids_ffi_result_write": (c_int, [c_void_p, c_char_p]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(L, name)
        f.restype = res
        f.argtypes = args


def lib():
    """The bound library (loaded on first use)."""
    global _lib, _path
    if _lib is not None:
        return _lib
    tried = []
    for c in candidates():
        if os.sep in c and not os.path.exists(c):
            tried.append(c + " (absent)")
            continue
        try:
            L = ctypes.CDLL(c)
        except OSError as e:
            tried.append("%s (%s)" % (c, e))
            continue
        try:
            _bind(L)
        except AttributeError as e:
            tried.append("%s (not an idscope library with the flat API: %s)" % (c, e))
            continue
        if L.ids_ffi_version() != FFI_VERSION:
            tried.append("%s (flat API version %d, this package needs %d)" % (c, L.ids_ffi_version(), FFI_VERSION))
            continue
        _lib, _path = L, c
        return L
    raise ImportError("idscope: cannot load the shared library; tried: " + "; ".join(tried) +
                      ". Build it with 'make shared' or set IDSCOPE_LIB=/path/to/libidscope.so.0")
