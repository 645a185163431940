"""Writing an evaluation report (torch-free, shared by checkpoint and ONNX evaluation): ``report.json``
(written atomically), ``confusion.png`` (and ``confusion-ferplus.png`` with FER+ votes) in one folder, plus the
text for the terminal."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .metrics import format_report


def save_report(rep: dict, out_dir: str | os.PathLike, title: str) -> dict:
    """Write ``rep`` (a :func:`ferkit.metrics.classification_report` dict plus context keys) into
    ``out_dir``; return it with ``out_dir`` and ``text`` added. With FER+ votes (``rep["ferplus"]``, see
    :func:`ferkit.metrics_crowd.crowd_report`) the majority protocol's matrix goes to confusion-ferplus.png."""
    from .plots import plot_confusion

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".report.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(rep, indent=2))
    os.replace(tmp, out / "report.json")
    plot_confusion(rep["confusion_matrix"], out / "confusion.png", title=title)
    text = format_report(rep)
    if "ferplus" in rep:
        from .metrics_crowd import format_crowd_report

        m = rep["ferplus"]["majority"]
        plot_confusion(m["confusion_matrix"], out / "confusion-ferplus.png",
                       title=f"{rep.get('model', '')} FER+ majority, {m['kept']} images (acc {m['accuracy']:.4f})")
        text += "\n\n" + format_crowd_report(rep["ferplus"])
    return rep | {"out_dir": str(out), "text": text}
