"""Soft-label files for knowledge distillation: per-image target distributions keyed by pixel content.

The key is the first 16 bytes of the SHA-1 of the 48x48 uint8 pixels, so the same image read from a
folder, the FER2013 CSV or a packed .npz finds the same target, whatever the order.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..emotions import EMOTIONS


def image_keys(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 -> (N,) array of 16-byte keys."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    return np.array([hashlib.sha1(im.tobytes()).digest()[:16] for im in images], dtype="S16")


def fold_of(keys: np.ndarray, folds: int) -> np.ndarray:
    """Fold index 0..folds-1 of each image, from its content key: exact duplicates share a fold, so a
    model trained without fold k has never seen any copy of fold k's images."""
    return np.array([int.from_bytes(k[:4], "little") % folds for k in np.asarray(keys, dtype="S16").tolist()])


def save_soft_labels(path: str | os.PathLike, keys: np.ndarray, probs: np.ndarray, **meta) -> None:
    """Write keys + probabilities (float16) atomically, first-wins for duplicate keys."""
    keys = np.asarray(keys, dtype="S16")
    _, first = np.unique(keys, return_index=True)
    first = np.sort(first)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"labels": list(EMOTIONS), **meta}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, keys=keys[first], probs=probs[first].astype(np.float16),
                            meta=np.array(json.dumps(meta)))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_soft_labels(path: str | os.PathLike, images: np.ndarray) -> np.ndarray:
    """Targets (N, 7) float32 for `images`, looked up by content; a clear error if any image is missing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: soft-label file not found")
    with np.load(path) as z:
        keys, probs = z["keys"], z["probs"].astype(np.float32)
        meta = json.loads(str(z["meta"])) if "meta" in z else {}
    if meta.get("labels", list(EMOTIONS)) != list(EMOTIONS):
        raise ValueError(f"{path}: label order {meta.get('labels')} differs from {list(EMOTIONS)}")
    index = {k: i for i, k in enumerate(keys.tolist())}
    want = image_keys(images).tolist()
    missing = [i for i, k in enumerate(want) if k not in index]
    if missing:
        raise ValueError(f"{path}: no soft label for {len(missing)} of {len(want)} training images "
                         f"(e.g. image #{missing[0]}); was it made from the same split?")
    out = probs[[index[k] for k in want]]
    return out / out.sum(1, keepdims=True)
