#!/usr/bin/env bash
# Install the pinned OpenMMLab stack and mmplugins into a virtualenv.
#
#   tools/install/install.sh [VENV]        (default: .venv)
#
# Order matters: torch first (mmcv compiles against it), then mmcv 2.1.0 with
# compiled ops -- from a prebuilt wheel when one matches (MMCV_WHEEL_DIR, or
# ../shared/wheels beside this checkout), otherwise built from the sdist by
# tools/install/build_mmcv.sh (~15 min on 2 cores) -- then the rest, and
# mmyolo 0.6.0+mmcv21 (see below).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${1:-.venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[install] creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"

echo "[install] build requirements (torch, setuptools<81, ...)"
$PIP install -q -r requirements/build.txt

if ! "$VENV/bin/python" -c "import mmcv, sys; from mmcv.utils import ext_loader; ext_loader.load_ext('_ext', ['nms']); sys.exit(mmcv.__version__ != '2.1.0')" 2>/dev/null; then
  WHEEL_DIRS=()
  [ -n "${MMCV_WHEEL_DIR:-}" ] && WHEEL_DIRS+=("$MMCV_WHEEL_DIR")
  [ -d ../shared/wheels ] && WHEEL_DIRS+=("$(cd ../shared/wheels && pwd)")
  [ -d .cache/wheels ] && WHEEL_DIRS+=("$(pwd)/.cache/wheels")
  installed=0
  for d in "${WHEEL_DIRS[@]}"; do
    # --no-index: only a local, prebuilt wheel counts as "matching"
    if $PIP install -q --no-index --no-deps --only-binary mmcv --find-links "$d" mmcv==2.1.0 2>/dev/null; then
      echo "[install] mmcv 2.1.0 from prebuilt wheel in $d"
      installed=1; break
    fi
  done
  if [ "$installed" = 0 ]; then
    echo "[install] no prebuilt mmcv wheel found: building from source (slow)"
    bash tools/install/build_mmcv.sh "$VENV" .cache/wheels
  fi
fi

echo "[install] runtime + test requirements"
$PIP install -q -r requirements/runtime.txt -r requirements/tests.txt
if [ "${MMPLUGINS_NO_OPTIONAL:-0}" != 1 ]; then
  $PIP install -q -r requirements/optional.txt
  # stale pins (torch<2.3 ...) on packages that run on our stack
  $PIP install -q --no-deps -r requirements/optional-nodeps.txt
fi

# mmyolo 0.6.0+mmcv21 (PyPI's wheel, only the mmcv cap raised)
bash tools/install/install_mmyolo.sh "$VENV"

$PIP install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -m mmplugins.info | sed 's/^/[install] /'
touch "$VENV/.mmplugins-installed"
