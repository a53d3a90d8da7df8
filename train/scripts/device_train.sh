#!/usr/bin/env bash
# reproduce_cifar.sh's training stages on one lent GPU, fitted into its few minutes.
#
#   OUT=/some/dir DATA=../.devdata/cifar10-train.npz BUDGET=540 scripts/device_train.sh
#
# DATA is the training set as one file (python -m sepnet_train.data pack ...): a GPU machine does
# not see the shared dataset folder. Both models' chains run side by side, since these small
# networks leave a big GPU mostly idle: sepnet_cifar R -> B, and resnet20 R -> (alpha B | offset B).
# Each stage gets a deadline (a share of BUDGET seconds) and, after epoch 0, trims its epochs to
# what fits (train.py --deadline), so the cosine schedule still anneals fully. Every 20 s the run
# folders are tarred into $OUT (one tar per run), so a cut-off still returns every finished epoch.
# Unpack them into ~/sepnet-runs and continue with reproduce_cifar.sh's later stages (export,
# engine_eval, analysis, results): the recipes here are the same but for the epoch counts.
set -uo pipefail
main() {
cd "$(dirname "$0")/.."
: "${OUT:?OUT must name the folder the run tars are written to}"
DATA=${DATA:-../.devdata/cifar10-train.npz}
RUNS=${RUNS:-$HOME/sepnet-runs}
BUDGET=${BUDGET:-540}
T0=$(date +%s)
at() { echo $((T0 + $1 * BUDGET / 100)); }  # a deadline at this percentage of the budget
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
T="python3 -m sepnet_train.train --no-progress --resume --threads 2 --data-path $DATA ${EXTRA:-}"
mkdir -p "$OUT" "$RUNS"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
python3 -m sepnet_train.data decode "$DATA" 2>&1 | tail -1  # once, into the cache all stages read

snapshot() {  # 3 tars + 4 logs: $OUT brings back at most 8 files, 16 MiB each
  pack_runs sepnet_cifar-R sepnet_cifar-R
  pack_runs sepnet_cifar-B sepnet_cifar-B
  pack_runs resnet20 resnet20-R resnet20-B resnet20-B-offset
}
pack_runs() {
  local name=$1 r have=()
  shift
  for r in "$@"; do [ -f "$RUNS/$r/checkpoint.pth" ] && have+=("$r"); done
  [ ${#have[@]} -gt 0 ] || return 0
  tar -cf "$OUT/$name.tar.part" -C "$RUNS" --exclude='*.tmp' "${have[@]}" \
    && mv "$OUT/$name.tar.part" "$OUT/$name.tar"
}
( while sleep 20; do snapshot; done ) & local snap=$!

sepnet() {
  $T --model sepnet_cifar --epochs 200 --lr 0.1 --wd 5e-4 --deadline "$(at 66)" \
    --output-dir "$RUNS/sepnet_cifar-R"
  $T --model sepnet_cifar --finetune-from "$RUNS/sepnet_cifar-R/checkpoint.pth" --binarize alpha \
    --policy all --epochs 40 --lr 0.01 --warmup-epochs 0 --deadline "$(at 100)" \
    --output-dir "$RUNS/sepnet_cifar-B"
}
resnet20() {
  $T --model resnet20 --epochs 200 --lr 0.1 --wd 5e-4 --deadline "$(at 55)" \
    --output-dir "$RUNS/resnet20-R"
  $T --model resnet20 --finetune-from "$RUNS/resnet20-R/checkpoint.pth" --binarize alpha \
    --epochs 40 --lr 0.01 --warmup-epochs 0 --deadline "$(at 100)" \
    --output-dir "$RUNS/resnet20-B" > "$OUT/resnet20-B.log" 2>&1 &
  $T --model resnet20 --finetune-from "$RUNS/resnet20-R/checkpoint.pth" --binarize offset \
    --offset 0.09 --epochs 40 --lr 0.01 --warmup-epochs 0 --deadline "$(at 100)" \
    --output-dir "$RUNS/resnet20-B-offset" > "$OUT/resnet20-B-offset.log" 2>&1 &
  wait
}
sepnet > "$OUT/sepnet_cifar.log" 2>&1 &
local a=$!
resnet20 > "$OUT/resnet20.log" 2>&1 &
local b=$!
while kill -0 $a 2>/dev/null || kill -0 $b 2>/dev/null; do
  sleep 30
  echo "t+$(( $(date +%s) - T0 ))s: $(tail -qn1 "$OUT"/*.log | cut -c1-150 | tr '\n' '|')"
done
wait $a $b
kill $snap 2>/dev/null
snapshot
echo "done in $(( $(date +%s) - T0 )) s"; ls -la "$OUT"
}
main "$@"
