"""ONNX export of trained checkpoints (:mod:`.export`), int8 quantisation (:mod:`.quantize`) and the way back
from a file to torch members (:mod:`.onnx_members`). May import torch, onnx, onnxruntime and the training rooms.

Importing this package is light (no torch): the names below load their module on first use, so
``from ferkit.export import export_onnx`` works as before while ``import ferkit.export`` stays cheap.
"""

from __future__ import annotations

import importlib

# public name -> submodule that defines it (loaded on first access; export.py imports torch)
_LAZY = {name: "export" for name in (
    "CONTRACT", "PARITY_LIMIT", "WEIGHT_STORAGE", "ExportCheckFailed", "Predictor", "compress_weights",
    "export_onnx", "fit_ensemble_temperature", "member_view_logits")}
_SUBMODULES = ("export", "quantize", "onnx_members")
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
