#!/usr/bin/env bash
# reproduce_cifar.sh's training stages on one lent GPU, fitted into its few minutes.
#
#   OUT=/some/dir DATA=../.devdata/cifar10-train.npz BUDGET=540 scripts/device_train.sh
#
# Session 6 (the committed models): BUDGET=530 R_SHARE=72 CHAINS="sepnet resnet20_proj3" PLAIN=0,
# then SKIP_R=1 B_BATCH=128 B_EPOCHS=120 BUDGET=230 with RUNS holding the two R checkpoints.
# Distilled from two networks (the next GPU slot): CHAINS="sepnet_kd resnet20_proj3_kd" PLAIN=0
# R_SHARE=75 B_METHOD=ste B_BATCH=128 B_LR=0.02 B_EPOCHS=300 BUDGET=530.
# Learned patterns for sepnet_cifar from the committed R file on a fresh machine:
# SKIP_R=1 CHAINS=sepnet PLAIN=0 B_METHOD=ste B_BATCH=128 B_EPOCHS=100 BUDGET=500.
# Session 11 (the refined ResNet-20 that meets 88%), two calls on one warm machine:
# BUDGET=530 CHAINS="resnet20_proj3 resnet20_proj3_r128" PLAIN=0 R_SHARE=55 R_EPOCHS=300
# B_METHOD=ste B_BATCH=128 B_LR=0.02 B_EPOCHS=300, then BUDGET=270 CHAINS="resnet20_proj3_r128
# sepnet" SKIP_R=1 (same B_*): folders unpacked as *-h200 (results.py's H200_STARTS).
# SWA_EPOCHS=N adds weight averaging after each B refinement (train.py --swa, into *-swa folders),
# in the last SWA_SHARE % of the budget.
#
# DATA is the training set as one file (python -m sepnet_train.data pack ...): a GPU machine does
# not see the shared dataset folder. What travels is capped at 64 MiB: stage checkpoints with
# python -m sepnet_train.device_stage and make room with scripts/device_trim.sh (RESULTS.md,
# "Sessions 36-37"). All chains run side by side, since one of these small
# networks leaves a big GPU partly idle:
#   sepnet_cifar R -> B           and resnet20 R -> (alpha B | offset B), with $AUG (the recipe
#                                 that ships: Cutout 16 + label smoothing 0.1);
#   resnet20_proj3 R -> B         (the authors' 3x3 projection shortcuts; R with $AUG, the alpha
#                                 refinement without it, as reproduce_cifar.sh has it);
#   sepnet_cifar-R-plain, resnet20-R-plain: the paper's recipe (crop + flip only), same slot,
#                                 as the ablation beside it.
# Four processes share the GPU about evenly (an H200 ran sepnet_cifar at batch 128 at ~7 s/epoch
# each, against ~4 s with two): drop the *-plain runs (PLAIN=0), or a chain (CHAINS=sepnet), when
# epochs matter more than the ablation.
# Each stage gets a deadline (a share of BUDGET seconds) and, after epochs 1 and 4, trims its epochs to
# what fits (train.py --deadline), so the cosine schedule still anneals fully. Every 20 s the run
# folders are tarred into $OUT, so a cut-off still returns every finished epoch.
# Unpack them into ~/sepnet-runs and continue with reproduce_cifar.sh's later stages (export,
# engine_eval, analysis, results): the recipes here are reproduce_cifar.sh's but for the epoch
# counts, and the batch where reproduce_cifar.sh still lists a session-4 run at 128.
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
AUG=${AUG:---cutout 16 --label-smoothing 0.1}
R_SHARE=${R_SHARE:-70}  # % of BUDGET for the R stages; the B fine-tunes take the rest
LOGS=$RUNS/logs
mkdir -p "$OUT" "$RUNS" "$LOGS"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
python3 -m sepnet_train.data decode "$DATA" 2>&1 | tail -1  # once, into the cache all stages read

snapshot() {  # a tar per chain that ran (none for runs not started): $OUT brings back at most
  # 8 files, 16 MiB each (a sepnet run is ~6-9 MB, 14 MB with weight averaging's second copy of
  # the weights: it gets a tar of its own)
  pack_runs sepnet_cifar-R sepnet_cifar-R
  pack_runs sepnet_cifar-B sepnet_cifar-B sepnet_cifar-B-ste
  pack_runs sepnet_cifar-B-swa sepnet_cifar-B-swa sepnet_cifar-B-ste-swa
  pack_runs sepnet_cifar-R-plain sepnet_cifar-R-plain
  pack_runs sepnet_kd sepnet_cifar-R-kd sepnet_cifar-R-kd-B sepnet_cifar-R-kd-B-ste
  pack_runs resnet20_proj3_kd resnet20_proj3-R-kd-gpu
  pack_runs sepnet_long3 sepnet_cifar-R-kd-long3
  pack_runs resnet20_long3 resnet20_proj3-R-kd-long3
  pack_runs sepnet_b_long3 sepnet_cifar-B-ste-kd-long3
  pack_runs resnet20 resnet20-R resnet20-B resnet20-B-offset resnet20-R-plain resnet20-B-ste
  pack_runs resnet20_proj3 resnet20_proj3-R resnet20_proj3-B-plain resnet20_proj3-B-plain-ste \
    resnet20_proj3-B-plain-swa resnet20_proj3-B-plain-ste-swa resnet20_proj3-R128 resnet20_proj3-R128-B-ste
  tar -cf "$OUT/logs.tar.part" -C "$RUNS" logs && mv "$OUT/logs.tar.part" "$OUT/logs.tar"
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

# Batches of 512 (learning rates scaled linearly from 128's, 5 warm-up epochs): these networks are
# too small to fill the GPU at 128, so a step costs about the same at 512 and an epoch 4x less.
BATCH=${BATCH:-512}
scaled() { python3 -c "print($1 * $BATCH / 128)"; }
R="--epochs ${R_EPOCHS:-200} --batch-size $BATCH --lr $(scaled 0.1) --warmup-epochs ${WARMUP:-5}"
R="$R --wd 5e-4 --deadline $(at "$R_SHARE")"
# The binarized fine-tunes may take their own batch (B_BATCH); SKIP_R=1 runs only them, from R
# checkpoints already in $RUNS (session 6's second call: B_BATCH=128 B_EPOCHS=120 BUDGET=230).
B_BATCH=${B_BATCH:-$BATCH}
# B_LR: the refinements' peak lr at batch 128 (scaled to B_BATCH); 0.02 is the learned-pattern CPU run's.
B="--epochs ${B_EPOCHS:-30} --batch-size $B_BATCH --lr $(BATCH=$B_BATCH; scaled "${B_LR:-0.01}") --warmup-epochs 0"
# SWA_EPOCHS>0: the refinements end at (100 - SWA_SHARE) % of the budget, weight averaging
# (constant lr, half the refinement's peak) takes the rest.
SWA_EPOCHS=${SWA_EPOCHS:-0}
SWA_SHARE=$([ "$SWA_EPOCHS" -gt 0 ] && echo "${SWA_SHARE:-25}" || echo 0)
B="$B --deadline $(at $((100 - SWA_SHARE)))"
SWA="--epochs $SWA_EPOCHS --batch-size $B_BATCH --lr $(BATCH=$B_BATCH; scaled 0.005) --swa"
SWA="$SWA --lr-schedule constant --warmup-epochs 0.3 --swa-bn-batches 100 --deadline $(at 100)"
swa() {  # swa MODEL B_RUN_FOLDER [extra flags]: average on from a finished refinement
  local model=$1 run=$2
  shift 2
  [ "$SWA_EPOCHS" -gt 0 ] || return 0
  $T --model "$model" --finetune-from "$RUNS/$run/checkpoint.pth" $SWA "$@" \
    --binarize "$B_METHOD" --output-dir "$RUNS/$run-swa"
}
# B_METHOD=ste refines with learned patterns (train.py --binarize ste) into *-B-ste folders
# (resnet20's offset arm is the repository's method and stays as it is).
B_METHOD=${B_METHOD:-alpha}
BSUF=$([ "$B_METHOD" = ste ] && echo -ste || true)
SEPNET_SKIP_R=${SEPNET_SKIP_R:-${SKIP_R:-0}}  # SEP-Net's R may be skipped alone (from the committed file)
recover_r() {  # recover_r CHECKPOINT: the 146-epoch R file (shipped until session 24) as a trainable model
  [ -f "$1" ] || python3 -m sepnet_train.recover snapshots/sepnet_cifar-R-146ep.sepnet \
    --data-path "$DATA" --out "$1"
}
sepnet() {
  local SKIP_R=$SEPNET_SKIP_R
  # No R checkpoint on a fresh machine: rebuild it from the committed R file.
  [ "${SKIP_R:-0}" = 1 ] && recover_r "$RUNS/sepnet_cifar-R/checkpoint.pth"
  [ "${SKIP_R:-0}" = 1 ] || $T --model sepnet_cifar $R $AUG --output-dir "$RUNS/sepnet_cifar-R"
  $T --model sepnet_cifar --finetune-from "$RUNS/sepnet_cifar-R/checkpoint.pth" $B $AUG \
    --binarize "$B_METHOD" --policy all --output-dir "$RUNS/sepnet_cifar-B$BSUF"
  swa sepnet_cifar "sepnet_cifar-B$BSUF" $AUG --policy all
}
# sepnet_kd: the sepnet_cifar R from scratch ($R, $AUG) distilled from the mean logits of the
# shipped R (the distilled one, train/snapshots/sepnet_cifar-R-kd-ens.pth) and the ResNet-32 R
# (train/snapshots/): 92.14% together on the validation split (RESULTS.md, session 25); then the
# B refinement ($B, B_METHOD) from it, distilled from the same pair too (as the B shipped since
# session 26) unless B_TEACH=0. The CPU's sepnet_r_kd_ens only fine-tunes the committed R this way.
teachers() {  # the pair, restored from the snapshots where $RUNS lacks them
  local r
  for r in sepnet_cifar-R-kd-ens resnet32_proj3-R; do
    [ -f "$RUNS/$r/checkpoint.pth" ] || { mkdir -p "$RUNS/$r" && cp "snapshots/$r.pth" "$RUNS/$r/checkpoint.pth"; }
  done
  TEACHERS="$RUNS/sepnet_cifar-R-kd-ens/checkpoint.pth $RUNS/resnet32_proj3-R/checkpoint.pth"
}
sepnet_kd() {
  teachers
  local bteach=$([ "${B_TEACH:-1}" = 1 ] && echo "--teacher $TEACHERS" || true)
  [ "${SKIP_R:-0}" = 1 ] || $T --model sepnet_cifar $R $AUG --teacher $TEACHERS \
    --output-dir "$RUNS/sepnet_cifar-R-kd"
  $T --model sepnet_cifar --finetune-from "$RUNS/sepnet_cifar-R-kd/checkpoint.pth" $B $AUG \
    --binarize "$B_METHOD" --policy all $bteach --output-dir "$RUNS/sepnet_cifar-R-kd-B$BSUF"
}
# resnet20_proj3_kd: the authors' ResNet-20 R from scratch ($R, $AUG) distilled from the same pair,
# the GPU twin of the CPU's resnet20_proj3_r_kd_long; the whole budget, no refinement.
resnet20_proj3_kd() {
  teachers
  local R="${R% --deadline *} --deadline $(at 100)"
  $T --model resnet20_proj3 $R $AUG --teacher $TEACHERS --output-dir "$RUNS/resnet20_proj3-R-kd-gpu"
}
# sepnet_long3: reproduce_cifar.sh's sepnet_r_kd_long3 (the shipped R distilled for 60 epochs at
# lr 0.05 from three teachers), resumed from its checkpoint in $RUNS (train/snapshots on a fresh
# machine): its recipe exactly, batch 128, no deadline (a resumed run keeps its epoch count).
# resnet20_long3: the same recipe from the best ResNet-20 R (resnet20_proj3-R-kd-long-f32loss,
# itself one of the three teachers), with a deadline at 97 % of BUDGET so it anneals in one call.
TEACHERS3="$RUNS/sepnet_cifar-R-kd-ens/checkpoint.pth $RUNS/resnet32_proj3-R/checkpoint.pth"
TEACHERS3="$TEACHERS3 $RUNS/resnet20_proj3-R-kd-long-f32loss/checkpoint.pth"
LONG3="$AUG --epochs 60 --batch-size 128 --lr 0.05 --warmup-epochs 1 --teacher $TEACHERS3"
sepnet_long3() {
  $T --model sepnet_cifar --finetune-from "$RUNS/sepnet_cifar-R-kd-ens/checkpoint.pth" $LONG3 \
    --output-dir "$RUNS/sepnet_cifar-R-kd-long3"
}
# sepnet_b_long3: reproduce_cifar.sh's sepnet_b_ste_kd_long3 (the learned-pattern B from the long3
# R, the shipped B's recipe), resumed where $RUNS holds its checkpoint; no deadline either.
sepnet_b_long3() {
  teachers
  $T --model sepnet_cifar --finetune-from "$RUNS/sepnet_cifar-R-kd-long3/checkpoint.pth" $AUG \
    --binarize ste --policy all --epochs 60 --batch-size 128 --lr 0.02 --warmup-epochs 0 \
    --teacher $TEACHERS --output-dir "$RUNS/sepnet_cifar-B-ste-kd-long3"
}
resnet20_long3() {
  $T --model resnet20_proj3 --finetune-from "$RUNS/resnet20_proj3-R-kd-long-f32loss/checkpoint.pth" \
    $LONG3 --deadline "$(at 97)" --output-dir "$RUNS/resnet20_proj3-R-kd-long3"
}
resnet20() {
  $T --model resnet20 $R $AUG --output-dir "$RUNS/resnet20-R"
  $T --model resnet20 --finetune-from "$RUNS/resnet20-R/checkpoint.pth" $B $AUG \
    --binarize "$B_METHOD" --output-dir "$RUNS/resnet20-B$BSUF" > "$LOGS/resnet20-B$BSUF.log" 2>&1 &
  $T --model resnet20 --finetune-from "$RUNS/resnet20-R/checkpoint.pth" $B $AUG \
    --binarize offset --offset 0.09 --output-dir "$RUNS/resnet20-B-offset" > "$LOGS/resnet20-B-offset.log" 2>&1 &
  wait
}
resnet20_proj3() {
  [ "${SKIP_R:-0}" = 1 ] || $T --model resnet20_proj3 $R $AUG --output-dir "$RUNS/resnet20_proj3-R"
  $T --model resnet20_proj3 --finetune-from "$RUNS/resnet20_proj3-R/checkpoint.pth" $B \
    --binarize "$B_METHOD" --output-dir "$RUNS/resnet20_proj3-B-plain$BSUF"
  swa resnet20_proj3 "resnet20_proj3-B-plain$BSUF"
}
# resnet20_proj3 R at batch 128 (lr 0.1, the CPU recipe), alone until R128_SHARE % of the budget;
# below 100 the learned-pattern refinement ($B, crop + flip only) follows in the rest. With
# SKIP_R=1 only the refinement runs, from resnet20_proj3-R128 in $RUNS (session 11's second call).
R128_SHARE=${R128_SHARE:-100}
resnet20_proj3_r128() {
  [ "${SKIP_R:-0}" = 1 ] || $T --model resnet20_proj3 --epochs 300 --batch-size 128 --lr 0.1 \
    --warmup-epochs 1 --wd 5e-4 $AUG --deadline "$(at "$R128_SHARE")" \
    --output-dir "$RUNS/resnet20_proj3-R128"
  [ "$R128_SHARE" -lt 100 ] || [ "${SKIP_R:-0}" = 1 ] || return 0
  $T --model resnet20_proj3 --finetune-from "$RUNS/resnet20_proj3-R128/checkpoint.pth" $B \
    --binarize ste --output-dir "$RUNS/resnet20_proj3-R128-B-ste"
}
local pids=() chain
for chain in ${CHAINS:-sepnet resnet20}; do  # CHAINS=sepnet PLAIN=0: SEP-Net alone, most epochs
  case $chain in
    sepnet) sepnet > "$LOGS/sepnet_cifar.log" 2>&1 & pids+=($!) ;;
    sepnet_kd) sepnet_kd > "$LOGS/sepnet_kd.log" 2>&1 & pids+=($!) ;;
    resnet20_proj3_kd) resnet20_proj3_kd > "$LOGS/resnet20_proj3_kd.log" 2>&1 & pids+=($!) ;;
    sepnet_long3) sepnet_long3 > "$LOGS/sepnet_long3.log" 2>&1 & pids+=($!) ;;
    sepnet_b_long3) sepnet_b_long3 > "$LOGS/sepnet_b_long3.log" 2>&1 & pids+=($!) ;;
    resnet20_long3) resnet20_long3 > "$LOGS/resnet20_long3.log" 2>&1 & pids+=($!) ;;
    resnet20) resnet20 > "$LOGS/resnet20.log" 2>&1 & pids+=($!) ;;
    resnet20_proj3) resnet20_proj3 > "$LOGS/resnet20_proj3.log" 2>&1 & pids+=($!) ;;
    resnet20_proj3_r128) resnet20_proj3_r128 > "$LOGS/resnet20_proj3_r128.log" 2>&1 & pids+=($!) ;;
    *) echo "unknown chain $chain" >&2 ;;
  esac
done
if [ "${PLAIN:-1}" = 1 ]; then
  $T --model sepnet_cifar $R --output-dir "$RUNS/sepnet_cifar-R-plain" > "$LOGS/sepnet_cifar-R-plain.log" 2>&1 &
  pids+=($!)
  $T --model resnet20 $R --output-dir "$RUNS/resnet20-R-plain" > "$LOGS/resnet20-R-plain.log" 2>&1 &
  pids+=($!)
fi
running() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running; do
  sleep 30
  echo "t+$(( $(date +%s) - T0 ))s: $(for f in "$LOGS"/*.log; do echo "$(basename "$f" .log) $(tail -n1 "$f" | cut -c1-110)"; done | tr '\n' '|')"
done
wait "${pids[@]}"
kill $snap 2>/dev/null
snapshot
echo "done in $(( $(date +%s) - T0 )) s"; ls -la "$OUT"
}
main "$@"; exit $?  # on the same line: bash must not read on into a file edited mid-run
