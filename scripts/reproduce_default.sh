#!/usr/bin/env bash
# Reproduce the shipped `default` model from scratch, every step as the model card describes it:
#
#   bash scripts/reproduce_default.sh DATA OUT [extra `ferkit train` arguments]
#   bash scripts/reproduce_default.sh ../shared/fer2013 repro            # the real thing
#   bash scripts/reproduce_default.sh small-fer repro-smoke --epochs 1   # plumbing check on a subset
#
# 1. eight networks: fernet_m seeds 0-5 (80, 80, 90, 90, 110, 110 epochs), fernet_l seeds 0-1 (60, 70)
# 2. soft labels from those eight (averaged flip-view probabilities on Training, in-sample)
# 3. two distilled fernet_m: kd-alpha 0.5, seeds 40 (100 epochs) and 45 (88 epochs)
# 4. logits of the nine candidates (fm0-5, fl1, kin5, kin5c) under every view, the search on PublicTest,
#    and the export of what it chooses (int8 weights, temperature fitted on PublicTest, parity check)
# 5. int8 arithmetic: float32 and int8 logits of those members (scripts/quant_bank.py), the cost/accuracy
#    table and its choice on PublicTest (scripts/quant_pareto.py), exported with --quantize int8
# Then `python scripts/model_card.py` measures what OUT/ferkit-default.onnx scores (copy it into
# src/ferkit/weights/ first). Each training resumes where it stopped: after an interruption, run the same
# command again. Cost: 10 networks; about 3.4 h each on 2 CPU cores, minutes each on a GPU (the shipped
# ones ran on an H100: results/gpu-h100-2026-11-25*/). Extra arguments go to every `ferkit train` and
# override the recipe (e.g. `--epochs 1` for a smoke test).
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n 2,20p "$0"
  exit 2
fi
data=$1; out=$2; shift 2
runs=$out/runs
mkdir -p "$runs"

train() {  # NAME ARGS...: one member with configs/default.yaml, resumed if it was started before
  local name=$1; shift
  local resume=()
  [ -f "$runs/$name/last.pt" ] && resume=(--resume)
  ferkit train --config configs/default.yaml --data "$data" --out-dir "$runs" --name "$name" --no-progress \
    "$@" "${resume[@]}" "${EXTRA[@]}"
}
EXTRA=("$@")

epochs=(80 80 90 90 110 110)
for s in 0 1 2 3 4 5; do train "fm$s" --model fernet_m --seed "$s" --epochs "${epochs[$s]}"; done
train fl0 --model fernet_l --seed 0 --epochs 60
train fl1 --model fernet_l --seed 1 --epochs 70

python scripts/soft_labels.py --data "$data" --out "$out/soft-in8.npz" \
  "$runs"/fm{0,1,2,3,4,5}/best.pt "$runs"/fl{0,1}/best.pt
train kin5 --model fernet_m --seed 40 --epochs 100 --soft-labels "$out/soft-in8.npz" --kd-alpha 0.5
train kin5c --model fernet_m --seed 45 --epochs 88 --soft-labels "$out/soft-in8.npz" --kd-alpha 0.5

python scripts/tta_bank.py --data "$data" --out "$out/bank" \
  "$runs"/fm{0,1,2,3,4,5}/best.pt "$runs"/{fl1,kin5,kin5c}/best.pt
python scripts/tta_search.py --bank "$out/bank" --json "$out/tta-search.json"
read -r tta members < <(python -c "import json, sys; c = json.load(open(sys.argv[1]))['choice']; \
print(c['tta'], ' '.join(c['members']))" "$out/tta-search.json")
ckpts=()
for m in $members; do ckpts+=("$runs/$m/best.pt"); done
ferkit export "${ckpts[@]}" --out "$out/ferkit-default-float.onnx" --tta "$tta" --temperature auto \
  --calib-data "$data" --parity-data "$data" --weights int8
echo "reproduce_default: $out/ferkit-default-float.onnx = ${members// / + } with --tta $tta (float32 arithmetic)"

python scripts/quant_pareto.py --measure-speed "${ckpts[@]}" --data "$data" --speed "$out/quant-speed.json"
python scripts/quant_bank.py --data "$data" --out "$out/qbank" "${ckpts[@]}"
# shellcheck disable=SC2086
python scripts/quant_pareto.py --bank "$out/qbank" --speed "$out/quant-speed.json" \
  --json "$out/quant-pareto.json" --reference "$tta" $members
read -r qtta qmembers < <(python -c "import json, sys; c = json.load(open(sys.argv[1]))['choice']; \
print(c['views'], ' '.join(c['members']))" "$out/quant-pareto.json")
qckpts=()
for m in $qmembers; do qckpts+=("$runs/$m/best.pt"); done
ferkit export "${qckpts[@]}" --out "$out/ferkit-default.onnx" --tta "$qtta" --temperature auto \
  --calib-data "$data" --parity-data "$data" --quantize int8 --quant-data "$data"
echo "reproduce_default: $out/ferkit-default.onnx = ${qmembers// / + } with --tta $qtta, int8 arithmetic"
