"""Training and evaluation throughput on this CPU: images/s per model, fp32 vs bf16 autocast, with and
without channels-last, side by side in one run (the `seed` CNN is the baseline).

    python benchmarks/bench_train.py [--models seed,fernet_s,fernet_m] [--steps 12] [--threads 2]

Each training step is the real one (augmentation on the batch, forward, loss, backward, SGD step) at
batch 128; evaluation is inference at batch 512. The first 2 steps are warm-up and not timed.
"""

from __future__ import annotations

import argparse
import platform
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="seed,fernet_s,fernet_m")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
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
