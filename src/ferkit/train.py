"""Training loop (in the spirit of torchvision's references/classification/train.py).

``ferkit train --data DIR --model seed --optimizer adam --lr 1e-3 --epochs 100 --batch-size 128
--augment none --val-split test`` is the original recipe; the defaults of :class:`TrainConfig` are ours.

Every epoch writes ``runs/<name>/last.pt`` atomically, ``best.pt`` when the selection split improves,
a row of ``metrics.csv`` and ``curves.png``. ``--resume`` continues from ``last.pt``: the data order,
augmentation and dropout of epoch k are drawn from generators seeded by (seed, k), so a resumed run
reaches the same weights as an uninterrupted one (same machine, same thread count).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import FORMAT, VERSION, atomic_torch_save, load_checkpoint
from .data import has_split, load_split
from .data.augment import AugmentConfig, augment_batch, mixup
from .data.softlabels import fold_of, image_keys, load_soft_labels
from .emotions import EMOTIONS, NUM_CLASSES
from .models import count_params, create_model


@dataclass
class TrainConfig:
    data: str = ""
    model: str = "fernet_m"
    model_kwargs: dict = field(default_factory=dict)
    name: str = ""
    out_dir: str = "runs"
    epochs: int = 60
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd (Nesterov) | adam | adamw
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine | onecycle | plateau | none
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    mixup: float = 0.0  # Beta(alpha, alpha); 0 disables
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
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise ValueError(f"unknown config key(s) {', '.join(bad)}; valid keys: {', '.join(sorted(names))}")
        return dataclasses.replace(self, **changes)


AUGMENTS = {"strong": AugmentConfig(), "flip": AugmentConfig.flip_only(), "none": AugmentConfig.none()}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "adam":
        # Keras' Adam has no weight decay; keep cfg.weight_decay as L2 only if asked for
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose sgd, adam or adamw")


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate for step-wise schedules (cosine with linear warm-up, one-cycle, constant)."""
    total = cfg.epochs * steps_per_epoch
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule in ("none", "plateau"):
        return cfg.lr
    if cfg.schedule == "cosine":
        if step < warm:
            return cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    if cfg.schedule == "onecycle":
        peak = int(0.3 * total)
        if step < peak:
            return cfg.lr * (0.04 + 0.96 * step / max(1, peak))
        t = (step - peak) / max(1, total - peak)
        return cfg.lr * (0.5 * (1 + math.cos(math.pi * min(1.0, t)))) + cfg.lr * 1e-4
    raise ValueError(f"unknown schedule {cfg.schedule!r}; choose cosine, onecycle, plateau or none")


def class_weight_tensor(labels: np.ndarray, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    w = counts.sum() / np.maximum(counts, 1) / NUM_CLASSES
    if mode == "sqrt":
        w = np.sqrt(w)
    elif mode != "balanced":
        raise ValueError(f"unknown class weights {mode!r}; choose none, balanced or sqrt")
    return torch.tensor(w / (w * counts).sum() * counts.sum(), dtype=torch.float32)


class EMA:
    """Exponential moving average of parameters and buffers (BN statistics included)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # warm-up, as in timm's ModelEmaV2 variants
        ema_f, cur_f = [], []
        for e, m in zip(self.module.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                ema_f.append(e)
                cur_f.append(m.detach())
            else:
                e.copy_(m)
        torch._foreach_lerp_(ema_f, cur_f, 1 - d)


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: TrainConfig,
    epoch: int,
    step: int,
    steps_per_epoch: int,
    *,
    ema: EMA | None = None,
    class_weights: torch.Tensor | None = None,
    soft_targets: torch.Tensor | None = None,
    device: torch.device,
    bar=None,
) -> tuple[dict, int]:
    """One pass over the (shuffled) training images; returns (stats, new global step)."""
    model.train()
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout, mixup draws
    perm = torch.randperm(len(labels), generator=gen)
    aug = AUGMENTS[cfg.augment]
    n_seen = 0
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    t0 = time.perf_counter()
    cw = class_weights.to(device) if class_weights is not None else None
    for b in range(steps_per_epoch):
        if cfg.max_steps and step >= cfg.max_steps:
            break
        idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        x = images[idx.to(images.device)].to(device, non_blocking=True).unsqueeze(1).float()
        y = labels[idx.to(labels.device)].to(device, non_blocking=True)
        x = augment_batch(x, aug, gen if device.type == "cpu" else None)
        target = F.one_hot(y, NUM_CLASSES).float()
        if soft_targets is not None and cfg.kd_alpha > 0:
            teacher = soft_targets[idx.to(soft_targets.device)].to(device, non_blocking=True)
            target = (1 - cfg.kd_alpha) * target + cfg.kd_alpha * teacher
        x, target = mixup(x, target, cfg.mixup)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if cfg.schedule != "plateau":
            for g in optimizer.param_groups:
                g["lr"] = lr_at(cfg, step, steps_per_epoch)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            logits = model(x)
        logits = logits.float()
        loss = F.cross_entropy(logits, target, weight=cw, label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if ema is not None:
            ema.update(model, step)
        bs = len(y)
        n_seen += bs
        loss_sum += loss.detach() * bs
        correct += (logits.argmax(1) == y).sum()
        if b % 25 == 0 or b == steps_per_epoch - 1:  # sync with the device only now and then
            mean_loss = loss_sum.item() / n_seen
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"loss became {mean_loss} at epoch {epoch + 1} step {step}; lower --lr")
        if bar is not None:
            bar.update(1)
            if b % 25 == 0 or b == steps_per_epoch - 1:
                dt = time.perf_counter() - t0
                bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{correct.item() / n_seen:.3f}",
                                ips=f"{n_seen / max(dt, 1e-9):.0f}", lr=f"{optimizer.param_groups[0]['lr']:.2g}")
    loss_sum, correct = loss_sum.item(), correct.item()
    dt = time.perf_counter() - t0
    return {
        "train_loss": loss_sum / max(n_seen, 1),
        "train_acc": correct / max(n_seen, 1),
        "train_images_per_s": n_seen / max(dt, 1e-9),
        "train_seconds": dt,
    }, step


@torch.no_grad()
def validate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig,
             device: torch.device) -> dict:
    from .models.tta import Predictor

    pred = Predictor(model, cfg.eval_tta).to(device).eval()
    t0 = time.perf_counter()
    probs = []
    for i in range(0, len(labels), 1024):
        x = images[i:i + 1024].to(device).unsqueeze(1).float()
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            probs.append(pred(x).float())
    p = torch.cat(probs)
    y = labels.to(device)
    nll = F.nll_loss(torch.log(p.clamp_min(1e-12)), y).item()
    acc = (p.argmax(1) == y).float().mean().item()
    return {"val_loss": nll, "val_acc": acc, "val_seconds": time.perf_counter() - t0}


def _write_metrics(path: Path, history: list[dict]) -> None:
    keys = list(history[0].keys())
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
    os.replace(tmp, path)


def _run_name(cfg: TrainConfig) -> str:
    return cfg.name or f"{cfg.model}-s{cfg.seed}"


def train(cfg: TrainConfig, resume: bool = False, log=print) -> dict:
    """Train as configured; returns a summary dict (paths, best selection accuracy, wall time)."""
    if not cfg.data:
        raise ValueError("no dataset given (--data DIR or fer2013.csv)")
    device = pick_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.out_dir) / _run_name(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"

    ckpt = None
    if resume:
        if not last_path.exists():
            raise FileNotFoundError(f"{last_path}: nothing to resume (train without --resume first)")
        ckpt = load_checkpoint(last_path)
        saved = TrainConfig().updated(ckpt["config"])
        # the saved config wins, except fields that only change how the run is driven
        keep = {"epochs", "data", "device", "threads", "progress", "out_dir", "max_steps"}
        cfg = saved.updated({k: getattr(cfg, k) for k in keep})

    val_split = cfg.val_split
    if val_split == "auto":
        val_split = "public" if has_split(cfg.data, "public") else "test"
    train_ds = load_split(cfg.data, cfg.train_split, skip_unknown=cfg.skip_unknown, progress=cfg.progress)
    val_ds = load_split(cfg.data, val_split, skip_unknown=cfg.skip_unknown, progress=cfg.progress)
    if cfg.folds > 1:
        if not 0 <= cfg.fold < cfg.folds:
            raise ValueError(f"fold {cfg.fold} is not in 0..{cfg.folds - 1}")
        keep = fold_of(image_keys(train_ds.images), cfg.folds) != cfg.fold
        train_ds = train_ds.subset(np.flatnonzero(keep))
        log(f"fold {cfg.fold} of {cfg.folds} held out: training on {len(train_ds)} images")
    if cfg.limit:
        rng = np.random.default_rng(cfg.seed)
        train_ds = train_ds.subset(np.sort(rng.permutation(len(train_ds))[: cfg.limit]))
    if cfg.val_limit:
        rng = np.random.default_rng(cfg.seed + 1)
        val_ds = val_ds.subset(np.sort(rng.permutation(len(val_ds))[: cfg.val_limit]))
    for s in (train_ds, val_ds):
        if s.skipped:
            log(f"warning: {len(s.skipped)} unreadable file(s) skipped in split {s.name}, e.g. {s.skipped[0][1]}")

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=5)
               if cfg.schedule == "plateau" else None)
    history: list[dict] = []
    start_epoch, step, best_acc = 0, 0, -1.0
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None and ckpt.get("ema_state_dict"):
            ema.module.load_state_dict(ckpt["ema_state_dict"])
        if plateau is not None and ckpt.get("scheduler"):
            plateau.load_state_dict(ckpt["scheduler"])
        start_epoch, step = ckpt["epoch"], ckpt["step"]
        best_acc, history = ckpt.get("best_acc", -1.0), list(ckpt.get("history", []))
        log(f"resumed {last_path} at epoch {start_epoch}/{cfg.epochs} (best {best_acc:.4f})")

    data_dev = device if device.type == "cuda" else torch.device("cpu")
    x_train = torch.from_numpy(train_ds.images).to(data_dev)
    y_train = torch.from_numpy(train_ds.labels).to(data_dev)
    x_val = torch.from_numpy(val_ds.images)
    y_val = torch.from_numpy(val_ds.labels)
    cw = class_weight_tensor(train_ds.labels, cfg.class_weights)
    soft = None
    if cfg.kd_alpha > 0:
        if not cfg.soft_labels:
            raise ValueError("kd_alpha > 0 needs soft_labels (a file made by scripts/soft_labels.py)")
        soft = torch.from_numpy(load_soft_labels(cfg.soft_labels, train_ds.images)).to(data_dev)
        log(f"distilling from {cfg.soft_labels} (kd_alpha {cfg.kd_alpha})")
    steps_per_epoch = len(y_train) // cfg.batch_size if len(y_train) >= cfg.batch_size else 1
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    log(f"model {cfg.model} ({count_params(model):,} params) on {device}; train {len(y_train)} images "
        f"({cfg.train_split}), select on {len(y_val)} ({val_split}); {steps_per_epoch} steps/epoch; run {run_dir}")

    def checkpoint(epoch: int) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "model": cfg.model, "model_kwargs": cfg.model_kwargs,
            "labels": list(EMOTIONS), "config": asdict(cfg), "epoch": epoch, "step": step,
            "state_dict": model.state_dict(), "ema_state_dict": ema.module.state_dict() if ema else None,
            "optimizer": optimizer.state_dict(), "scheduler": plateau.state_dict() if plateau else None,
            "best_acc": best_acc, "history": history, "val_split": val_split,
            "torch_version": torch.__version__,
        }

    interrupted = False

    def on_sigterm(signum, frame):  # treat SIGTERM like Ctrl-C: finish cleanly
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_sigterm) if hasattr(signal, "SIGTERM") else None
    t_start = time.perf_counter()
    bar = None
    try:
        for epoch in range(start_epoch, cfg.epochs):
            if cfg.max_steps and step >= cfg.max_steps:
                break
            if cfg.progress:
                from tqdm import tqdm

                bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step",
                           file=sys.stderr, dynamic_ncols=True, leave=False, disable=None)
            stats, step = train_one_epoch(model, optimizer, x_train, y_train, cfg, epoch, step, steps_per_epoch,
                                          ema=ema, class_weights=cw, soft_targets=soft,
                                          device=device, bar=bar)
            if bar is not None:
                bar.close()
                bar = None
            eval_model = ema.module if ema is not None else model
            v = validate(eval_model, x_val, y_val, cfg, device)
            if plateau is not None:
                plateau.step(v["val_acc"])
            row = {"epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"], **stats, **v}
            history.append(row)
            improved = v["val_acc"] > best_acc
            if improved:
                best_acc = v["val_acc"]
            state = checkpoint(epoch + 1)
            atomic_torch_save(state, last_path)
            if improved:
                atomic_torch_save(state, best_path)
            _write_metrics(run_dir / "metrics.csv", history)
            log(f"epoch {epoch + 1:>3}/{cfg.epochs}  loss {stats['train_loss']:.4f}  acc {stats['train_acc']:.4f}  "
                f"{val_split} acc {v['val_acc']:.4f}{' *' if improved else ''}  "
                f"{stats['train_images_per_s']:.0f} img/s  {stats['train_seconds']:.0f}s")
    except KeyboardInterrupt:
        interrupted = True
        if bar is not None:
            bar.close()
        atomic_torch_save(checkpoint(history[-1]["epoch"] if history else start_epoch) | {
            "state_dict": model.state_dict()}, run_dir / "interrupted.pt")
        log(f"interrupted: last completed epoch is in {last_path}; continue with --resume "
            f"(current weights saved to {run_dir / 'interrupted.pt'})")
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    if history:
        from .plots import plot_curves

        plot_curves(history, run_dir / "curves.png", title=f"{cfg.model} ({_run_name(cfg)})")
    return {
        "run_dir": str(run_dir), "last": str(last_path), "best": str(best_path) if best_path.exists() else None,
        "best_acc": best_acc, "val_split": val_split, "epochs_done": history[-1]["epoch"] if history else 0,
        "wall_seconds": time.perf_counter() - t_start, "interrupted": interrupted, "history": history,
    }
