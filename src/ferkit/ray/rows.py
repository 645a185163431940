"""The flat table of ``ferkit predict`` results, typed: one row per face, one ``no face`` row for an image without a
face, one error row for a file that gave no result. These are the rows of ``--csv`` (same order, same statuses)
with real types instead of text: what ``--parquet`` writes and what :class:`ferkit.ray.FerkitPredictor` gives a
Ray Data pipeline. No Ray and no torch here; pyarrow only for :func:`schema`.

Columns (:data:`COLUMNS`): ``file``, ``face`` (index in the image), ``x``, ``y``, ``w``, ``h`` (pixels of the file),
``score`` (detector units), ``label``, ``confidence``, the 7 emotions (float32 probabilities exactly as the model gave
them), ``detector``, ``landmarks`` (10 numbers: x, y of each of ``ferkit.faces.LANDMARK_NAMES`` in order; null when
the detector gives none), ``status`` (``ok``, ``no face``, or ``error: <message naming the file>``). Cells that do not
apply (the box of an error row, the label of a face the model gave NaN for) are null.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..emotions import EMOTIONS

COLUMNS = ["file", "face", "x", "y", "w", "h", "score", "label", "confidence", *EMOTIONS, "detector", "landmarks",
           "status"]


def schema(extra: Sequence[tuple[str, object]] = ()):
    """The pyarrow schema of :data:`COLUMNS` (then ``extra`` (name, pyarrow type) fields)."""
    import pyarrow as pa

    fields = [("file", pa.string()), ("face", pa.int32()), *[(c, pa.int32()) for c in "xywh"],
              ("score", pa.float64()), ("label", pa.string()), ("confidence", pa.float32()),
              *[(e, pa.float32()) for e in EMOTIONS], ("detector", pa.string()),
              ("landmarks", pa.list_(pa.float64())), ("status", pa.string()), *extra]
    return pa.schema(fields)


def _blank(file: str, status: str) -> dict:
    return {c: None for c in COLUMNS} | {"file": file, "status": status}


def image_rows(file: str, dets: Sequence, probs, detector: str | None, error: str | None = None) -> list[dict]:
    """The rows of one image: ``dets`` (``ferkit.faces.Detection``, in the file's pixels) with their (N, 7)
    ``probs``; ``error``: the message of a file that gave no result (then one error row). The same rules as
    ``predict --csv``: a face the model gives NaN or infinity for keeps its box and gets an error status."""
    from ..outputs import safe_text
    from ..recognizer import NonFiniteOutput, Prediction

    file = safe_text(file)
    if error:
        return [_blank(file, f"error: {safe_text(error)}")]
    if not len(dets):
        return [_blank(file, "no face")]
    rows = []
    for i, (d, p) in enumerate(zip(dets, probs if probs is not None else [], strict=False)):
        p = np.asarray(p, np.float32).reshape(-1)
        x, y, w, h = (int(v) for v in d.box)
        marks = None if d.landmarks is None else [float(v) for pt in d.landmarks for v in pt]
        row = {"file": file, "face": i, "x": x, "y": y, "w": w, "h": h, "score": float(d.score),
               "detector": detector, "landmarks": marks}
        row |= {e: float(v) for e, v in zip(EMOTIONS, p, strict=True)}
        try:
            pred = Prediction.from_probs(p)
            row |= {"label": pred.label, "confidence": pred.confidence, "status": "ok"}
        except NonFiniteOutput as e:  # one face without a label: an error row, the others go on
            row |= {"label": None, "confidence": None, "status": f"error: {safe_text(f'{file}: face {i}: {e}')}"}
        rows.append(row)
    return rows
