#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite with coverage. This is exactly what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check .
# Each recogniser thread's ONNX runtime otherwise gets its own malloc arenas, which are never given back.
export MALLOC_ARENA_MAX=2
set +e
.venv/bin/python -m pytest -q --cov --cov-report=term-missing:skip-covered "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  rc=0
fi
exit "$rc"
