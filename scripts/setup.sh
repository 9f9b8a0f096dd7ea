#!/usr/bin/env bash
# Create or update the project virtual environment at .venv (reused when already up to date).
#
# The full environment needs two install passes: requirements/main.txt normally, then
# requirements/nodeps.txt with --no-deps (onnx2tf and tf-keras pin versions that conflict with the
# rest; see requirements/nodeps.txt). torch is pinned exactly so that pip takes the CPU wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PYTHON_BIN="${PYTHON:-}"
if [ -z "$PYTHON_BIN" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PYTHON_BIN="$cand"; break; fi
  done
fi
if ! "$PYTHON_BIN" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "error: edgeport's pinned environment needs Python 3.11 (found $("$PYTHON_BIN" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi

STAMP_FILE="$VENV/.edgeport-setup"
want="$(cat requirements/main.txt requirements/nodeps.txt pyproject.toml | sha256sum | cut -d' ' -f1)"

# The onnx2tf 2.x converter lives in a managed venv of its own (Python >= 3.12, under
# $EDGEPORT_HOME/backends, default ~/.cache/edgeport), built once from the pinned
# src/edgeport/requirements/onnx2tf.txt and reused. Without a Python >= 3.12 edgeport still works
# (auto falls back to onnx2tf 1.29 and litert-torch); the line printed says how to get one.
managed_envs() {
  "$VENV/bin/edgeport" backends install onnx2tf --quiet \
    || echo "setup: onnx2tf 2.x not available (see the line above); conversions use the other converters"
}

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$want" ]; then
  echo "setup: $VENV is up to date"
  managed_envs
  exit 0
fi

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON_BIN" -m venv "$VENV"
fi
rm -f "$STAMP_FILE"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
echo "setup: installing requirements/main.txt (first run takes a few minutes)"
"${PIP[@]}" install -q -r requirements/main.txt
echo "setup: installing requirements/nodeps.txt with --no-deps"
"${PIP[@]}" install -q --no-deps -r requirements/nodeps.txt
echo "setup: installing edgeport (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -c 'import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith("2.13.0") and "+cpu" in v else f"unexpected torch {v}")'
echo "$want" > "$STAMP_FILE"
managed_envs
echo "setup: done in $(( $(date +%s) - start )) s"
