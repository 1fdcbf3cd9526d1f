#!/bin/sh
# The layer rule, checked: base < formats < text < engine < stimuli < exp < train < cli. A file may
# include only headers of its own layer or of earlier ones (quoted includes in src/, cli/ and
# include/idscope/), and an object of a layer may only call library functions defined in its own
# layer or earlier ones (undefined ids_* symbols of build/release/obj, read with nm).
# Usage: tests/check_layers.sh [OBJ_DIR]   (default build/release/obj); closing line "layers: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
obj=${1:-build/release/obj}
order="base formats text engine stimuli exp train cli"
rank() { i=0; for l in $order; do [ "$l" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo 99; }
pass=0
fail=0
# 1. includes
for f in src/*/*.c src/*/*.h cli/*.c cli/*.h include/idscope/*.h; do
    [ -f "$f" ] || continue
    case $f in
        include/idscope/*) own=$(basename "$f" .h) ;;
        cli/*) own=cli ;;
        *) own=$(echo "$f" | cut -d/ -f2) ;;
    esac
    r_own=$(rank "$own")
    bad=""
    for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        case $h in
            idscope.h) l=train ;;
            idscope/*) l=$(basename "$h" .h) ;;
            */*) l=${h%%/*} ;;
            *) continue ;;   # a header next to the file
        esac
        [ "$(rank "$l")" -le "$r_own" ] || bad="$bad $h"
    done
    if [ -n "$bad" ]; then
        echo "FAIL $f (layer $own) includes a later layer:$bad"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
done
# 2. symbols: where each ids_* function is defined, then what every object calls
if [ -d "$obj/src" ]; then
    defs=$(mktemp)
    for o in "$obj"/src/*/*.o; do
        l=$(basename "$(dirname "$o")")
        nm -g --defined-only "$o" | awk -v l="$l" '$3 ~ /^ids_/ {print $3, l}'
    done | sort > "$defs"
    for o in "$obj"/src/*/*.o "$obj"/cli/*.o; do
        [ -f "$o" ] || continue
        case $o in */cli/*) own=cli ;; *) own=$(basename "$(dirname "$o")") ;; esac
        r_own=$(rank "$own")
        bad=""
        for s in $(nm -u "$o" | awk '$2 ~ /^ids_/ {print $2}'); do
            l=$(awk -v s="$s" '$1 == s {print $2; exit}' "$defs")
            [ -n "$l" ] || continue
            [ "$(rank "$l")" -le "$r_own" ] || bad="$bad $s($l)"
        done
        if [ -n "$bad" ]; then
            echo "FAIL $o (layer $own) calls a later layer:$bad"
            fail=$((fail + 1))
        else
            pass=$((pass + 1))
        fi
    done
    rm -f "$defs"
else
    echo "FAIL no objects in $obj/src (build first)"
    fail=$((fail + 1))
fi
echo "layers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
