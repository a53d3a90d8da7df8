#!/usr/bin/env bash
# Writes the benchmark's model files into bench/models/ (gitignored), from the Python pipeline
# (`pip install -e train`). Every model is untrained: random weights from torch.manual_seed(SEED)
# then the registry's constructor, in both exporters, so each .sepnet R file and its .onnx file
# hold the same weights (run.mjs checks that their outputs agree). BQ files are the same
# network binarized (bit-packed patterns) and int8-quantized, so they have no ONNX twin.
#   bench/prepare.sh            sepnet_cifar, resnet20 (32x32) and sepnet_small (224x224)
#   MODELS="sepnet_cifar" bench/prepare.sh
#   FORCE=1 bench/prepare.sh    rewrite files that already exist
set -euo pipefail
cd "$(dirname "$0")"
BENCH=$(pwd)
OUT="$BENCH/models"
SEED=${SEED:-0}
MODELS=${MODELS:-"sepnet_cifar resnet20 sepnet_small"}
PY=${PYTHON:-python3}
mkdir -p "$OUT"

run() {   # the training job on this machine has priority: stay below it
  echo "+ $*" >&2
  nice -n 5 "$@"
}

for m in $MODELS; do
  for v in R BQ; do
    f="$OUT/$m-$(tr '[:upper:]' '[:lower:]' <<<"$v").sepnet"
    if [[ -n "${FORCE:-}" || ! -s "$f" ]]; then
      run "$PY" -m sepnet_train.export --model "$m" --variant "$v" --untrained --seed "$SEED" --out "$f" >/dev/null
    fi
  done
  f="$OUT/$m.onnx"
  if [[ -n "${FORCE:-}" || ! -s "$f" ]]; then
    run "$PY" -m sepnet_train.onnx_export --model "$m" --seed "$SEED" --out "$f" >/dev/null
  fi
done
ls -l "$OUT"
