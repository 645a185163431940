"""Issue 22 development table: FER+ candidates scored on the development data only.

    python scripts/ferplus_dev.py prepare --data ../shared/fer2013 --votes ../shared/ferplus/ferplus_votes.csv \
        --photos ../shared/webphotos-dev --out runs/ferplus/dev.npz
    python scripts/ferplus_dev.py targets --data ../shared/fer2013 --votes ... --out runs/ferplus/votes.npz
    python scripts/ferplus_dev.py bank runs/ferplus/ft/*/last.pt --dev runs/ferplus/dev.npz --tta scale \
        --out-dir runs/ferplus/bank
    python scripts/ferplus_dev.py bank-onnx default fast --dev runs/ferplus/dev.npz --out-dir runs/ferplus/bank
    python scripts/ferplus_dev.py table --dev runs/ferplus/dev.npz --bank runs/ferplus/bank \
        --candidate shipped-default=onnx-default --candidate v2=m0+m1+m2 ... [--json results/ferplus-dev.json]
    python scripts/ferplus_dev.py search d0 d1 d2 d0-a50 ... --baseline onnx-default --size 3 --dev ... --bank ...

``prepare`` stores PublicTest (pixels, FER2013 label, FER+ votes) and, for every photo of the photo folder, the
48x48 crop of its largest face as ``ferkit predict`` makes it (CenterFace, shipped crop settings, aligned), so
candidates are compared on the same crops without detecting again (a photo without a face counts as wrong).
``targets`` writes the vote distributions of the Training images as a soft-label file for
``ferkit train --soft-labels F --kd-alpha A`` (FER+ rules: votes of 1 dropped, contempt dropped; an image whose
votes are mostly unknown/NF, or that FER+ left unmatched, keeps its original one-hot label as its target).
``bank`` stores each checkpoint's probabilities (its TTA views averaged) on those images; ``table`` averages the
banks of each candidate's members and prints FER2013 PublicTest, FER+ PublicTest majority (7 classes) and the
photo accuracy / per-class recall. PrivateTest is never read here.

The end-to-end figure that the selection rule uses comes from ``benchmarks/bench_e2e.py`` on the exported file;
the photo column here is the same path on cached crops, for screening.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from ferkit.data.readers import _atomic_save_npz as save_npz  # temp file + rename, never a half file
from ferkit.emotions import EMOTIONS
from ferkit.outputs import check_script_outputs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ferplus_screen import (  # noqa: E402
    FERPLUS,
    TO_FERPLUS,
    cmd_search,
    cmd_table,
    distribution,
    largest_face_crop,
    majority,
)


def read_votes(path: str) -> dict[str, tuple[np.ndarray, str]]:
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out[row["file"]] = (np.array([int(row[c]) for c in FERPLUS], np.int64), row["status"])
    return out


def load_votes_for(split, votes_csv: str) -> np.ndarray:
    table = read_votes(votes_csv)
    out = np.zeros((len(split), len(FERPLUS)), np.int64)
    for i, s in enumerate(split.sources):
        v, status = table.get(s, (None, "missing"))
        if v is not None and not status.startswith("unmatched"):
            out[i] = v
    return out


def cmd_prepare(a) -> int:
    from ferkit.data import load_split
    from ferkit.images import ImageError, list_images, read_image
    from ferkit.recognizer import Recognizer

    pub = load_split(a.data, "public")
    votes = load_votes_for(pub, a.votes)
    rec = Recognizer(model="fast", detector="centerface")
    crops, ys, files = [], [], []
    for k, emo in enumerate(EMOTIONS):
        d = Path(a.photos) / emo
        if not d.is_dir():
            continue
        found, _ = list_images([str(d)])
        for f in found:
            files.append(str(f))
            ys.append(k)
            try:
                crop = largest_face_crop(rec, read_image(f))
            except ImageError as e:
                print(f"skipped {e}", file=sys.stderr)
                crop = None
            if crop is None:
                crops.append(np.zeros((48, 48), np.uint8))  # no face: photo_y holds -1 - label
                ys[-1] = -1 - k
                continue
            crops.append(crop)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    save_npz(Path(a.out), pub_x=pub.images, pub_y=pub.labels, pub_votes=votes,
                        photo_x=np.stack(crops).astype(np.uint8), photo_y=np.array(ys), photo_files=np.array(files))
    print(f"{a.out}: PublicTest {len(pub)} images, {int((majority(votes) >= 0).sum())} with a FER+ majority; "
          f"photos {len(files)}, {int((np.array(ys) < 0).sum())} without a face")
    return 0


def cmd_targets(a) -> int:
    from ferkit.data import load_split
    from ferkit.data.softlabels import image_keys, save_soft_labels

    tr = load_split(a.data, "train")
    votes = load_votes_for(tr, a.votes)
    dist, ok = distribution(votes)
    onehot = np.eye(len(EMOTIONS), dtype=np.float32)[tr.labels]
    if a.plausible:
        # the original label gains weight W wherever at least one crowd worker gave it (it is plausible); where no
        # worker did, the crowd's votes alone are the target
        raw = votes[:, TO_FERPLUS][np.arange(len(tr)), tr.labels] >= 1
        dist = dist + a.plausible * onehot * raw[:, None]
        dist = (dist / np.maximum(dist.sum(1, keepdims=True), 1e-9)).astype(np.float32)
        print(f"plausible original label (>= 1 vote) on {raw[ok].mean():.1%} of the images with a vote target")
    target = np.where(ok[:, None], dist, onehot)
    kind = f"FER+ votes, plausible:{a.plausible:g}" if a.plausible else "FER+ votes"
    save_soft_labels(a.out, image_keys(tr.images), target, source=f"{kind} (scripts/ferplus_dev.py targets)",
                     fallback_original=int((~ok).sum()))
    agree = float((dist.argmax(1)[ok] == tr.labels[ok]).mean())
    print(f"{a.out}: {len(tr)} Training images, {int(ok.sum())} with a vote target, {int((~ok).sum())} keep their "
          f"original label; vote argmax = original label on {agree:.1%}")
    return 0


def _member_probs(model, x: np.ndarray, tta: str, batch: int = 256) -> np.ndarray:
    import torch

    from ferkit.models.tta import Predictor

    pred = Predictor([model], tta, 1.0).eval()
    out = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=True):
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch, None].astype(np.float32)).contiguous(memory_format=torch.channels_last)
            out.append(pred(xb).float().numpy())
    return np.concatenate(out)


def cmd_bank(a) -> int:
    import torch

    from ferkit.checkpoint import load_checkpoint, model_from_checkpoint

    torch.set_num_threads(a.threads)
    dev = np.load(a.dev)
    for ck in a.checkpoints:
        name = a.name or Path(ck).parent.name
        out = Path(a.out_dir) / f"{name}.npz"
        if out.exists() and not a.force:
            print(f"{out}: exists")
            continue
        model = model_from_checkpoint(load_checkpoint(ck)).eval().to(memory_format=torch.channels_last)
        pub = _member_probs(model, dev["pub_x"], a.tta)
        photo = _member_probs(model, dev["photo_x"], a.tta)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_npz(out, pub=pub, photo=photo, tta=a.tta, source=str(ck))
        print(f"{out}: {ck} ({a.tta})")
    return 0


def cmd_bank_onnx(a) -> int:
    from ferkit.recognizer import Recognizer

    dev = np.load(a.dev)
    for m in a.models:
        rec = Recognizer(model=m, detector="centerface")
        name = a.name or f"onnx-{Path(m).stem}"
        out = Path(a.out_dir) / f"{name}.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        save_npz(out, pub=rec.predict_arrays(dev["pub_x"]), photo=rec.predict_arrays(dev["photo_x"]), source=m)
        print(f"{out}: {m}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--data", required=True)
    p.add_argument("--votes", required=True)
    p.add_argument("--photos", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser("targets")
    p.add_argument("--data", required=True)
    p.add_argument("--votes", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--plausible", type=float, default=0.0, metavar="W",
                   help="add W to the original label's share where at least one worker voted for it, then renormalise")
    p.set_defaults(func=cmd_targets)
    p = sub.add_parser("bank")
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--dev", required=True)
    p.add_argument("--tta", default="scale")
    p.add_argument("--name", help="bank name (default: the checkpoint's folder name); one checkpoint only")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_bank)
    p = sub.add_parser("bank-onnx")
    p.add_argument("models", nargs="+")
    p.add_argument("--dev", required=True)
    p.add_argument("--name")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_bank_onnx)
    p = sub.add_parser("table")
    p.add_argument("--dev", required=True)
    p.add_argument("--bank", required=True)
    p.add_argument("--candidate", action="append", required=True, help="NAME=bank1+bank2+...")
    p.add_argument("--json")
    p.add_argument("--allow-stale-crops", action="store_true", help="skip the check that the cached crops are "
                                                                    "today's")
    p.set_defaults(func=cmd_table)
    p = sub.add_parser("search")
    p.add_argument("banks", nargs="+")
    p.add_argument("--dev", required=True)
    p.add_argument("--bank", required=True)
    p.add_argument("--baseline", required=True, help="bank (name in --bank, or an .npz path) of the model a pick "
                                                       "would replace")
    p.add_argument("--size", type=int, nargs="+", default=[3], help="ensemble sizes to try")
    p.add_argument("--neutral-prior", type=float, nargs="+", default=[0.0], metavar="B",
                   help="log offsets on neutral to try (p_neutral x e^B, renormalised)")
    p.add_argument("--prior", action="append", default=[], metavar="EMOTION=B,B,...",
                   help="more classes' log offsets to try (repeatable); the grid is every combination")
    p.add_argument("--clear-gate", action="store_true", help="also screen on PublicTest's clear-by-both recall "
                                                             "(classes with >= 100 such images, neutral excepted)")
    p.add_argument("--tag", help="tag for this search's rows and summary in --json (e.g. round3)")
    p.add_argument("--allow-stale-crops", action="store_true", help="skip the check that the cached crops are "
                                                                    "today's")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--screened-only", action="store_true", help="print only candidates that pass the screen")
    p.add_argument("--keep", type=int, default=50, help="screened candidates kept in --json (the best on FER+)")
    p.add_argument("--json")
    p.set_defaults(func=cmd_search)
    a = ap.parse_args()
    outs = {k: getattr(a, k.strip("-").replace("-", "_"), None) for k in ("--out", "--json")}
    if getattr(a, "out_dir", None):  # a folder of banks: each file in it is an output
        names = [a.name] if a.name else [Path(c).parent.name for c in getattr(a, "checkpoints", [])] or \
            [f"onnx-{Path(m).stem}" for m in getattr(a, "models", [])]
        outs |= {f"--out-dir {n}": Path(a.out_dir) / f"{n}.npz" for n in names}
    ins = [x for x in (getattr(a, "data", None), getattr(a, "votes", None), getattr(a, "photos", None),
                       getattr(a, "dev", None), *getattr(a, "checkpoints", [])) if x]
    check_script_outputs(ap, outs, ins)  # ferkit.outputs' rules: never an input
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
