#!/usr/bin/env bash
# GPU check: one short epoch per model on CUDA (model and batches asserted on the GPU), epoch times,
# the tutorial MLP's epoch against its 0.5 s target with the loop's GPU syncs counted, a 2-GPU DDP run
# where there are two GPUs, then the speed benchmark on the GPU.
# Uses .venv when there is one, else the machine's python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
export PYTHONUNBUFFERED=1
"$PY" -m core data prepare --no-download
"$PY" -m scripts.gpu_check
"$PY" -m bench.speed --device cuda --repeats 1
