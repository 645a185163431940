"""Pretrained models shipped inside the package (ONNX, no download ever), their metadata and headline numbers.
May import the standard library and onnxruntime only: every room may read it.

See MODEL_CARD.md in the repository for how they were trained and what they score.
"""

from __future__ import annotations

import json
from pathlib import Path

_HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = "ferkit-default.onnx"
MODELS = {
    "default": DEFAULT_MODEL,  # two networks x 2 views: agrees with people (FER+) and names clear expressions
    "fast": "ferkit-fast.onnx",  # one network, no TTA: for high frame rates
    "ferplus": "ferkit-ferplus.onnx",  # opt-in: trained on the FER+ crowd votes alone (the label a person would give)
    "fer2013": "ferkit-fer2013.onnx",  # the v1 default: 3 networks x 6 views trained on FER2013's own labels
}


def model_path(name: str = "default") -> Path:
    """Path of a shipped ONNX model by name ('default', 'fast', 'ferplus', 'fer2013') or file name."""
    fname = MODELS.get(name, name)
    p = _HERE / fname
    if not p.is_file():
        available = ", ".join(sorted(k for k, v in MODELS.items() if (_HERE / v).is_file()))
        raise FileNotFoundError(f"no shipped model {name!r} at {p}; available: {available or 'none'}")
    return p


def default_model_path() -> Path:
    """The ONNX file `Recognizer()` loads when given no model."""
    return model_path("default")


def list_shipped() -> dict[str, Path]:
    """{name: path} of the shipped models present in this installation."""
    return {k: _HERE / v for k, v in MODELS.items() if (_HERE / v).is_file()}


HEADLINE = _HERE / "headline.json"  # the model card's numbers per shipped file (scripts/model_headline.py)


def shipped_info() -> list[dict]:
    """One dict per shipped model, without torch: name, file, size_mb, members, tta, trained_labels (what the
    networks learned: ``fer2013`` for files that do not say) from the ONNX metadata and, when ``headline.json``
    is there, the model card's measured accuracy (FER2013 labels and FER+ majority), MACs and speed."""
    import onnxruntime as ort

    table = json.loads(HEADLINE.read_text()) if HEADLINE.is_file() else {}
    head = table.get("models", {})
    out = []
    for name, path in list_shipped().items():
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        meta = sess.get_modelmeta().custom_metadata_map
        h = head.get(name, {})
        out.append({
            "name": name, "file": path.name, "path": str(path), "size_mb": round(path.stat().st_size / 1e6, 2),
            "members": json.loads(meta.get("members", "[]")), "tta": meta.get("tta", "none"),
            "trained_labels": meta.get("trained_labels", "fer2013"),
            "class_prior": json.loads(meta.get("class_prior", "{}")),
            "private_test": h.get("private_test"), "ferplus_private_test": h.get("ferplus_private_test"),
            "macro_f1_private": h.get("macro_f1_private"),
            "gmac_per_face": round(h["macs"] / 1e9, 2) if h.get("macs") else None,
            "faces_per_second": h.get("faces_per_second"), "speed_note": table.get("speed_note"),
        })
    return out
