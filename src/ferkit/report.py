"""Writing an evaluation report (torch-free, shared by checkpoint and ONNX evaluation): ``report.json``
(written atomically) and ``confusion.png`` in one folder, plus the text table for the terminal."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .metrics import format_report


def save_report(rep: dict, out_dir: str | os.PathLike, title: str) -> dict:
    """Write ``rep`` (a :func:`ferkit.metrics.classification_report` dict plus context keys) into
    ``out_dir``; return it with ``out_dir`` and ``text`` added."""
    from .plots import plot_confusion

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".report.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(rep, indent=2))
    os.replace(tmp, out / "report.json")
    plot_confusion(rep["confusion_matrix"], out / "confusion.png", title=title)
    return rep | {"out_dir": str(out), "text": format_report(rep)}
