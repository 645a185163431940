#!/usr/bin/env bash
# Issue 22: fine-tune one member of a shipped model on FER+ vote targets (CPU, 2 threads; resumable with --resume).
#   bash scripts/ferplus_finetune.sh INIT_CKPT NAME KD_ALPHA EPOCHS [extra ferkit train flags...]
# INIT_CKPT from scripts/ferplus_members.py; targets from `scripts/ferplus_dev.py targets` (runs/ferplus/votes.npz,
# or FERPLUS_TARGETS=FILE).
set -euo pipefail
init=$1 name=$2 alpha=$3 epochs=$4; shift 4
model=$(python -c "import sys, torch; print(torch.load(sys.argv[1], map_location='cpu', weights_only=False)['model'])" "$init")
start=$(date +%s)
ferkit train --config configs/default.yaml --data "${FERKIT_FER2013:-../shared/fer2013}" --model "$model" \
  --init "$init" --soft-labels "${FERPLUS_TARGETS:-runs/ferplus/votes.npz}" --kd-alpha "$alpha" --epochs "$epochs" --lr 0.01 \
  --warmup-epochs 0.2 --ema 0.995 --threads 2 --no-progress --out-dir runs/ferplus/ft --name "$name" "$@"
echo "$name: wall time $(( $(date +%s) - start )) s"
