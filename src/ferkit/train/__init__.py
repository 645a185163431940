"""Training (in the spirit of torchvision's references/classification/train.py), one process or N under torchrun.
May import torch, ferkit.data, ferkit.models, checkpoint, metrics and plots; never export, the runtime or a door.

``ferkit train --data DIR --model seed --optimizer adam --lr 1e-3 --epochs 100 --batch-size 128
--augment none --val-split test`` is the original recipe; the defaults of :class:`TrainConfig` are ours.

config.py      TrainConfig (YAML/JSON + flags)        optim.py   optimizer, LR schedules, class weights, EMA
loop.py        one epoch, one validation pass         resume.py  what a resumed run keeps and changes
distributed.py torchrun/DDP: backend, sampler, SyncBN, reductions, timeouts
run.py         train(): the whole run, checkpoints, Ctrl-C/SIGTERM
"""

from __future__ import annotations

import importlib

# public name -> submodule that defines it, loaded on first use: ``import ferkit.train`` and
# ``from ferkit.train.config import TrainConfig`` need no torch (``ferkit train --help`` shows the defaults)
_LAZY = {"TrainConfig": "config", "AUGMENTS": "loop", "DistributedRunError": "distributed",
         "pick_device": "distributed", "train_one_epoch": "loop", "validate": "loop", "EMA": "optim",
         "class_weight_tensor": "optim", "lr_at": "optim", "make_optimizer": "optim", "train": "run"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
