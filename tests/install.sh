#!/bin/sh
# make install into a scratch prefix: the installed CLI runs the demo on the bundled model from
# another folder (no IDSCOPE_MODELS), pkg-config builds a small C program against the installed
# library (shared and static), the shared library exports only the public API, the installed Python
# package loads the bundled model through the installed library, and make uninstall leaves the prefix
# empty. Prints "install: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
P=$(mktemp -d /tmp/idscope-prefix-XXXXXX)
W=$(mktemp -d /tmp/idscope-work-XXXXXX)
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
ko() { fail=$((fail + 1)); echo "FAIL $1"; }
if make --no-print-directory install PREFIX="$P" >"$W/make.log" 2>&1; then ok make_install; else ko make_install; tail -5 "$W/make.log"; fi
for f in bin/idscope lib/libidscope.a lib/libidscope.so lib/pkgconfig/idscope.pc include/idscope.h \
         include/idscope/engine.h share/idscope/models/tiny-llava/text.gguf share/idscope/models/tiny-llava/mmproj.gguf; do
    [ -e "$P/$f" ] || { ko "installed_$f"; continue; }
done
[ "$(readlink "$P/lib/libidscope.so.0")" = "libidscope.so.$(sed -n 's/^#define IDS_VERSION_STRING "\(.*\)"/\1/p' include/idscope/base.h)" ] &&
    ok soname_links || ko soname_links
if objdump -p "$P/lib/libidscope.so" | grep -q 'SONAME *libidscope.so.0'; then ok soname; else ko soname; fi
exported=$(nm -D --defined-only "$P/lib/libidscope.so" | awk '{print $3}')
if printf '%s\n' "$exported" | grep -q '^ids_vlm_load' && ! printf '%s\n' "$exported" | grep -q '^ids__'; then
    ok exports_public_api_only; else ko exports_public_api_only; fi
# the installed CLI finds the bundled model beside itself, from another folder (a short swap here;
# IDSCOPE_INSTALL_DEMO=1 runs the whole demo instead, a few minutes)
cd "$W"
if [ "${IDSCOPE_INSTALL_DEMO:-0}" = 1 ]; then
    env -u IDSCOPE_MODELS "$P/bin/idscope" demo --out "$W/run" --n 1 --threads 2 >"$W/run.log" 2>&1
    J="$W/run/summary.json"
else
    env -u IDSCOPE_MODELS "$P/bin/idscope" swap --out "$W/run" --n 1 --threads 2 >"$W/run.log" 2>&1
    J="$W/run/swap.json"
fi
if [ -s "$J" ] && tr -d ' \t\n' < "$J" | grep -q '"path":"[^"]*share/idscope/models/tiny-llava/text.gguf"'; then
    ok installed_cli_finds_bundled_model; else ko installed_cli_finds_bundled_model; tail -5 "$W/run.log"; fi
cat > "$W/hello.c" <<'EOS'
#include <idscope.h>
#include <stdio.h>
int main(int argc, char **argv) {
    ids_vlm *v;
    ids_err err;
    if (argc < 3 || ids_vlm_load(&v, argv[1], argv[2], &err)) { printf("error: %s\n", argc < 3 ? "usage" : err.msg); return 1; }
    printf("idscope %s, n_layer %d\n", ids_version(), ids_model_hparams(ids_vlm_model(v))->n_layer);
    ids_vlm_free(v);
    return 0;
}
EOS
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
M="$P/share/idscope/models/tiny-llava"
# shellcheck disable=SC2046
if cc hello.c -o hello $(pkg-config --cflags --libs idscope) 2>"$W/cc.log" &&
   LD_LIBRARY_PATH="$P/lib" ./hello "$M/text.gguf" "$M/mmproj.gguf" | grep -q "^idscope .*, n_layer"; then
    ok pkg_config_shared; else ko pkg_config_shared; cat "$W/cc.log"; fi
# shellcheck disable=SC2046
if cc hello.c -o hello-static $(pkg-config --cflags idscope) $(pkg-config --static --libs idscope | sed "s|-lidscope|$P/lib/libidscope.a|") \
      2>"$W/cc2.log" && ./hello-static "$M/text.gguf" "$M/mmproj.gguf" | grep -q "n_layer"; then
    ok pkg_config_static; else ko pkg_config_static; cat "$W/cc2.log"; fi
if LD_LIBRARY_PATH="$P/lib" ./hello /nonexistent.gguf x | grep -q "nonexistent.gguf"; then ok error_names_file; else ko error_names_file; fi
# the installed Python package finds the installed library and the bundled model beside it
PY=${PYTHON:-/usr/bin/python3}
PYDIR=$(find "$P/lib" -type d -name dist-packages | head -1)
if [ -n "$PYDIR" ] && env -u IDSCOPE_MODELS -u IDSCOPE_LIB PYTHONPATH="$PYDIR" "$PY" -c \
       'import idscope; m = idscope.load(); print(m.n_layer, idscope.library_path(), m.text_path)' >"$W/py.log" 2>&1 &&
   grep -q "^6 $P/lib/.*libidscope.so.0 $P/share/idscope/models/tiny-llava/text.gguf$" "$W/py.log"; then
    ok installed_python_package; else ko installed_python_package; cat "$W/py.log"; fi
cd "$ROOT"
make --no-print-directory uninstall PREFIX="$P" >/dev/null 2>&1
left=$(find "$P" -type f -o -type l | head -5)
if [ -z "$left" ]; then ok uninstall_leaves_nothing; else ko "uninstall_leaves_nothing ($left)"; fi
rm -rf "$P" "$W"
echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
