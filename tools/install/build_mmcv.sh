#!/usr/bin/env bash
# Build mmcv 2.1.0 with compiled CPU (and, where nvcc + a GPU torch are
# present, CUDA) ops against the torch already installed in VENV, and install it.
#
#   tools/install/build_mmcv.sh [VENV] [WHEEL_OUT_DIR]
#
# Why this exists: PyPI has only mmcv's sdist for this torch, mmseg 1.2.2 and
# mmdet 3.3.0 need mmcv<2.2 *with* ops (mmcv-lite does not work), and the sdist's
# setup.py hard-codes `-std=c++17` while torch >= 2.10 ATen headers refuse
# anything below C++20 ("C++20 or later compatible compiler is required").
# So we unpack the sdist, switch the flag to c++20, and build without build
# isolation (the build must see this venv's torch). ~14 min on 2 cores.
set -euo pipefail
VENV=${1:-.venv}
OUT=${2:-.cache/wheels}
PIP="$VENV/bin/python -m pip"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

$PIP download -q --no-deps --no-binary :all: mmcv==2.1.0 -d "$WORK"
tar -xzf "$WORK"/mmcv-2.1.0.tar.gz -C "$WORK"
SRC="$WORK/mmcv-2.1.0"
# the one change: C++17 -> C++20 for every compiler invocation in setup.py
sed -i 's/-std=c++17/-std=c++20/g; s/std:c++17/std:c++20/g' "$SRC/setup.py"
grep -q 'c++20' "$SRC/setup.py" || { echo "setup.py flag not found" >&2; exit 1; }

export MMCV_WITH_OPS=1
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
(cd "$SRC" && "$OLDPWD/$VENV/bin/python" -m pip wheel -v --no-build-isolation --no-deps -w "$OUT" . )
$PIP install --no-deps "$OUT"/mmcv-2.1.0-*.whl
echo "[build_mmcv] built and installed $(ls "$OUT"/mmcv-2.1.0-*.whl)"
