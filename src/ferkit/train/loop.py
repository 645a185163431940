"""One training epoch and one validation pass, for one process or one of N (DDP)."""

from __future__ import annotations

import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.augment import AugmentConfig, augment_batch, mixup
from ..emotions import NUM_CLASSES
from .config import TrainConfig
from .distributed import Dist, rank_seed
from .optim import EMA, lr_at

# --augment strong | flip | none (TrainConfig.augment)
AUGMENTS = {"strong": AugmentConfig(), "flip": AugmentConfig.flip_only(), "none": AugmentConfig.none()}


def steps_per_epoch(n_local: int, local_batch: int) -> int:
    """Optimizer steps per epoch: the last incomplete batch is dropped (a set smaller than one batch
    gives one step over all of it)."""
    return n_local // local_batch if n_local >= local_batch else 1


def train_one_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: TrainConfig,
    epoch: int,
    step: int,
    sampler,
    *,
    dist: Dist,
    model: nn.Module | None = None,
    ema: EMA | None = None,
    class_weights: torch.Tensor | None = None,
    soft_targets: torch.Tensor | None = None,
    label_targets: torch.Tensor | None = None,
    device: torch.device,
    bar=None,
) -> tuple[dict, int]:
    """One pass over this process's shard (`sampler`) in local batches of batch_size / N; `net` is
    what is called (DDP in a torchrun run), `model` the plain module the EMA follows. The target of an
    image is its row of `label_targets` (the label source: FER+ votes, a mixture) or else its one-hot
    label, mixed with the teacher's `soft_targets` by kd_alpha. Returns (stats summed over all processes,
    new global step)."""
    model = net if model is None else model
    net.train()
    sampler.set_epoch(epoch)
    idx_all = torch.tensor(list(iter(sampler)), dtype=torch.long)
    seed = rank_seed(cfg.seed, epoch, dist.rank)
    gen = torch.Generator().manual_seed(seed)
    # the generator was also the shuffler before DDP: advance it past that draw so that a single-process
    # run augments exactly as it always has (same weights as earlier ferkit versions)
    torch.randperm(len(labels), generator=gen)
    torch.manual_seed(seed)  # dropout, mixup draws
    local_b = dist.local_batch(cfg.batch_size)
    n_steps = steps_per_epoch(len(idx_all), local_b)
    aug = AUGMENTS[cfg.augment]
    sums = torch.zeros(2, device=device, dtype=torch.float64)  # loss sum, correct (on the device: no sync per step)
    n_local = 0

    def totals() -> list[float]:  # [loss sum, correct, images] over all processes
        return dist.sum_(torch.cat([sums, sums.new_tensor([float(n_local)])])).tolist()

    t0 = time.perf_counter()
    cw = class_weights.to(device) if class_weights is not None else None
    for b in range(n_steps):
        if cfg.max_steps and step >= cfg.max_steps:
            break
        idx = idx_all[b * local_b:(b + 1) * local_b]
        x = images[idx.to(images.device)].to(device, non_blocking=True).unsqueeze(1).float()
        y = labels[idx.to(labels.device)].to(device, non_blocking=True)
        x = augment_batch(x, aug, gen if device.type == "cpu" else None)
        if label_targets is not None:
            target = label_targets[idx.to(label_targets.device)].to(device, non_blocking=True)
        else:
            target = F.one_hot(y, NUM_CLASSES).float()
        if soft_targets is not None and cfg.kd_alpha > 0:
            teacher = soft_targets[idx.to(soft_targets.device)].to(device, non_blocking=True)
            target = (1 - cfg.kd_alpha) * target + cfg.kd_alpha * teacher
        x, target = mixup(x, target, cfg.mixup)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if cfg.schedule != "plateau":
            for g in optimizer.param_groups:
                g["lr"] = lr_at(cfg, step, n_steps)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            logits = net(x)
        logits = logits.float()
        # with probability targets the mean is over the batch even with class weights, so the mean of
        # the N processes' gradients (what DDP computes) is the gradient of the global batch's mean loss
        loss = F.cross_entropy(logits, target, weight=cw, label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if ema is not None:
            ema.update(model, step)
        sums += torch.stack([loss.detach().double() * len(y), (logits.argmax(1) == y).sum().double()])
        n_local += len(y)
        if b % 25 == 0 or b == n_steps - 1:  # sync with the device (and the other processes) only now and then
            tot = totals()
            mean_loss = tot[0] / tot[2]
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"loss became {mean_loss} at epoch {epoch + 1} step {step}; lower --lr")
            if bar is not None:
                dt = time.perf_counter() - t0
                bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{tot[1] / tot[2]:.3f}",
                                ips=f"{tot[2] / max(dt, 1e-9):.0f}", lr=f"{optimizer.param_groups[0]['lr']:.2g}")
        if bar is not None:
            bar.update(1)
    loss_sum, correct, n_seen = totals()
    dt = time.perf_counter() - t0
    return {
        "train_loss": loss_sum / max(n_seen, 1),
        "train_acc": correct / max(n_seen, 1),
        "train_images_per_s": n_seen / max(dt, 1e-9),
        "train_seconds": dt,
    }, step


@torch.no_grad()
def validate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig,
             device: torch.device, dist: Dist | None = None) -> dict:
    """Accuracy and NLL on the selection split; with N processes each scores a contiguous 1/N of it
    (with rank 0's BN statistics) and the sums are reduced, so every process gets the full-split numbers."""
    from ..models.tta import Predictor

    dist = dist or Dist()
    dist.sync_buffers(model)
    pred = Predictor(model, cfg.eval_tta).to(device).eval()
    t0 = time.perf_counter()
    part = dist.shard(len(labels))
    xs, ys = images[part], labels[part]
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # nll sum, correct, images
    for i in range(0, len(ys), 1024):
        x = xs[i:i + 1024].to(device).unsqueeze(1).float()
        y = ys[i:i + 1024].to(device)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            p = pred(x).float()
        nll = F.nll_loss(torch.log(p.clamp_min(1e-12)), y, reduction="sum")
        sums += torch.stack([nll.double(), (p.argmax(1) == y).sum().double(),
                             torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
    nll_sum, correct, n = dist.sum_(sums).tolist()
    return {"val_loss": nll_sum / max(n, 1), "val_acc": correct / max(n, 1), "val_seconds": time.perf_counter() - t0}
