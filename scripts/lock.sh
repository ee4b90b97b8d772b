#!/usr/bin/env bash
# Regenerate requirements.lock: resolve pyproject.toml's dependencies (with the dev and voice extras) afresh in a
# throwaway venv and pin every installed distribution. Run with the Python CI uses (3.11) on Linux x86_64.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q '.[dev,voice]'
{
  echo "# Pinned versions that setup.sh and CI install (pip constraints: pip install -c requirements.lock -e '.[dev,voice]')."
  echo "# Regenerate after changing dependencies in pyproject.toml: ./scripts/lock.sh (Python 3.11, Linux x86_64)."
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable | grep -v '^switchboard=='
} > requirements.lock
echo "requirements.lock: $(grep -vc '^#' requirements.lock) pins"
