#!/bin/sh
# The Python suite (tests/python/run.py) against the ASan+UBSan shared library (make shared-asan:
# build/asan-shared/libidscope.so.0), with the sanitizer runtime preloaded into the interpreter.
# Leak detection is off: the interpreter itself leaves memory at exit (its own, not the library's);
# the results' memory is checked by test_experiments' resident-size test, and the C unit tests run
# with LeakSanitizer. Any ASan or UBSan report ends the run with a failure.
# Closing line "python: N passed, N failed" (run.py's).
set -u
cd "$(dirname "$0")/../.."
lib=build/asan-shared/libidscope.so.0
[ -f "$lib" ] || { echo "python-asan: $lib is missing (make shared-asan)"; echo "python: 0 passed, 1 failed"; exit 1; }
asan=$(${CC:-cc} -print-file-name=libasan.so)
case $asan in /*) ;; *) echo "python-asan: libasan.so not found by ${CC:-cc}"; echo "python: 0 passed, 1 failed"; exit 1 ;; esac
export IDSCOPE_LIB="$PWD/$lib"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
LD_PRELOAD="$asan" "${PYTHON:-/usr/bin/python3}" tests/python/run.py
