"""Training (in the spirit of torchvision's references/classification/train.py), one process or N under torchrun.
May import torch, ferkit.data, ferkit.models, checkpoint, metrics and plots; never export, the runtime or a door.

``ferkit train --data DIR --model seed --optimizer adam --lr 1e-3 --epochs 100 --batch-size 128
--augment none --val-split test`` is the original recipe; the defaults of :class:`TrainConfig` are ours.

config.py      TrainConfig (YAML/JSON + flags)        optim.py   optimizer, LR schedules, class weights, EMA
loop.py        one epoch, one validation pass         resume.py  what a resumed run keeps and changes
distributed.py torchrun/DDP: backend, sampler, SyncBN, reductions, timeouts
run.py         train(): the whole run, checkpoints, Ctrl-C/SIGTERM
"""

from .config import AUGMENTS, TrainConfig
from .distributed import DistributedRunError, pick_device
from .loop import train_one_epoch, validate
from .optim import EMA, class_weight_tensor, lr_at, make_optimizer
from .run import train

__all__ = ["AUGMENTS", "EMA", "DistributedRunError", "TrainConfig", "class_weight_tensor", "lr_at",
           "make_optimizer", "pick_device", "train", "train_one_epoch", "validate"]
