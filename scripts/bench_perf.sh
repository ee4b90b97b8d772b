#!/usr/bin/env bash
# The performance headline (issue 14) in one command, for a quiet machine: the audio path (3 runs) and the server
# beside the floor at N = 10, 50, 100, 200, 300 (3 runs each, py-spy profile at N=100), about 30 minutes.
# Output: OUT/audio.txt and OUT/server.txt (each ends with its --json line), OUT/profile-*.txt (collapsed stacks).
#     scripts/bench_perf.sh [OUT]            (default OUT: bench-results/<UTC time>)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
export MALLOC_ARENA_MAX=2
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD)" | tee "$out/machine.txt"
.venv/bin/python scripts/bench_audio.py --runs 3 --minutes 10 --json | tee "$out/audio.txt"
.venv/bin/python scripts/bench_server.py --floor --calls 10 50 100 200 300 --runs 3 --profile "$out/profile.txt" \
    --json | tee "$out/server.txt"
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
