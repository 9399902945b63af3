#!/usr/bin/env bash
# The quick image suite on a GPU: every stack with --device cuda, then the summary table.
# Usage: scripts/gpu_check.sh [extra `twinbench run` options]
# Needs CUDA builds of the frameworks (torch with CUDA, tensorflow[and-cuda], jax[cuda12]);
# with CPU-only wheels each cell fails with "sees no GPU", which the table shows.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
exec ${TWINBENCH:-.venv/bin/twinbench} run --tasks image --device cuda --latency-calls 300 \
    --out "runs/gpu-check-$(date +%Y%m%d-%H%M%S)" "$@"
