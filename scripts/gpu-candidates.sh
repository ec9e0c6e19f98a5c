#!/usr/bin/env bash
# One device call that judges training recipes by several runs each instead of one (single runs
# of one recipe differ a lot: docs/training.md): the CUDA tests, and beside them one training
# run per CONFIG:SEED[:FLAG] on the GPU (FLAG: one more `streamer train` flag, e.g.
# default:0:--ema-decay=0.999), all on the same heats (README step 1), each followed by its
# alarm thresholds chosen on development seed 8001 on the host's CPU cores (README step 2).
# Everything comes back as one .tgz (the device tool returns at most 8 files).
#   here:   bash scripts/fetch-gpu-wheels.sh
#   device: run(command="bash scripts/gpu-candidates.sh", carry=[".whl"], timeout_s=590)
#   then:   tar xzf candidates.tgz; compare the runs on seed 8002 (docs/training.md)
# A dry run on a CPU host, small:
#   PY=.venv/bin/python NO_WHEELS=1 DEVICE=cpu RUNS="slow-baseline:0 default:0" HOURS=2 \
#     EPOCHS=1 WINDOWS=640 DEV_STRANDS=1 DEV_HOURS=1 OUT=/tmp/cand-dry bash scripts/gpu-candidates.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
PY=${PY:-python3}
RUNS=${RUNS:-slow-baseline:0 slow-baseline:1 slow-baseline:2 slow-baseline:3 default:0 default:1}
DEVICE=${DEVICE:-cuda}
HOURS=${HOURS:-24}          # training heats per strand (README step 1)
EPOCHS=${EPOCHS:-10}
WINDOWS=${WINDOWS:-32000}   # windows per epoch (configs/train/default.yaml)
DEV_STRANDS=${DEV_STRANDS:-6}
DEV_HOURS=${DEV_HOURS:-8}
TRAIN_LIMIT=${TRAIN_LIMIT:-300}   # seconds; a run past either limit is killed and reported
CHOOSE_LIMIT=${CHOOSE_LIMIT:-240}
CHOOSE=${CHOOSE:-1}               # 0: train only (members of an ensemble get its thresholds)
CUDA_TESTS=${CUDA_TESTS:-1}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
. scripts/device-wheels.sh
work=$(mktemp -d)
mkdir -p "$work/cand"
{ nvidia-smi; nproc; git rev-parse HEAD 2>/dev/null; git status --short 2>/dev/null
  "$PY" -c 'import torch; print(torch.__version__,
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")'; } \
  > "$work/cand/device.txt" 2>&1
if [ "$DEVICE" = cuda ] && [ "$CUDA_TESTS" = 1 ]; then
  timeout 200 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py \
    > "$work/cand/cuda-tests.txt" 2>&1 &
fi
t0=$(date +%s)
"$PY" -c 'import sys; from simulators.cli import main; sys.argv[0] = "caster-sim"; main()' \
  generate --out "$work/train" --config configs/sim/default.yaml --seed 11 --hours "$HOURS" \
  > "$work/cand/generate.log" 2>&1 || { cat "$work/cand/generate.log"; exit 1; }
echo "training heats: $(( $(date +%s) - t0 )) s"
choose() {  # NAME THREADS: alarm thresholds on the development heats, written into NAME.pt
  local t2; t2=$(date +%s)
  timeout "$CHOOSE_LIMIT" "$PY" -m streamer.evaluation.thresholds "$work/cand/$1.pt" \
    --seed 8001 --strands "$DEV_STRANDS" --hours "$DEV_HOURS" --threads "$2" \
    --grid 0.5:0.98:0.02 --json "$work/cand/$1-thresholds.json" --write \
    > "$work/cand/$1-thresholds.log" 2>&1
  echo "$1: thresholds rc $? in $(( $(date +%s) - t2 )) s"
}
for run in $RUNS; do
  IFS=: read -r config seed flag <<< "$run"
  name="$config-s$seed${flag:+-${flag#--}}"
  (
    t1=$(date +%s)
    timeout "$TRAIN_LIMIT" "$PY" -m streamer train --data "$work/train" \
      --config configs/train/default.yaml --model-config "configs/model/$config.yaml" \
      --seed "$seed" --epochs "$EPOCHS" --windows-per-epoch "$WINDOWS" --device "$DEVICE" \
      --threads 2 -q ${flag:+"$flag"} --out "$work/cand/$name.pt" \
      --report "$work/cand/$name-train.json" > "$work/cand/$name-train.log" 2>&1
    echo "$name: train rc $? in $(( $(date +%s) - t1 )) s"
    [ -f "$work/cand/$name.pt" ] && [ "$CHOOSE" = 1 ] || exit 0
    choose "$name" 2
  ) &
done
wait
# ENSEMBLES="NAME:RUN,RUN,... ...": each averages the named runs (the names above) and gets its
# own thresholds (CHOOSE_THREADS each)
for spec in ${ENSEMBLES:-}; do
  ename=${spec%%:*} members=${spec#*:}
  (
    "$PY" -m streamer model ensemble --out "$work/cand/$ename.pt" \
      $(for m in ${members//,/ }; do echo "$work/cand/$m.pt"; done) \
      > "$work/cand/$ename-ensemble.log" 2>&1 || { echo "$ename: ensemble failed"; exit 0; }
    choose "$ename" "${CHOOSE_THREADS:-4}"
  ) &
done
wait
tail -3 "$work/cand/cuda-tests.txt" 2>/dev/null
tar czf "$OUT/candidates.tgz" -C "$work" cand
ls -l "$OUT"
