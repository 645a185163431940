"""Model registry in the spirit of timm: ``create_model(name, **kw)`` and ``list_models()``.

Every model takes ``N x 1 x 48 x 48`` float tensors of raw pixel values (0..255) and returns
``N x 7`` logits in :data:`ferkit.emotions.EMOTIONS` order; normalisation is the model's first layer.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_DOCS: dict[str, str] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} registered twice")
    _REGISTRY[name] = fn
    _DOCS[name] = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
    return fn


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def describe_model(name: str) -> str:
    return _DOCS.get(name, "")


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    model = _REGISTRY[name](**kwargs)
    model.model_name = name
    return model


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
