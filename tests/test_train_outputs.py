"""Issue 20: what train and export write. A signal between the two checkpoint saves (item 13), and the output
rules of ferkit.outputs for the run folder and the exported file (item 2). Real training on real FER2013 images."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from ferkit.checkpoint import load_checkpoint
from ferkit.cli import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, fer_root) -> Path:
    """3 train images per class, 2 PublicTest + 2 PrivateTest per class (real FER2013 files)."""
    import shutil

    from ferkit.emotions import EMOTIONS

    root = tmp_path_factory.mktemp("tiny-fer")
    for emo in EMOTIONS:
        test = sorted((fer_root / "test" / emo).iterdir())
        picks = {"train": sorted((fer_root / "train" / emo).iterdir())[:3],
                 "test": [f for f in test if f.name.startswith("PublicTest_")][:2]
                 + [f for f in test if f.name.startswith("PrivateTest_")][:2]}
        for sub, files in picks.items():
            (root / sub / emo).mkdir(parents=True)
            for f in files:
                shutil.copy(f, root / sub / emo / f.name)
    return root


def _args(data, out, name, *extra):
    return ["train", "--data", str(data), "--out-dir", str(out), "--name", name, "--model", "fernet_s",
            "--batch-size", "8", "--optimizer", "adam", "--lr", "0.002", "--augment", "none", "--ema", "0",
            "--warmup-epochs", "0", "--no-progress", "--threads", "2", *extra]


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    assert main(_args(tiny, out, "one", "--epochs", "1")) == 0
    return out / "one"


def test_a_signal_between_the_two_checkpoint_saves_leaves_best_pt_with_best_acc(tiny, tmp_path, monkeypatch):
    """Item 13: SIGINT right after the first checkpoint file of an improving epoch is on disk. The run stops
    (130) with best.pt holding the weights of the best_acc that last.pt reports, never behind it."""
    import ferkit.train.run as run_mod

    real_save, saved = run_mod.atomic_torch_save, []

    def save_then_signal(obj, path):
        real_save(obj, path)
        saved.append(Path(path).name)
        if len(saved) == 1:  # a real signal, delivered to this process between the two saves
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(run_mod, "atomic_torch_save", save_then_signal)
    assert main(_args(tiny, tmp_path, "cut", "--epochs", "3")) == 130
    last = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert (tmp_path / "cut" / "best.pt").is_file(), f"saved: {saved}"
    best = load_checkpoint(tmp_path / "cut" / "best.pt")
    assert last["epoch"] == best["epoch"] == 1 and best["best_acc"] == last["best_acc"]
    assert last["best_acc"] == max(h["val_acc"] for h in last["history"])
    assert all(torch.equal(best["state_dict"][k], last["state_dict"][k]) for k in last["state_dict"])
    assert (tmp_path / "cut" / "interrupted.pt").is_file()
    # --resume goes on from the recorded epoch and reports the same best
    monkeypatch.setattr(run_mod, "atomic_torch_save", real_save)
    assert main(_args(tiny, tmp_path, "cut", "--epochs", "2", "--resume")) == 0
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2


def test_train_never_replaces_its_own_inputs_or_another_run(run, tiny, capsys):
    """Item 2 for train: --init inside the run folder it would write, and a new run over a finished one,
    are refused before anything is written; the checkpoints stay byte for byte."""
    out, before = run.parent, {f: (run / f).read_bytes() for f in ("best.pt", "last.pt")}
    assert main(_args(tiny, out, "one", "--epochs", "1", "--init", str(run / "best.pt"))) == 2
    err = capsys.readouterr().err
    assert "is an input of this run (--init" in err and "best.pt" in err
    assert main(_args(tiny, out, "one", "--epochs", "1")) == 2
    err = capsys.readouterr().err
    assert "holds a run already" in err and "--resume" in err
    assert main(_args(tiny, out, "two", "--epochs", "1", "--config", str(run / "config.json"),
                      "--out-dir", str(out), "--name", "one", "--resume")) == 2
    assert "(--config " in capsys.readouterr().err
    assert {f: (run / f).read_bytes() for f in ("best.pt", "last.pt")} == before


def test_export_never_writes_over_a_checkpoint_or_under_another_name(run, tiny, tmp_path, capsys):
    """Item 2: `ferkit export victim.pt --out victim.pt` used to replace the checkpoint with ONNX."""
    victim = tmp_path / "victim.pt"
    victim.write_bytes((run / "best.pt").read_bytes())
    before = victim.read_bytes()
    assert main(["export", str(victim), "--out", str(victim)]) == 2
    assert "not a .onnx file name" in capsys.readouterr().err
    link = tmp_path / "link.onnx"
    link.symlink_to(victim)
    assert main(["export", str(victim), "--out", str(link)]) == 2
    assert f"is an input of this run (CHECKPOINT {victim})" in capsys.readouterr().err
    onnx_out = str(tmp_path / "m.onnx")
    assert main(["export", str(victim), "--out", onnx_out, "--parity-data", onnx_out]) == 2
    assert "(--parity-data " in capsys.readouterr().err
    assert victim.read_bytes() == before and not (tmp_path / "m.onnx").exists()


def test_the_scripts_users_run_never_write_over_their_inputs(run, tiny, tmp_path):
    """Item 2 for the scripts docs/training.md tells users to run: each checks its outputs against its inputs
    first (ferkit.outputs), and says which option named the input."""
    import json
    import subprocess
    import sys

    scripts = Path(__file__).resolve().parents[1] / "scripts"
    ckpt = tmp_path / "m" / "best.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes((run / "best.pt").read_bytes())
    speed = tmp_path / "speed.json"
    speed.write_text(json.dumps({"m": 1.0}))
    cases = [
        (["soft_labels.py", str(ckpt), "--data", str(tiny), "--out", str(ckpt)], ckpt, "(CHECKPOINT "),
        (["quant_pareto.py", "--bank", str(tmp_path), "--speed", str(speed), "--json", str(speed)], speed,
         "(--speed "),
    ]
    for argv, victim, said in cases:
        before = victim.read_bytes()
        r = subprocess.run([sys.executable, str(scripts / argv[0]), *argv[1:]], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 2 and f"is an input of this run {said}" in r.stderr, (argv[0], r.stderr)
        assert victim.read_bytes() == before
