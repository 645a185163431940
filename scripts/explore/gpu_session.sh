#!/usr/bin/env bash
# Run on the lent GPU machine (device tool), from the repo root:
#   bash scripts/explore/gpu_session.sh DEADLINE_SECONDS JOB [JOB ...]
# Unpacks .devdata/fer2013-jpeg.npz, trains the jobs side by side (scripts/explore/gpu_jobs.py), evaluates each
# best.pt on PublicTest and PrivateTest (no TTA, flip, shift), and writes slim checkpoints, logs and
# metrics as a split tarball into $OUT. Slim checkpoints come back in float16 (the return is capped at 64 MB).
# Env: SOFT=FILE checks that every training image has a target in that soft-label file before the KD jobs
# start; TTAS="none flip" limits the evaluation views. Fold jobs (folds=K,fold=k) are turned into
# runs/soft-labels-oof.npz (scripts/soft_labels.py --oof) and their checkpoints are not returned.
# The working tree that travels is capped at 64 MiB: move the shipped ONNX files aside while calling.
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
deadline=$1; shift  # seconds after which every run is stopped cleanly (0 = none)
python3 scripts/explore/devdata.py unpack .devdata/fer2013-jpeg.npz /tmp/fer2013.npz
if [ -n "${SOFT:-}" ]; then  # the KD jobs need every training image's key in the soft-label file
python3 - "$SOFT" <<'PY' || exit 1
import sys, numpy as np
from ferkit.data.softlabels import load_soft_labels
with np.load("/tmp/fer2013.npz") as z:
    print("soft labels:", load_soft_labels(sys.argv[1], z["train_images"]).shape, "all keys found")
PY
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 scripts/explore/gpu_jobs.py --data /tmp/fer2013.npz --out runs --deadline "$deadline" "$@"
python3 - <<'PY'
import glob, json, os, torch
TTAS = os.environ.get("TTAS", "none flip shift").split()
from ferkit.checkpoint import load_checkpoint, slim_checkpoint, atomic_torch_save
from ferkit.evaluate import run_evaluation
res = {}
for best in sorted(glob.glob("runs/*/best.pt")):
    run = os.path.dirname(best)
    for name, path in (("best", best),):
        ck = load_checkpoint(path)
        slim = slim_checkpoint(ck)
        # fp16 for the trip back (the device returns at most 64 MB); the shipped ONNX stores fp16 anyway
        slim["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in slim["state_dict"].items()}
        atomic_torch_save(slim, f"{run}/{name}-slim.pt")
    r = {}
    for split in ("public", "private"):
        for tta in TTAS:
            rep = run_evaluation(best, "/tmp/fer2013.npz", split, tta=tta, device="cuda",
                                 out_dir=f"{run}/eval-{split}-{tta}")
            r[f"{split}_{tta}"] = rep["accuracy"]
    rep = run_evaluation(f"{run}/last.pt", "/tmp/fer2013.npz", "private", tta="none", out_dir=f"{run}/eval-last",
                         device="cuda")
    r["private_none_last"] = rep["accuracy"]
    r["epoch_best"] = load_checkpoint(best)["epoch"]
    res[os.path.basename(run)] = r
    print(os.path.basename(run), json.dumps(r), flush=True)
json.dump(res, open("runs/summary.json", "w"), indent=2)
PY
# out-of-fold teacher targets from the fold models (jobs trained with folds=K,fold=k), if any
oof=$(grep -l '"folds": [2-9]' runs/*/config.json 2>/dev/null | xargs -r -n1 dirname | sed 's|$|/best.pt|')
if [ -n "$oof" ]; then python3 scripts/soft_labels.py --oof --device cuda --data /tmp/fer2013.npz \
    --out runs/soft-labels-oof.npz $oof && for r in $oof; do rm -f "$(dirname "$r")/best-slim.pt"; done; fi
rm -f runs/*/last.pt runs/*/best.pt runs/*/interrupted.pt
tar czf /tmp/runs.tgz runs
split -b 15M /tmp/runs.tgz "$OUT/runs.tgz.part-"
ls -la "$OUT"
