#!/usr/bin/env bash
# One prepared GPU session (about 8 minutes expected on an H100/H200; its timeouts cap it
# at 12.5): the seed comparison at full float32 (the parity setting), a TF32 throughput
# run with the reference row, and a lax.scan unroll sweep for the JAX paths. Everything
# lands under $OUT (default ./gpu-out); report folders are tarred into $OUT/reports.tgz
# after each step, so a run cut short still returns what finished.
#   GRU_DATA_DIR=/path/to/data OUT=/tmp/gpu bash bench/gpu_run.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-gpu}                 # DEVICE=cpu SEED_EPOCHS=2 ... for a dry run of this script
SEED_EPOCHS=${SEED_EPOCHS:-500}; TF32_EPOCHS=${TF32_EPOCHS:-60}; SWEEP_EPOCHS=${SWEEP_EPOCHS:-30}
R=$(mktemp -d)
pack() { tar -C "$R" -czf "$OUT/reports.tgz" . ; }
{ nvidia-smi; $PY -c "import torch, jax, flax, optax, numpy; print('torch', torch.__version__, 'jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__); print(jax.devices(), torch.cuda.get_device_name())"; } > "$OUT/env.txt" 2>&1

echo "== seed, highest" | tee -a "$OUT/log.txt"
timeout -s INT -k 20 330 $PY compare.py --preset seed --epochs $SEED_EPOCHS --device $DEVICE --out "$R/seed-highest" >> "$OUT/log.txt" 2>&1
echo "rc=$?" >> "$OUT/log.txt"; pack

echo "== seed sizes, $TF32_EPOCHS epochs, tf32" | tee -a "$OUT/log.txt"
timeout -s INT -k 20 120 $PY compare.py --preset seed --epochs $TF32_EPOCHS --precision tf32 --device $DEVICE \
  --out "$R/seed$TF32_EPOCHS-tf32" >> "$OUT/log.txt" 2>&1
echo "rc=$?" >> "$OUT/log.txt"; pack

for prec in tf32 highest; do
  for u in 1 5 35; do
    echo "== unroll $u, $prec" >> "$OUT/sweep.txt"
    timeout 45 $PY compare.py --bench --preset seed --epochs $SWEEP_EPOCHS --device $DEVICE --precision $prec \
      --unroll $u --impls jax-scratch,flax-gru,flax-grucell >> "$OUT/sweep.txt" 2>&1
  done
done
echo done >> "$OUT/log.txt"
