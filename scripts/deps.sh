#!/bin/sh
# Install the Debian packages idscope needs to build and test, if any are missing.
set -eu
# clang + libclang-rt-dev: libFuzzer and the sanitizer runtimes (make fuzz, the suite's fuzz smoke); the
# runtimes are only a recommendation of clang's packages, hence named here. python3 + python3-numpy: the
# Python package (python/idscope) and its tests (python3-pil: a stimulus drawn in Python is compared with
# the CLI's PNG as Pillow reads it). chromium: the test that renders the report headless.
# parallel: GNU parallel, which runs the shards of a sweep in tests/shard.sh (docs/CLUSTER.md).
PKGS="build-essential pkg-config libpcre2-dev libcjson-dev libopenblas-dev libstb-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev clang libclang-rt-dev python3 python3-numpy python3-pil chromium parallel"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
