"""The training configuration: one dataclass, read from YAML/JSON and overridden by flags. No torch: ``ferkit train
--help`` reads its defaults on a machine without it."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainConfig:
    data: str = ""
    model: str = "fernet_m"
    model_kwargs: dict = field(default_factory=dict)
    init: str = ""  # start from these weights (a ferkit checkpoint of the same model): fine-tuning
    name: str = ""
    out_dir: str = "runs"
    epochs: int = 60
    batch_size: int = 128  # the GLOBAL batch: all processes of a torchrun run together
    optimizer: str = "sgd"  # sgd (Nesterov) | adam | adamw
    lr: float = 0.05  # for the global batch above, whatever the number of processes
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine | onecycle | plateau | none
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    mixup: float = 0.0  # Beta(alpha, alpha); 0 disables
    labels: str = "fer2013"  # fer2013 (dataset labels) | ferplus (FER+ vote distributions) | mix:W | plausible:W
    votes: str = ""  # FER+ votes file; "" = $FERKIT_FERPLUS, else found beside the dataset (data/ferplus.py)
    soft_labels: str = ""  # knowledge distillation: teacher targets (scripts/soft_labels.py)
    kd_alpha: float = 0.0  # target = (1 - kd_alpha) * one-hot + kd_alpha * teacher
    folds: int = 0  # > 1: train without fold `fold` of the training images (out-of-fold teachers)
    fold: int = 0
    class_weights: str = "none"  # none | balanced | sqrt
    augment: str = "strong"  # strong | flip | none
    ema: float = 0.999  # EMA decay per step; 0 disables
    amp: bool = False  # bf16 autocast
    channels_last: bool = False
    train_split: str = "train"
    val_split: str = "auto"  # auto = public if the dataset has it, else test
    limit: int = 0  # use only the first N training images (smoke tests)
    val_limit: int = 0
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch threads on CPU; 0 = torch default
    eval_tta: str = "none"
    skip_unknown: bool = False
    progress: bool = True
    max_steps: int = 0  # stop after this many optimizer steps in total (smoke tests); 0 = no limit
    sync_bn: str = "auto"  # torchrun runs: auto (= on with GPUs, off on CPU) | on | off
    dist_timeout: float = 600.0  # seconds a torchrun process waits for the others before it fails

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TrainConfig:
        text = Path(path).read_text()
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            raw = yaml.safe_load(text) or {}
        else:
            raw = json.loads(text)
        return cls().updated(raw)

    def updated(self, changes: dict) -> TrainConfig:
        bad = sorted(set(changes) - field_names())
        if bad:
            raise ValueError(f"unknown config key(s) {', '.join(bad)}; valid keys: {', '.join(sorted(field_names()))}")
        if "labels" in changes:
            from ..data.label_source import parse_label_source

            parse_label_source(changes["labels"])  # a bad spelling fails here, before any data is read
        return dataclasses.replace(self, **changes)


def field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainConfig)}
