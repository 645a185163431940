"""Data-parallel training with real processes: `torchrun --nproc_per_node 2 -m ferkit train` on CPU (gloo),
on real FER2013 images, against a single-process run with the same global batch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from test_train import small_real  # noqa: F401  (fixture)

from ferkit.checkpoint import load_checkpoint
from ferkit.cli import main

RUN_FILES = {"last.pt", "best.pt", "metrics.csv", "curves.png", "config.json"}
# Same global batch, same images per step, no augmentation, no dropout. Without batch norm (the `seed` CNN) one
# process and two compute the same thing up to float rounding (measured after 5 steps: train loss 9e-6 apart,
# val loss 1.7e-4); with batch norm on CPU each process normalises with its own half-batch statistics
# (PyTorch's SyncBatchNorm is GPU-only), which moves the losses more (fernet_s, 14 images per process, after
# 10 steps: train loss 0.083 apart, val loss 0.076).
EXACT_TOL = 1e-3
BN_TOL = 0.15


def _args(data, out, name, *extra, model=("fernet_s", "dropout=0")):
    return ["train", "--data", str(data), "--out-dir", str(out), "--name", name, "--model", model[0],
            *[a for kv in model[1:] for a in ("--model-arg", kv)], "--batch-size", "28", "--optimizer", "adam",
            "--lr", "0.002", "--augment", "none", "--ema", "0", "--weight-decay", "0", "--label-smoothing", "0",
            "--warmup-epochs", "0", "--schedule", "none", "--no-progress", "--dist-timeout", "60", *extra]


def _torchrun(args, nproc=2):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "ferkit", *args]


def _env():
    return dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")


def _run(args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run(_torchrun(args), env=_env(), capture_output=True, text=True, timeout=timeout)


class Launch:
    """A torchrun run whose combined output is read line by line as it comes."""

    def __init__(self, args):
        self.proc = subprocess.Popen(_torchrun(args), env=_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(text in line for line in self.lines):
                return
            assert self.proc.poll() is None or any(text in line for line in self.lines), self.output()
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} within {timeout}s:\n{self.output()}")

    def worker(self, local_rank: int) -> int:
        """pid of the worker process with this LOCAL_RANK (a child of torchrun)."""
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                env = (d / "environ").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.proc.pid and f"LOCAL_RANK={local_rank}".encode() in env:
                return int(d.name)
        raise AssertionError(f"no worker with LOCAL_RANK={local_rank} under torchrun {self.proc.pid}")

    def finish(self, timeout: float) -> tuple[int, str]:
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return rc, self.output()

    def output(self) -> str:
        return "".join(self.lines)


@pytest.fixture(scope="module")
def two_runs(small_real, tmp_path_factory):  # noqa: F811
    """The same 2-epoch run (10 steps of 28 images) in one process and in two."""
    out = tmp_path_factory.mktemp("ddp")
    assert main(_args(small_real, out, "one", "--epochs", "2", "--threads", "2")) == 0
    res = _run(_args(small_real, out, "two", "--epochs", "2"))
    assert res.returncode == 0, res.stdout + res.stderr
    return out, res.stdout


def test_global_batches_hold_the_same_images_with_one_or_two_processes():
    from ferkit.train.distributed import Dist

    n, batch = 143, 28
    one = list(Dist().sampler(n, 5))
    shards = [list(Dist(rank=r, world=2, backend="gloo").sampler(n, 5)) for r in range(2)]
    for b in range(n // batch):
        two = shards[0][b * 14:(b + 1) * 14] + shards[1][b * 14:(b + 1) * 14]
        assert sorted(two) == sorted(one[b * batch:(b + 1) * batch])
    with pytest.raises(ValueError, match="global batch"):
        Dist(rank=0, world=3, backend="gloo").local_batch(28)


def _losses(run: Path) -> list[tuple[float, float]]:
    return [(h["train_loss"], h["val_loss"]) for h in load_checkpoint(run / "last.pt")["history"]]


def test_two_processes_match_one_and_write_one_set_of_files(two_runs):
    out, stdout = two_runs
    assert set(os.listdir(out)) == {"one", "two"}
    assert set(os.listdir(out / "two")) == RUN_FILES  # no temp files, no second copy
    # only process 0 talks: one header, one line per epoch, one summary
    assert stdout.count("2 processes (gloo), global batch 28 = 14 per process, per-process BN") == 1
    assert stdout.count("epoch   2/2") == 1 and stdout.count("best public accuracy") == 1
    a, b = load_checkpoint(out / "one" / "last.pt"), load_checkpoint(out / "two" / "last.pt")
    assert a["world_size"] == 1 and b["world_size"] == 2 and a["step"] == b["step"] == 10
    one, two = _losses(out / "one"), _losses(out / "two")
    print("fernet_s (batch norm), (train loss, val loss) per epoch: one process", one, "two", two)
    for (ta, va), (tb, vb) in zip(one, two):
        assert abs(ta - tb) < BN_TOL and abs(va - vb) < BN_TOL, (one, two)


def test_without_batch_norm_two_processes_equal_one(small_real, tmp_path):  # noqa: F811
    seed = ("seed", "conv_dropout=0", "dense_dropout=[0, 0]")
    assert main(_args(small_real, tmp_path, "one", "--epochs", "1", "--threads", "2", model=seed)) == 0
    res = _run(_args(small_real, tmp_path, "two", "--epochs", "1", model=seed))
    assert res.returncode == 0, res.stdout + res.stderr
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    print("seed CNN (no batch norm), (train loss, val loss) after 5 steps: one process", one, "two", two)
    assert abs(one[0][0] - two[0][0]) < EXACT_TOL and abs(one[0][1] - two[0][1]) < EXACT_TOL, (one, two)


def test_killed_distributed_run_resumes_to_the_same_weights(two_runs, small_real):  # noqa: F811
    out, _ = two_runs
    run = Launch(_args(small_real, out, "killed", "--epochs", "40"))
    run.wait_for("epoch   1/40")
    run.proc.send_signal(signal.SIGTERM)  # what a scheduler sends; torchrun passes it to its workers
    rc, text = run.finish(timeout=60)
    assert rc != 0 and "continue with --resume" in text, text
    assert (out / "killed" / "interrupted.pt").is_file()
    assert load_checkpoint(out / "killed" / "last.pt")["epoch"] == 1
    res = _run(_args(small_real, out, "killed", "--epochs", "2", "--resume"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "resume: changed by flags: epochs 40 -> 2" in res.stdout
    assert "resumed" in res.stdout and res.stdout.count("epoch   2/2") == 1
    a, b = load_checkpoint(out / "two" / "last.pt"), load_checkpoint(out / "killed" / "last.pt")
    assert b["epoch"] == 2
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k


def test_a_crashed_process_ends_the_run_with_an_error(small_real, tmp_path):  # noqa: F811
    run = Launch(_args(small_real, tmp_path, "crash", "--epochs", "40"))
    run.wait_for("epoch   1/40")
    os.kill(run.worker(1), signal.SIGKILL)  # as the out-of-memory killer would
    t0 = time.time()
    rc, text = run.finish(timeout=60)
    assert rc != 0 and time.time() - t0 < 45, text
    assert "SIGKILL" in text and re.search(r"rank\s*:\s*1 ", text), text  # torchrun names the failed process


def test_a_process_that_stops_answering_times_out(small_real, tmp_path):  # noqa: F811
    # many epochs: a loaded machine must not finish the run before the worker is found and stopped
    run = Launch([*_args(small_real, tmp_path, "hang", "--epochs", "400"), "--dist-timeout", "5"])
    run.wait_for("epoch   1/400")
    pid = run.worker(1)
    os.kill(pid, signal.SIGSTOP)  # alive but silent: only a timeout can tell
    try:
        run.wait_for("did not answer within --dist-timeout 5s", timeout=40)
    finally:
        os.kill(pid, signal.SIGCONT)  # let torchrun's SIGTERM reach it
    rc, text = run.finish(timeout=60)
    assert rc != 0 and "ferkit train: error: process 0 of 2" in text, text
