#!/usr/bin/env bash
# The test suite as CI runs it: everything not marked slow, within a time budget of well under 30 min.
set -euo pipefail
cd "$(dirname "$0")/.."

# The remote-device test talks to an sshd of its own on 127.0.0.1; install the server if missing.
if [ ! -x /usr/sbin/sshd ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing openssh-server for the remote-device test"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
fi

exec .venv/bin/python -m pytest -q -m "not slow" --timeout=900 "$@"
