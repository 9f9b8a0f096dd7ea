#!/usr/bin/env bash
# The test suite as CI runs it: everything not marked slow, within a time budget of well under 30 min.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -q -m "not slow" --timeout=900 "$@"
