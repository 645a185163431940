"""Evaluate an ONNX model (a shipped one by name, or any ferkit .onnx) on a labelled dataset, without torch:
the same metrics, report.json and confusion.png as ``ferkit evaluate`` on a checkpoint.

The images go to the model as the dataset stores them (48x48 gray, FER2013 framing): no face detection.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .data import load_split
from .data.ferplus import load_votes
from .metrics import classification_report
from .metrics_crowd import crowd_report
from .report import save_report

ONNX_SUFFIX = ".onnx"


def is_onnx_model(name: str | os.PathLike) -> bool:
    """Whether ``ferkit evaluate`` should treat ``name`` as an ONNX model (a shipped name or a .onnx file)."""
    from .weights import MODELS

    return str(name) in MODELS or str(name).lower().endswith(ONNX_SUFFIX)


def model_kind(name: str | os.PathLike) -> str:
    """How ``ferkit evaluate`` reads MODEL: ``"onnx"`` (a shipped name, a .onnx or Keras file: onnxruntime, no
    torch) or ``"checkpoint"`` (any other file: a checkpoint of ``ferkit train``, read with torch). A name that
    is no file and no shipped model gets the message ``ferkit predict --model`` gives, before anything loads."""
    from .keras.cache import is_keras_path
    from .weights import list_shipped

    if is_onnx_model(name) or is_keras_path(name):
        return "onnx"  # Recognizer resolves it: the same messages as predict for a missing file
    if Path(name).is_file():
        return "checkpoint"
    raise FileNotFoundError(f"model {str(name)!r}: no such file and not a shipped model name "
                            f"(shipped: {', '.join(list_shipped()) or 'none'}; or a checkpoint .pt of ferkit train)")


def evaluate_onnx(
    model: str | os.PathLike,
    data: str | os.PathLike,
    split: str,
    *,
    out_dir: str | os.PathLike,
    batch_size: int = 512,
    threads: int | None = None,
    skip_unknown: bool = False,
    progress: bool = True,
    votes: str | os.PathLike | None = None,
) -> dict:
    """Report dict for ONNX ``model`` on ``split`` of ``data``; written into ``out_dir``. FER+ ``votes`` as in
    :func:`ferkit.evaluate.run_evaluation` (a file, ``"none"``, or None to look for them)."""
    from .recognizer import Recognizer

    rec = Recognizer(model=model, detector="full", threads=threads)  # crops already: no detection
    ds = load_split(data, split, skip_unknown=skip_unknown, progress=progress)
    t0 = time.perf_counter()
    probs = rec.predict_arrays(ds.images, batch_size)
    dt = time.perf_counter() - t0
    rep = classification_report(ds.labels, probs.argmax(1), probs)
    crowd = load_votes(ds, data, votes)
    if crowd is not None:
        rep["ferplus"] = crowd_report(probs, crowd, ds.labels)
    rep.update(seconds=dt, images_per_second=len(ds.images) / dt if dt > 0 else 0.0, checkpoint=str(model),
               model=rec.model_path.name, model_path=str(rec.model_path), data=str(data), split=split, tta="in graph",
               skipped=len(ds.skipped))
    return save_report(rep, Path(out_dir), title=f"{rec.model_path.name} on {split} (acc {rep['accuracy']:.4f})")
