#!/usr/bin/env bash
# The speed benchmark on an H200 at the GPU preset's sizes (12 + 12 layers, hidden 384, vocabulary 250k, batch 64,
# inputs up to 128 + 128 tokens; beam 4 over 32 sentences writing 48 tokens), every system of bench_speed.py in one
# run, under 5 minutes. Two steps:
#
#   on a host with the project's environment:              bash bench/prepare_h200.sh
#   on the GPU host, with bench/batches and bench/wheels:  bash bench/run_h200.sh
#
# Results: the printed table, $OUT/bench.json and $OUT/bench.log. `bash bench/run_h200.sh --compile` adds
# "ours, recipe, compiled" (torch.compile; its compilation takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G "bench/wheels/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site bench/wheels/*.whl
  export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
PYTHONUNBUFFERED=1 python3 -m bench.bench_speed --preset h200 --batches bench/batches/h200.json --weights random \
  --out "${OUT:-.}/bench.json" "$@" 2>&1 | tee "${OUT:-.}/bench.log"
