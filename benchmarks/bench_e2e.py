"""End to end on real photos: every installed detector side by side, then the shipped classifier.

    python benchmarks/bench_e2e.py --data DIR [--model default|fast] [--detectors centerface dlib haar]
                                   [--cache FILE.npz] [--limit N]

DIR holds one folder per emotion (``angry/ happy/ ...``, names as in the training data) of real photos.
For each photo and each detector, exactly the ``ferkit predict`` path: image read with EXIF orientation,
faces found (``Recognizer.locate``: images of at most 96 px are one face, detector ``crop``), each face
cut FER2013-style with that detector's crop settings, classified. The label of the **largest** face is
compared with the folder; a photo where no face is found counts as wrong. Printed per detector: photos with
a face found, accuracy and macro-F1 (over the classes present in DIR), with the eye-landmark alignment on
(the shipped setting where the detector gives landmarks) and off, and detection time per photo (mean and
median, decoding excluded). A markdown table.

``--cache FILE.npz`` also stores, per detector and photo, every box, score and landmark plus a gray patch
around the largest face, so ``benchmarks/tune_crop_e2e.py`` can sweep crop settings without detecting again.
Heavy (minutes): run it under the shared CPU lock.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ferkit.emotions import EMOTIONS, canonical
from ferkit.faces import list_detectors
from ferkit.images import ImageError, list_images, read_image, to_gray
from ferkit.recognizer import Recognizer

PATCH = 128  # the largest face's side in the cached patch (pixels), at most
REACH = 1.6  # the cached patch reaches this many face sides from the box centre


def dataset(root: Path, limit: int | None = None) -> tuple[list[Path], np.ndarray]:
    files, labels = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        emo = canonical(d.name)
        if emo is None:
            raise SystemExit(f"{d}: folder name is not an emotion ({', '.join(EMOTIONS)})")
        found, _ = list_images([str(d)])
        found = found[:limit] if limit else found
        files += found
        labels += [EMOTIONS.index(emo)] * len(found)
    if not files:
        raise SystemExit(f"{root}: no images in emotion folders")
    return files, np.array(labels)


def scores(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Accuracy and macro-F1 over the classes present in y; pred -1 (no face) is always wrong."""
    acc = float(np.mean(pred == y))
    f1s = []
    for c in np.unique(y):
        tp = np.sum((pred == c) & (y == c))
        p = tp / max(1, np.sum(pred == c))
        r = tp / max(1, np.sum(y == c))
        f1s.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    return acc, float(np.mean(f1s))


def largest(dets) -> int | None:
    if not dets:
        return None
    return int(np.argmax([d.box[2] * d.box[3] for d in dets]))


def patch_around(gray: np.ndarray, box) -> tuple[np.ndarray, np.ndarray, float]:
    """A gray patch around ``box`` (border replicated), scaled so the face side is <= PATCH px.
    Returns (patch, origin (x, y) in image pixels, scale patch px per image px)."""
    import cv2

    x, y, w, h = box
    side = max(w, h)
    r = REACH * side
    x0, y0 = int(np.floor(x + w / 2 - r)), int(np.floor(y + h / 2 - r))
    x1, y1 = int(np.ceil(x + w / 2 + r)), int(np.ceil(y + h / 2 + r))
    H, W = gray.shape
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    p = cv2.copyMakeBorder(gray[cy0:cy1, cx0:cx1], cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)
    s = min(1.0, PATCH / side)
    if s < 1.0:
        p = cv2.resize(p, (max(1, round(p.shape[1] * s)), max(1, round(p.shape[0] * s))), interpolation=cv2.INTER_AREA)
    return p, np.array([x0, y0], np.float32), s


def run(args) -> dict:
    files, y = dataset(Path(args.data), args.limit)
    avail = [n for n, i in list_detectors().items() if i["available"] and n not in ("auto", "full")]
    names = [n for n in (args.detectors or avail) if n in avail]
    recs = {n: Recognizer(model=args.model, detector=n, threads=args.threads) for n in names}
    crops = {n: {a: [] for a in (True, False)} for n in names}
    owner = {n: {a: [] for a in (True, False)} for n in names}  # photo index of each crop
    ms = {n: [] for n in names}
    cache = {n: {"boxes": [], "patch": [], "origin": [], "scale": [], "crop": []} for n in names}
    bad = 0
    t_start = time.perf_counter()
    for i, f in enumerate(files):
        try:
            bgr = read_image(f)
        except ImageError as e:
            print(f"skipped {e}", file=sys.stderr)
            bad += 1
            for n in names:
                ms[n].append(float("nan"))
                for k in cache[n]:
                    cache[n][k].append(None)
            continue
        gray = to_gray(bgr)
        for n, rec in recs.items():
            t0 = time.perf_counter()
            dets, cr, how = rec.locate(bgr)
            ms[n].append((time.perf_counter() - t0) * 1e3)
            k = largest(dets)
            c = cache[n]
            c["boxes"].append(np.array([[*d.box, d.score, *np.ravel(d.landmarks or [np.nan] * 10)] for d in dets],
                                       np.float32).reshape(-1, 15))
            c["crop"].append(how == "crop")
            if k is None:
                c["patch"].append(None), c["origin"].append(None), c["scale"].append(None)
                continue
            p, o, s = patch_around(gray, dets[k].box)
            c["patch"].append(p), c["origin"].append(o), c["scale"].append(s)
            for align in (True, False):
                if how == "crop":
                    crop = cr[k]
                else:
                    crop = crop_one(gray, dets[k], replace(rec.crop, align=align))
                crops[n][align].append(crop)
                owner[n][align].append(i)
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(files)} photos, {time.perf_counter() - t_start:.0f}s", file=sys.stderr)
    rows, preds = [], {}
    for n, rec in recs.items():
        res = {}
        marks = any(len(b) and not np.isnan(b[:, 5:]).all() for b in cache[n]["boxes"] if b is not None)
        for align in (True, False):
            if not marks and not align:  # no landmarks: both columns are the same crops
                res[align] = res[True]
                continue
            pred = np.full(len(files), -1)
            if crops[n][align]:
                probs = rec.predict_arrays(np.stack(crops[n][align]), 64)
                pred[np.array(owner[n][align])] = probs.argmax(1)
            res[align] = scores(y, pred)
            if align:
                preds[n] = pred  # the shipped setting's label of each photo's largest face (-1: none found)
        t = [v for v in ms[n] if v == v]
        found = len(owner[n][True])
        rows.append((n, found, res, statistics.mean(t), statistics.median(t), rec.crop))
    if args.cache:
        save_cache(args.cache, files, y, cache, recs)
    return {"rows": rows, "n": len(files), "bad": bad, "y": y, "pred": preds}


def crop_one(gray: np.ndarray, det, spec) -> np.ndarray:
    from ferkit.faces import crop_face

    return crop_face(gray, det.box, spec, 48, landmarks=det.landmarks)


def save_cache(path: str, files, y, cache, recs) -> None:
    out = {"files": np.array([str(f) for f in files]), "y": y}
    for n, c in cache.items():
        out[f"{n}/crop"] = np.array([bool(v) for v in c["crop"]])
        for k in ("boxes", "patch", "origin", "scale"):
            arr = np.empty(len(c[k]), object)
            arr[:] = c[k]
            out[f"{n}/{k}"] = arr
    tmp = Path(path).with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **out)
    tmp.replace(path)
    print(f"cache written to {path}", file=sys.stderr)


def table(result: dict, model: str) -> str:
    n = result["n"]
    lines = [f"{n} photos, model `{model}`; found = photos with at least one face; accuracy / macro-F1 of the "
             "largest face's label (no face = wrong)", "",
             "| detector | found | accuracy, aligned | macro-F1, aligned | accuracy, not aligned "
             "| macro-F1, not aligned | detection ms per photo (mean / median) | shipped crop (margin, shift, align) |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, found, res, mean, med, spec in result["rows"]:
        (a1, f1), (a0, f0) = res[True], res[False]
        lines.append(f"| {name} | {found} / {n} ({found / n:.1%}) | {a1:.1%} | {f1:.3f} | {a0:.1%} | {f0:.3f} "
                     f"| {mean:.0f} / {med:.0f} | {spec.margin:+.2f}, {spec.shift:+.2f}, "
                     f"{'on' if spec.align else 'off'} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder of emotion folders of real photos")
    ap.add_argument("--model", default="default")
    ap.add_argument("--detectors", nargs="*", default=None, help="default: every installed one")
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime threads of the classifier")
    ap.add_argument("--cache", default=None, help="write detections + face patches here (for tune_crop_e2e.py)")
    ap.add_argument("--limit", type=int, default=None, help="at most N photos per folder (quick runs)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = run(args)
    print(table(result, args.model))
    print(f"\n{result['bad']} unreadable; {time.perf_counter() - t0:.0f}s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
