#!/usr/bin/env bash
# The test suite as CI runs it: everything not marked slow, within a time budget of well under 30 min.
set -euo pipefail
cd "$(dirname "$0")/.."

# The remote-device test talks to an sshd of its own on 127.0.0.1; install the server if missing.
if [ ! -x /usr/sbin/sshd ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing openssh-server for the remote-device test"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
fi

# The report-page test loads OUT/report.html in a headless browser; install Debian's chromium if missing
# (the test skips, saying why, where it cannot be installed).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing chromium for the report-page browser test"
  { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
    echo "setup: could not install chromium; the browser test will be skipped"
fi

# Stage 1, the fast tier (what `make test-fast` runs, with the full fuzzing budget): a broken unit fails
# the run in a minute. Stage 2, everything else that is not marked slow.
.venv/bin/python -m pytest -q -m "fast and not slow" --timeout=300 "$@"
exec .venv/bin/python -m pytest -q -m "not fast and not slow" --timeout=900 "$@"
