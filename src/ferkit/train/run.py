"""A training run: data, model, epochs, checkpoints, interruption; one process or N under torchrun.

Every epoch writes ``runs/<name>/last.pt`` atomically, ``best.pt`` when the selection split improves
(first, so that ``last.pt`` never claims a best that ``best.pt`` does not hold; a Ctrl-C or SIGTERM that
comes while an epoch is recorded is taken once it is), a row of ``metrics.csv`` and ``curves.png`` (in a
torchrun run: process 0 only). ``--resume`` continues
from ``last.pt`` with the checkpoint's config (see :mod:`ferkit.train.resume`): the data order,
augmentation and dropout of epoch k are drawn from generators seeded by (seed, k, process), so a resumed
run reaches the same weights as an uninterrupted one (same machine, thread count and process count).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import FORMAT, VERSION, atomic_torch_save, load_checkpoint
from ..data import has_split, load_split
from ..data.softlabels import fold_of, image_keys, load_soft_labels
from ..emotions import EMOTIONS
from ..models import count_params, create_model
from .config import TrainConfig
from .distributed import Dist, is_dist_error
from .labels import apply_label_source
from .loop import steps_per_epoch, train_one_epoch, validate
from .optim import EMA, class_weight_tensor, make_optimizer
from .resume import resumed_config


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


# what a run writes into its folder (run_folder); `ferkit train` checks them against the run's inputs
RUN_FILES = ("last.pt", "best.pt", "interrupted.pt", "metrics.csv", "curves.png", "config.json")


def run_folder(cfg: TrainConfig) -> Path:
    """``<out_dir>/<name>``: where a run writes :data:`RUN_FILES` (name: ``<model>-s<seed>`` by default)."""
    return Path(cfg.out_dir) / _run_name(cfg)


def _load_data(cfg: TrainConfig, dist: Dist, log):
    val_split = cfg.val_split
    if val_split == "auto":
        val_split = "public" if has_split(cfg.data, "public") else "test"
    with dist.local_main_first():  # one process per node decodes (and caches), the others then read the cache
        progress = cfg.progress and dist.main
        train_ds = load_split(cfg.data, cfg.train_split, skip_unknown=cfg.skip_unknown, progress=progress)
        val_ds = load_split(cfg.data, val_split, skip_unknown=cfg.skip_unknown, progress=progress)
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
    return train_ds, val_ds, val_split


def _quiet(*args, **kwargs) -> None:
    pass


def train(cfg: TrainConfig, resume: bool = False, log=print, explicit: set[str] | None = None) -> dict:
    """Train as configured; returns a summary dict (paths, best selection accuracy, wall time).

    Under torchrun (RANK/WORLD_SIZE/LOCAL_RANK set) this process is one of N data-parallel workers
    (:mod:`ferkit.train.distributed`). With ``resume``, the checkpoint's config wins except for the
    keys in `explicit` (the flags the user typed; ``None``: fields that differ from the defaults)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist, device = Dist.setup(cfg.device, cfg.dist_timeout)  # device and timeout: always this invocation's
    log = log if dist.main else _quiet  # only process 0 talks
    res = None
    try:
        run_dir = run_folder(cfg)
        ckpt = None
        if not resume and (run_dir / "last.pt").exists():  # a new run would replace that run's checkpoints
            raise ValueError(f"{run_dir}: holds a run already (last.pt); continue it with --resume, or give "
                             "another --name or --out-dir (a new run never replaces another run's checkpoints)")
        if resume:
            # process 0 reads the checkpoint and hands it over: other nodes need no shared filesystem
            ckpt = dist.on_main(lambda: _load_last(run_dir / "last.pt"))
            cfg, notes = resumed_config(ckpt["config"], cfg, explicit, source=str(run_dir / "last.pt"))
            for line in notes:
                log(line)
        if not cfg.data:
            raise ValueError("no dataset given (--data DIR or fer2013.csv)")
        res = _train(cfg, ckpt, dist, device, run_dir, log)
        return res
    except Exception as e:
        if dist.enabled and is_dist_error(e):
            raise dist.lost_peer(e) from e
        raise
    finally:
        # after an error or an interruption the peers may be gone: leave without waiting for them
        dist.close(clean=res is not None and not res["interrupted"])


def _load_last(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{path}: nothing to resume (train without --resume first)")
    return load_checkpoint(path)


def _load_init(model: torch.nn.Module, cfg: TrainConfig, log) -> None:
    """Fine-tuning: the weights of ``cfg.init`` (EMA weights when present), same model and arguments."""
    init = load_checkpoint(cfg.init)
    if init["model"] != cfg.model or init.get("model_kwargs", {}) != cfg.model_kwargs:
        raise ValueError(f"{cfg.init}: --init holds a {init['model']} {init.get('model_kwargs', {})}, "
                         f"this run trains a {cfg.model} {cfg.model_kwargs}")
    state = init.get("ema_state_dict") or init["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{cfg.init}: its weights do not fit {cfg.model} ({e})") from e
    log(f"initialised from {cfg.init}")


def _train(cfg: TrainConfig, ckpt: dict | None, dist: Dist, device: torch.device, run_dir: Path, log) -> dict:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    dist.local_batch(cfg.batch_size)  # checks that the global batch splits evenly
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    train_ds, val_ds, val_split = _load_data(cfg, dist, log)
    labelled = apply_label_source(cfg, train_ds, val_ds, log)  # --labels: which images, targets, selection labels
    train_ds, val_ds = labelled.train, labelled.val
    val_name = val_split if labelled.val_labels == "fer2013" else f"{val_split} FER+ majority"

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    history: list[dict] = []
    start_epoch, step, best_acc = 0, 0, -1.0
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
    elif cfg.init:
        _load_init(model, cfg, log)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None  # a copy with plain BatchNorm: it only evaluates
    if ema is not None and ckpt is not None and ckpt.get("ema_state_dict"):
        ema.module.load_state_dict(ckpt["ema_state_dict"])
    net = dist.wrap(model, device, cfg.sync_bn)
    optimizer = make_optimizer(model, cfg)
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=5)
               if cfg.schedule == "plateau" else None)
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
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
    label_targets = None if labelled.targets is None else torch.from_numpy(labelled.targets).to(data_dev)
    soft = None
    if cfg.kd_alpha > 0:
        if not cfg.soft_labels:
            raise ValueError("kd_alpha > 0 needs soft_labels (a file made by scripts/soft_labels.py)")
        soft = torch.from_numpy(load_soft_labels(cfg.soft_labels, train_ds.images)).to(data_dev)
        log(f"distilling from {cfg.soft_labels} (kd_alpha {cfg.kd_alpha})")
    sampler = dist.sampler(len(y_train), cfg.seed * 100_003)
    n_steps = steps_per_epoch(len(sampler), dist.local_batch(cfg.batch_size))
    if dist.main:
        tmp = run_dir / f".config.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(cfg), indent=2))
        os.replace(tmp, run_dir / "config.json")
    log(f"model {cfg.model} ({count_params(model):,} params) on {device}; {dist.describe(cfg.batch_size, model)}; "
        f"train {len(y_train)} images ({cfg.train_split}), select on {len(y_val)} ({val_name}); "
        f"{n_steps} steps/epoch; run {run_dir}")
    if ckpt is not None and start_epoch >= cfg.epochs:
        log(f"nothing to train: the run has done {start_epoch}/{cfg.epochs} epochs (pass --epochs to go further)")

    def checkpoint(epoch: int) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "model": cfg.model, "model_kwargs": cfg.model_kwargs,
            "labels": list(EMOTIONS), "config": asdict(cfg), "epoch": epoch, "step": step,
            "state_dict": model.state_dict(), "ema_state_dict": ema.module.state_dict() if ema else None,
            "optimizer": optimizer.state_dict(), "scheduler": plateau.state_dict() if plateau else None,
            "best_acc": best_acc, "history": history, "val_split": val_split, "val_labels": labelled.val_labels,
            "votes": labelled.votes, "world_size": dist.world,
            "torch_version": torch.__version__,
        }

    stopping: list[int] = []
    saving: list[bool] = []  # non-empty while an epoch's results are recorded: a signal waits for the end

    def on_signal(signum, frame):  # Ctrl-C or SIGTERM (torchrun forwards both): stop once, cleanly
        if not stopping:
            stopping.append(signum)
            if not saving:
                raise KeyboardInterrupt

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s}
    interrupted = False
    t_start = time.perf_counter()
    bar = None
    try:
        for epoch in range(start_epoch, cfg.epochs):
            if cfg.max_steps and step >= cfg.max_steps:
                break
            if cfg.progress and dist.main:
                from tqdm import tqdm

                bar = tqdm(total=n_steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step",
                           file=sys.stderr, dynamic_ncols=True, leave=False, disable=None)
            stats, step = train_one_epoch(net, optimizer, x_train, y_train, cfg, epoch, step, sampler,
                                          dist=dist, model=model, ema=ema, class_weights=cw, soft_targets=soft,
                                          label_targets=label_targets, device=device, bar=bar)
            if bar is not None:
                bar.close()
                bar = None
            eval_model = ema.module if ema is not None else model
            v = validate(eval_model, x_val, y_val, cfg, device, dist)
            if plateau is not None:
                plateau.step(v["val_acc"])
            row = {"epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"], **stats, **v}
            # recording the epoch is one step: a signal here is taken after best.pt, last.pt and metrics.csv
            # agree. best.pt goes first: last.pt must never claim a best_acc that best.pt does not hold yet
            # (a kill between the two then leaves last.pt one epoch behind, and --resume redoes that epoch)
            saving.append(True)
            try:
                history.append(row)
                improved = v["val_acc"] > best_acc
                if improved:
                    best_acc = v["val_acc"]
                if dist.main:
                    state = checkpoint(epoch + 1)
                    if improved:
                        atomic_torch_save(state, best_path)
                    atomic_torch_save(state, last_path)
                    _write_metrics(run_dir / "metrics.csv", history)
            finally:
                saving.clear()
            log(f"epoch {epoch + 1:>3}/{cfg.epochs}  loss {stats['train_loss']:.4f}  acc {stats['train_acc']:.4f}  "
                f"{val_name} acc {v['val_acc']:.4f}{' *' if improved else ''}  "
                f"{stats['train_images_per_s']:.0f} img/s  {stats['train_seconds']:.0f}s")
            if stopping:  # a signal came while the epoch was recorded
                raise KeyboardInterrupt
    except (KeyboardInterrupt, RuntimeError) as e:
        # after a signal, a collective broken by a peer that stopped first is part of the same interruption
        if not isinstance(e, KeyboardInterrupt) and not (stopping and is_dist_error(e)):
            raise
        interrupted = True
        if bar is not None:
            bar.close()
        if dist.main:  # no collective here: the other processes may already be gone
            atomic_torch_save(checkpoint(history[-1]["epoch"] if history else start_epoch) | {
                "state_dict": model.state_dict()}, run_dir / "interrupted.pt")
        log(f"interrupted: last completed epoch is in {last_path}; continue with --resume "
            f"(current weights saved to {run_dir / 'interrupted.pt'})")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if history and dist.main:
        from ..plots import plot_curves

        plot_curves(history, run_dir / "curves.png", title=f"{cfg.model} ({_run_name(cfg)})")
    return {
        "run_dir": str(run_dir), "last": str(last_path), "best": str(best_path) if best_path.exists() else None,
        "best_acc": best_acc, "val_split": val_split, "val_labels": labelled.val_labels,
        "epochs_done": history[-1]["epoch"] if history else 0,
        "wall_seconds": time.perf_counter() - t_start, "interrupted": interrupted, "history": history,
        "world_size": dist.world, "rank": dist.rank,
    }
