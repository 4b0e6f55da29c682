#!/usr/bin/env bash
# Install mmyolo==0.6.0+mmcv21 into VENV (called by tools/install/install.sh).
#
#   tools/install/install_mmyolo.sh [VENV]        (default: .venv)
#
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${1:-.venv}
PIP="$VENV/bin/python -m pip"

# mmyolo 0.6.0 (GPL-3.0, a separate dependency: never vendored here) asserts
# mmcv < 2.1.0 at import; mmyolo==0.6.0+mmcv21 is PyPI's wheel with only that
# cap raised to mmdet 3.3.0's own limit (< 2.2.0) -- tools/install/repack_mmyolo.py.
# Taken from MMYOLO_WHEEL_DIR or ../shared/wheels when present, else repacked
# from PyPI's wheel into .cache/wheels. PyPI's wheel is kept in
# .cache/wheels/pypi: tests/tools/test_mmyolo_wheel.py diffs the two.
MMYOLO_WHEEL=mmyolo-0.6.0+mmcv21-py3-none-any.whl
MMYOLO_PYPI=.cache/wheels/pypi/mmyolo-0.6.0-py3-none-any.whl
if [ ! -f "$MMYOLO_PYPI" ]; then
  $PIP download -q --no-deps --only-binary :all: mmyolo==0.6.0 -d .cache/wheels/pypi \
    || echo "[install] could not download PyPI's mmyolo 0.6.0 wheel (offline?)"
fi
mmyolo_src=""
for d in "${MMYOLO_WHEEL_DIR:-}" ../shared/wheels; do
  if [ -n "$d" ] && [ -f "$d/$MMYOLO_WHEEL" ]; then mmyolo_src="$d/$MMYOLO_WHEEL"; break; fi
done
if [ -z "$mmyolo_src" ]; then
  [ -f "$MMYOLO_PYPI" ] || { echo "[install] no $MMYOLO_WHEEL and no PyPI wheel to repack" >&2; exit 1; }
  mmyolo_src=$("$VENV/bin/python" tools/install/repack_mmyolo.py "$MMYOLO_PYPI" .cache/wheels)
fi
if [ "$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('mmyolo'))" 2>/dev/null)" != 0.6.0+mmcv21 ]; then
  # --no-deps: its runtime deps (numpy, prettytable) are in requirements/runtime.txt
  $PIP install -q --no-deps --force-reinstall "$mmyolo_src"
fi
echo "[install] mmyolo 0.6.0+mmcv21 from $mmyolo_src"
