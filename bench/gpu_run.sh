#!/usr/bin/env bash
# One prepared GPU session, about 10 minutes on an H100/H200 (each step has its own timeout,
# and a step cut short writes what finished, marked partial), most important first:
#   1. the seed comparison at full float32 (the parity setting), every implementation;
#   2. the same at TF32 (parity reported, unjudged); then every row beside its bf16 twin
#      (mixed precision: parity judged in bf16's tolerances, speed paired with float32);
#   3. the ablation: each speed lever on and off (CUDA graphs per step and per epoch, the
#      whole-epoch call, lax.scan unroll, XLA command buffers, TF32, torch.compile's modes);
#   4. the profile of the rows with speed targets, one process per framework: what bounds
#      each (bench/profile_rows.py);
#   5. data parallel over every GPU (a power of two, at most 8: it must divide the batch of
#      32), each row beside its twin, parity judged (skipped on a machine with one GPU);
#   6. only with EXTRAS=1 (about 2.5 more minutes): the two ways of compiling Flax NNX
#      (bench/nnx_styles.py) and the two sweeps of the CPU reports.
# Everything lands under $OUT (default ./gpu-out); report folders are tarred into
# $OUT/reports.tgz after each step, so a run cut short still returns what finished.
#   GRU_DATA_DIR=/path/to/data OUT=/tmp/gpu bash bench/gpu_run.sh
# Through the device tool (the text travels in an ignored folder; at most 8 files come back):
#   mkdir -p .gpu-data && cp ../shared/data/timemachine.txt .gpu-data/ && echo /.gpu-data/ >> .git/info/exclude
#   run(command="GRU_DATA_DIR=.gpu-data bash bench/gpu_run.sh", carry=[".gpu-data"], timeout_s=600)
#   then: tar -xzf <files_at>/reports.tgz -C reports/ (renaming each folder <date>-<gpu>-...)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}                 # the device tool sets $OUT
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-gpu}                 # DEVICE=cpu SEED_EPOCHS=2 ... for a dry run of this script
SEED_EPOCHS=${SEED_EPOCHS:-500}; TF32_EPOCHS=${TF32_EPOCHS:-500}; BENCH_EPOCHS=${BENCH_EPOCHS:-30}
DP_EPOCHS=${DP_EPOCHS:-100}; BF16_EPOCHS=${BF16_EPOCHS:-100}
SWEEP_IMPLS=torch-scratch,torch-cudnn,jax-scratch,flax-gru
R=$(mktemp -d)
pack() { tar -C "$R" -czf "$OUT/reports.tgz" . ; }
step() { echo "== $1 ($(date +%T))" | tee -a "$OUT/log.txt"; }
run() { local t=$1; shift; timeout -s INT -k 20 "$t" "$PY" "$@" >> "$OUT/log.txt" 2>&1; echo "rc=$?" >> "$OUT/log.txt"; pack; }
{ nvidia-smi; $PY -c "import torch, jax, flax, optax, numpy; print('torch', torch.__version__, 'jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__); print(jax.devices(), torch.cuda.get_device_name())"; } > "$OUT/env.txt" 2>&1

step "seed, $SEED_EPOCHS epochs, highest"
run 140 compare.py --preset seed --epochs "$SEED_EPOCHS" --device "$DEVICE" --out "$R/seed-highest"
step "seed, $TF32_EPOCHS epochs, tf32"
run 90 compare.py --preset seed --epochs "$TF32_EPOCHS" --precision tf32 --device "$DEVICE" --out "$R/seed-tf32"
step "seed, $BF16_EPOCHS epochs, bf16 beside float32"
run 120 compare.py --preset seed --epochs "$BF16_EPOCHS" --precision bf16 --device "$DEVICE" --out "$R/seed-bf16"
step "ablation, $BENCH_EPOCHS epochs a cell, tf32"
run 170 compare.py --ablation --preset seed --epochs "$BENCH_EPOCHS" --precision tf32 --device "$DEVICE" \
  --out "$R/ablation"
for side in torch jax; do  # one process per framework: one profiler holds CUPTI at a time
  step "profile of the $side rows, tf32"
  rows=$([ $side = torch ] && echo torch-reference,torch-scratch,torch-cudnn || echo jax-scratch,flax-gru)
  timeout -s INT -k 10 40 $PY bench/profile_rows.py --impls $rows --precision tf32 --device "$DEVICE" \
    --out "$OUT/profile-$side.md" >> "$OUT/log.txt" 2>&1
  echo "rc=$?" >> "$OUT/log.txt"
done
# Data parallel: every GPU a device (DDP in a process per GPU, NCCL; JAX's Mesh over the
# GPUs), the global batch of 32 split over them. The CPU dry run uses two host devices.
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "$DEVICE" = cpu ] && NGPU=2
DP=1; while [ $((DP * 2)) -le "$NGPU" ] && [ $((DP * 2)) -le 8 ]; do DP=$((DP * 2)); done
if [ "$DP" -ge 2 ]; then
  step "data parallel over $DP devices, $DP_EPOCHS epochs, highest"
  run 150 compare.py --preset seed --epochs "$DP_EPOCHS" --devices "$DP" --impls "$SWEEP_IMPLS" --device "$DEVICE" \
    --out "$R/seed-dp$DP"
else
  step "data parallel skipped: $NGPU GPU here, it needs two"
fi
if [ "${EXTRAS:-0}" = 1 ]; then
  step "nnx styles"
  timeout -s INT -k 10 45 $PY bench/nnx_styles.py --epochs "$BENCH_EPOCHS" --device "$DEVICE" \
    --out "$OUT/nnx-styles.md" >> "$OUT/log.txt" 2>&1
  echo "rc=$?" >> "$OUT/log.txt"
  step "sweep num_hiddens, tf32"
  run 55 compare.py --sweep num_hiddens=64,128,256,512,1024 --impls "$SWEEP_IMPLS" --precision tf32 \
    --device "$DEVICE" --out "$R/sweep-num_hiddens"
  step "sweep batch_size on the book, tf32"
  run 55 compare.py --preset book --sweep batch_size=8,16,32,64,128,256,512 --impls "$SWEEP_IMPLS" \
    --precision tf32 --device "$DEVICE" --out "$R/sweep-batch_size"
fi
echo "done ($(date +%T))" >> "$OUT/log.txt"
