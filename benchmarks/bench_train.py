"""Training and evaluation throughput on this CPU: images/s per model, fp32 vs bf16 autocast, with and
without channels-last, side by side in one run (the `seed` CNN is the baseline).

    python benchmarks/bench_train.py [--models seed,fernet_s,fernet_m] [--steps 12] [--threads 2]
    python benchmarks/bench_train.py --ddp [--models fernet_m] [--steps 12] [--threads 2]

Each training step is the real one (augmentation on the batch, forward, loss, backward, SGD step) at
batch 128; evaluation is inference at batch 512. The first 2 steps are warm-up and not timed.

``--ddp``: training images/s of ferkit's own epoch loop (ferkit.train.train_one_epoch, bf16 + channels-last
as in configs/default.yaml) at global batch 128 run three ways on the same cores: one plain process with
--threads threads, the DDP path with one process (torchrun --nproc_per_node 1: what DDP itself costs),
and torchrun --nproc_per_node 2 with threads/2 threads each (gloo on CPU, NCCL on a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from ferkit.data.augment import AugmentConfig, augment_batch
from ferkit.models import count_params, create_model


def bench(name: str, amp: bool, cl: bool, steps: int, batch: int = 128) -> tuple[float, float]:
    torch.manual_seed(0)
    m = create_model(name)
    if cl:
        m = m.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x0 = torch.randint(0, 256, (batch, 1, 48, 48)).float()
    y = torch.randint(0, 7, (batch,))
    m.train()
    t = None
    for i in range(steps + 2):
        if i == 2:
            t = time.perf_counter()
        x = augment_batch(x0, AugmentConfig())
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = m(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    train_ips = steps * batch / (time.perf_counter() - t)
    m.eval()
    xe = torch.randint(0, 256, (512, 1, 48, 48)).float()
    if cl:
        xe = xe.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        m(xe)
        t = time.perf_counter()
        for _ in range(3):
            m(xe)
    eval_ips = 3 * 512 / (time.perf_counter() - t)
    return train_ips, eval_ips


def ddp_worker(model: str, steps: int, batch: int, device: str) -> None:
    """One process of a --ddp measurement (plain, or under torchrun): real epoch loop, random pixels."""
    from ferkit.train import TrainConfig, make_optimizer, train_one_epoch
    from ferkit.train.distributed import Dist

    dist, dev = Dist.setup(device, 300)
    cfg = TrainConfig(model=model, batch_size=batch, amp=True, channels_last=True, ema=0, schedule="none")
    torch.manual_seed(0)
    m = create_model(model).to(dev).to(memory_format=torch.channels_last)
    net = dist.wrap(m, dev, "auto")
    opt = make_optimizer(m, cfg)
    n = batch * (steps + 2)
    x = torch.randint(0, 256, (n, 48, 48), dtype=torch.uint8).to(dev)
    y = torch.randint(0, 7, (n,)).to(dev)
    sampler = dist.sampler(n, 0)
    step = 0
    for epoch, max_steps in ((0, 2), (1, 2 + steps)):  # warm-up, then timed
        cfg.max_steps = max_steps
        if dev.type == "cuda":
            torch.cuda.synchronize()
        stats, step = train_one_epoch(net, opt, x, y, cfg, epoch, step, sampler, dist=dist, model=m, device=dev)
    if dist.main:
        print("RESULT " + json.dumps({"ips": stats["train_images_per_s"], "world": dist.world,
                                      "backend": dist.backend or "none", "device": str(dev)}), flush=True)
    dist.close()


def ddp_table(a) -> None:
    gpu = torch.cuda.is_available()
    print(f"# {torch.cuda.get_device_name(0) if gpu else platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}")
    print("| model | how | processes x threads | global batch | train img/s | vs plain |")
    print("|---|---|---|---|---|---|")
    me = [os.path.abspath(__file__), "--ddp-worker", "--steps", str(a.steps), "--batch", str(a.batch)]
    runs = [("plain (no DDP)", 1, [sys.executable]),
            ("torchrun, DDP", 1, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                  "--nproc_per_node", "1"])]
    if not gpu or torch.cuda.device_count() > 1:
        runs.append(("torchrun, DDP", 2, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                          "--nproc_per_node", "2"]))
    for model in a.models.split(","):
        base = None
        for how, procs, launcher in runs:
            threads = max(1, a.threads // procs)
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            out = subprocess.run([*launcher, *me, "--models", model], env=env, capture_output=True, text=True)
            line = [t for t in out.stdout.splitlines() if t.startswith("RESULT ")]
            if out.returncode or not line:
                raise SystemExit(f"{how} x{procs} failed:\n{out.stdout}\n{out.stderr}")
            r = json.loads(line[0][7:])
            base = base or r["ips"]
            print(f"| {model} | {how} ({r['backend']}, {r['device']}) | {procs} x {threads} | {a.batch} "
                  f"| {r['ips']:.0f} | {r['ips'] / base:.2f}x |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="seed,fernet_s,fernet_m")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ddp", action="store_true", help="1 vs 2 processes (and the DDP path's own cost)")
    ap.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=128, help="global batch of the --ddp runs")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    if a.ddp_worker:
        return ddp_worker(a.models.split(",")[0], a.steps, a.batch, a.device)
    if a.ddp:
        return ddp_table(a)
    torch.set_num_threads(a.threads)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {a.threads} threads, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("| model | params | precision | channels-last | train img/s (batch 128) | eval img/s (batch 512) "
          "| est. epoch (28,709 imgs) |")
    print("|---|---|---|---|---|---|---|")
    for name in a.models.split(","):
        n = count_params(create_model(name))
        for amp in (False, True):
            for cl in (False, True):
                tr, ev = bench(name, amp, cl, a.steps)
                print(f"| {name} | {n / 1e6:.2f} M | {'bf16' if amp else 'fp32'} | {'yes' if cl else 'no'} "
                      f"| {tr:.0f} | {ev:.0f} | {28709 / tr / 60:.1f} min |", flush=True)


if __name__ == "__main__":
    main()
