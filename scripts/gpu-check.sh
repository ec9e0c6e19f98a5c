#!/usr/bin/env bash
# The GPU checks in one device call (230 s on an H100 host, machine start not counted): install the carried wheels, run the
# CUDA-marked tests, then `streamer bench` on the GPU. Everything it reports goes to $OUT
# (at most 8 files come back from the device machine, so the daemons' logs go as one .tgz).
#   here:   bash scripts/fetch-gpu-wheels.sh
#   device: run(command="bash scripts/gpu-check.sh", carry=[".whl"], timeout_s=540)
# A dry run of the same steps on a CPU host, small:
#   PY=.venv/bin/python NO_WHEELS=1 CAPACITY_STEPS=200,400 WORKERS=2 LOAD_PROCS=2 \
#     OUT=/tmp/gpu-dry bash scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
PY=${PY:-python3}
WORKERS=${WORKERS:-8}            # daemon processes in one consumer group, sharing the GPU
LOAD_PROCS=${LOAD_PROCS:-4}      # processes sending the readings
CAPACITY_STEPS=${CAPACITY_STEPS:-10000,20000,30000}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
. scripts/device-wheels.sh
{ nvidia-smi; nproc; "$PY" -c 'import torch; print(torch.__version__,
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")'; } \
  > "$OUT/device.txt" 2>&1
timeout 120 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py 2>&1 \
  | tee "$OUT/cuda-tests.txt"
# model windows/s in fp32 and bf16 up to large batches; latency at 64 strands, one daemon
timeout 180 "$PY" -m streamer bench --sections model,latency --torch-threads 1 \
  --model-batches 1,64,256,1024,4096,16384 --seconds 20 \
  --json "$OUT/bench-model-latency.json" 2>&1 | tee "$OUT/bench-model-latency.txt"
# capacity: several daemon workers share the GPU, as a GPU host would run them
rm -rf /tmp/bench-logs
command -v nvidia-smi >/dev/null && \
  { timeout 330 nvidia-smi dmon -s um -d 2 > "$OUT/gpu-dmon.txt" 2>&1 & }
timeout 330 "$PY" -m streamer bench --sections capacity --torch-threads 1 \
  --workers "$WORKERS" --load-procs "$LOAD_PROCS" --capacity-steps "$CAPACITY_STEPS" \
  --capacity-seconds 15 --logs /tmp/bench-logs \
  --json "$OUT/bench-capacity.json" 2>&1 | tee "$OUT/bench-capacity.txt"
tar czf "$OUT/bench-logs.tgz" -C /tmp bench-logs 2>/dev/null
ls -l "$OUT"
