#!/usr/bin/env bash
# Issue 19 item 3: the accelerator check, as one prepared script for a lent GPU machine
# (`run` tool of the device library; budget: ≤ 5 minutes of device time once installed).
# It installs JAX with CUDA into a fresh venv next to the project, then measures on the GPU:
#   1. `tbench bench --quick --only step` with seed batching on (TBENCH_BATCH_SEEDS=1): the
#      engine, its seeds sequential and batched, the Flax-tutorial loop, MFU; the target is
#      seeds-batched ≥ 5× the sequential tutorial loop (runner.targets judges it on accelerators);
#   2. the quick suite's wall time, seeds batched, into a fresh store.
# Results go to $OUT (the device tool brings them back) and results/bench/.
# Status: written 2026-12-02 without a GPU to run it on (none was lent that session); only its
# syntax has been checked. Run it once a GPU is lent, and commit what it writes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/bench}"
mkdir -p "$OUT"
python3 -m venv .venv-gpu
.venv-gpu/bin/pip install -q --upgrade pip
.venv-gpu/bin/pip install -q -e '.[dev]'
# The CUDA wheels' extra follows the machine's CUDA major version (13 on recent drivers).
.venv-gpu/bin/pip install -q 'jax[cuda13]' || .venv-gpu/bin/pip install -q 'jax[cuda12]'
.venv-gpu/bin/python -c 'import jax; print(jax.devices()); assert jax.default_backend() == "gpu"'
export TBENCH_CACHE_DIR="$(mktemp -d)"
export TBENCH_BATCH_SEEDS=1
date=$(date +%F)
timeout 240 .venv-gpu/bin/tbench bench --quick --only step -o "$OUT/gpu-$date-step.json"
start=$(date +%s)
timeout 300 .venv-gpu/bin/tbench run suites/quick.yaml --quiet --store "$(mktemp -d)/quick.sqlite" \
  | tee "$OUT/gpu-$date-quick-suite.log"
echo "quick suite wall: $(( $(date +%s) - start )) s (seeds batched)" | tee -a "$OUT/gpu-$date-quick-suite.log"
