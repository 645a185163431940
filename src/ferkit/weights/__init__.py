"""Pretrained models shipped inside the package (ONNX, no download ever).

See MODEL_CARD.md in the repository for how they were trained and what they score.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = "ferkit-default.onnx"
MODELS = {
    "default": DEFAULT_MODEL,  # the accurate ensemble (TTA inside the graph)
    "fast": "ferkit-fast.onnx",  # one network, no TTA: for high frame rates
}


def model_path(name: str = "default") -> Path:
    """Path of a shipped ONNX model by name ('default' or 'fast') or file name."""
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
    return {k: _HERE / v for k, v in MODELS.items() if (_HERE / v).is_file()}
