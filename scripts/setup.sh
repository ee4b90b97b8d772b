#!/usr/bin/env bash
# Create .venv and install Switchboard with its test tools. Idempotent; needs Python ≥ 3.11 and a package index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Switchboard needs Python >= 3.11")'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The tested versions: requirements.lock pins every package (./scripts/lock.sh regenerates it).
.venv/bin/python -m pip install -q -c requirements.lock -e '.[dev,voice]'
# The dashboard's browser tests drive Debian's Chromium (Playwright's own browser download cannot work here).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup: installing chromium for the dashboard's browser tests" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || echo "setup: could not install chromium; the browser tests will skip (and fail under CI)" >&2
fi
