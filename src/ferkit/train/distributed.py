"""Data-parallel training with PyTorch's own engine (torch.distributed + DistributedDataParallel).

``torchrun --nproc_per_node N -m ferkit train ...`` starts N processes; torchrun's environment (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) is what turns this on, nothing else does. The rules:

* backend: NCCL when the run uses GPUs (one GPU per process, ``cuda:LOCAL_RANK``), gloo on CPU;
* ``--batch-size`` is the global batch: each of N processes takes ``batch_size / N`` images per step, and
  DDP averages the gradients, so one optimizer step sees the same images and the same mean loss as a
  single-process step of the same ``--batch-size``; the learning rate therefore needs no change;
* data: every process reads the whole (cached) split and takes its shard through
  :class:`torch.utils.data.DistributedSampler` (seeded by the run's seed, reshuffled by ``set_epoch``);
* batch norm: SyncBatchNorm (statistics over the global batch) with GPUs; PyTorch's SyncBatchNorm runs on
  GPUs only, so CPU runs normalise with each process's own batch statistics;
* collectives fail after ``dist_timeout`` seconds instead of hanging when a process stops answering.
"""

from __future__ import annotations

import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DistributedSampler

PREP_TIMEOUT_S = 4 * 3600  # rank 0 may decode a 400k-image dataset while the others wait


class DistributedRunError(RuntimeError):
    """A torchrun process lost the others (one crashed, was killed, or stopped answering)."""


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Dist:
    """Where this process stands in the run; a single-process run is ``Dist()`` (rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""  # "" = not distributed
    timeout_s: float = 600.0
    owns_group: bool = False
    _prep_group: object = None

    @property
    def enabled(self) -> bool:
        return bool(self.backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def setup(cls, device_name: str, timeout_s: float) -> tuple[Dist, torch.device]:
        """Join the torchrun process group (if launched by torchrun) and pick this process's device."""
        device = pick_device(device_name)
        if not launched_by_torchrun():
            return cls(), device
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ["LOCAL_RANK"])
        if device.type == "cuda":
            if local >= torch.cuda.device_count():
                raise ValueError(f"process {rank} has local rank {local} but this node has "
                                 f"{torch.cuda.device_count()} GPU(s): use --nproc_per_node <= the GPU count")
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        owns = not dist.is_initialized()
        if owns:
            bind = {"device_id": device} if device.type == "cuda" else {}  # NCCL: one GPU per process
            dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s), **bind)
        # a gloo group with a long timeout for the one wait that may take long: the decode cache
        prep = dist.new_group(backend="gloo", timeout=timedelta(seconds=max(timeout_s, PREP_TIMEOUT_S)))
        return cls(rank, world, local, backend, timeout_s, owns, prep), device

    def close(self, clean: bool = True) -> None:
        """Leave the process group (after a failure, exiting the process is what frees it)."""
        if self.enabled and self.owns_group and clean and dist.is_initialized():
            dist.destroy_process_group()

    @contextmanager
    def local_main_first(self):
        """Run the body on each node's local rank 0 first (it builds the decode cache), then on the
        others (they read it): N processes never decode the same dataset at once."""
        if self.enabled and self.local_rank != 0:
            dist.barrier(group=self._prep_group)
        yield
        if self.enabled and self.local_rank == 0:
            dist.barrier(group=self._prep_group)

    def on_main(self, fn):
        """fn() on process 0, its result (or its OSError/ValueError, raised everywhere) sent to all."""
        if not self.enabled:
            return fn()
        box: list = [None]
        if self.main:
            try:
                box[0] = (True, fn())
            except (OSError, ValueError) as e:
                box[0] = (False, e)
        dist.broadcast_object_list(box, src=0, group=self._prep_group)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """In-place sum over all processes (no-op for one)."""
        if self.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def sync_buffers(self, module: nn.Module) -> None:
        """Give every process rank 0's buffers (BN running statistics), e.g. before validation."""
        if self.enabled:
            for b in module.buffers():
                dist.broadcast(b, src=0)

    def local_batch(self, batch_size: int) -> int:
        if batch_size % self.world:
            lo, hi = batch_size // self.world * self.world, (batch_size // self.world + 1) * self.world
            raise ValueError(f"--batch-size {batch_size} is the global batch; it must split evenly over "
                             f"{self.world} processes (e.g. {max(lo, self.world)} or {hi})")
        return batch_size // self.world

    def sampler(self, n: int, seed: int) -> DistributedSampler:
        """This process's shard of n training images: a fresh permutation each epoch (``set_epoch``),
        the same on every process (seeded), split so that global batch b of N processes holds the
        same images as batch b of a single process; the last incomplete global batch is dropped."""
        return DistributedSampler(range(n), num_replicas=self.world, rank=self.rank, shuffle=True,
                                  seed=seed, drop_last=True)

    def shard(self, n: int) -> slice:
        """A contiguous slice of n items for this process (validation: sums are reduced afterwards)."""
        bounds = np.linspace(0, n, self.world + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def wrap(self, model: nn.Module, device: torch.device, sync_bn: str) -> nn.Module:
        """The module to call for training: DDP around `model` (SyncBatchNorm first when chosen).
        `model` itself stays the unwrapped module whose state_dict is saved."""
        if not self.enabled:
            return model
        use_sync = {"auto": device.type == "cuda" and self.world > 1, "on": True, "off": False}.get(sync_bn)
        if use_sync is None:
            raise ValueError(f"--sync-bn {sync_bn!r}: choose auto, on or off")
        if use_sync and device.type != "cuda":
            raise ValueError("--sync-bn on needs GPUs (PyTorch's SyncBatchNorm does not run on CPU); use auto or off")
        if use_sync:
            nn.SyncBatchNorm.convert_sync_batchnorm(model)  # replaces the BN children in place
        # buffers are not broadcast at every forward: the BN statistics are global with SyncBatchNorm and
        # made equal by sync_buffers() before validation without it (the flag's name changed in torch 2.13)
        ddp = nn.parallel.DistributedDataParallel
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                   else {"broadcast_buffers": False})
        return ddp(model, device_ids=[device.index] if device.type == "cuda" else None,
                   gradient_as_bucket_view=True, **no_sync)

    def describe(self, batch_size: int, model: nn.Module) -> str:
        if not self.enabled:
            return "1 process"
        bn = "SyncBatchNorm" if any(isinstance(m, nn.SyncBatchNorm) for m in model.modules()) else "per-process BN"
        return (f"{self.world} processes ({self.backend}), global batch {batch_size} = "
                f"{batch_size // self.world} per process, {bn}")

    def lost_peer(self, err: BaseException) -> DistributedRunError:
        return DistributedRunError(
            f"process {self.rank} of {self.world}: a collective failed ({type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}); another process crashed, was killed "
            f"or did not answer within --dist-timeout {self.timeout_s:g}s (its own error is above)")


def is_dist_error(err: BaseException) -> bool:
    if isinstance(err, dist.DistError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and any(s in text for s in ("gloo", "Gloo", "NCCL", "Connection closed"))


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """Seed of the per-process random draws (augmentation, dropout, mixup) of one epoch; rank 0's is the
    one a single-process run has always used, so its runs are unchanged."""
    return seed * 100_003 + epoch + rank * 7_919_993
