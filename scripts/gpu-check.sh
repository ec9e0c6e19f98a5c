#!/usr/bin/env bash
# The GPU checks in one device call (well under 5 minutes): install the carried wheels,
# run the CUDA-marked tests, then `streamer bench` on the GPU; results go to $OUT.
#   here:   bash scripts/fetch-gpu-wheels.sh
#   device: run(command="bash scripts/gpu-check.sh", carry=[".whl"], timeout_s=420)
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
{ nvidia-smi; python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0))'; } \
  > "$OUT/device.txt" 2>&1
python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py 2>&1 | tee "$OUT/cuda-tests.txt"
# the model section at large batches in fp32, then the whole bench against the embedded broker
timeout 240 python3 -m streamer bench --sections model,latency,capacity \
  --capacity-steps 2000,5000,10000,20000 --seconds 15 --json "$OUT/bench-gpu.json" \
  2>&1 | tee "$OUT/bench-gpu.txt"
timeout 60 python3 -m streamer model speed --batch 1,256,1024,4096 --device cuda \
  2>&1 | tee "$OUT/model-speed.txt"
