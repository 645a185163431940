"""Checkpoints are plain dicts: weights, model name and kwargs, config, label order, epoch, optimizer
state. They are written atomically (temp file in the same folder, fsync, rename) so a crash or Ctrl-C
never leaves a half-written file."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .emotions import EMOTIONS

FORMAT = "ferkit-checkpoint"
VERSION = 1


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a ferkit checkpoint (no 'format: {FORMAT}' key)")
    labels = tuple(ckpt.get("labels", ()))
    if labels != EMOTIONS:
        raise ValueError(f"{path}: label order {labels} differs from {EMOTIONS}")
    return ckpt


def model_from_checkpoint(ckpt: dict | str | os.PathLike, use_ema: bool = True) -> torch.nn.Module:
    """Rebuild the model a checkpoint describes and load its weights (EMA weights when present)."""
    from .models import create_model

    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    model = create_model(ckpt["model"], **ckpt.get("model_kwargs", {}))
    state = ckpt.get("ema_state_dict") if use_ema and ckpt.get("ema_state_dict") else ckpt["state_dict"]
    model.load_state_dict(state)
    return model.eval()


def slim_checkpoint(ckpt: dict) -> dict:
    """Weights-only copy for release/transfer: the EMA weights (if any) become `state_dict`;
    optimizer state is dropped. Config, history and label order are kept."""
    out = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler", "ema_state_dict")}
    if ckpt.get("ema_state_dict"):
        out["state_dict"] = ckpt["ema_state_dict"]
    out["slim"] = True
    return out
