"""End to end on real FER2013 images: train, resume, interrupt, evaluate, export."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ferkit.checkpoint import load_checkpoint, model_from_checkpoint
from ferkit.cli import main
from ferkit.emotions import EMOTIONS

TRAIN_PER_CLASS = 20
TEST_PER_CLASS = 20


@pytest.fixture(scope="module")
def small_real(tmp_path_factory, fer_root) -> Path:
    """A real subset in the msambare layout: 20 train images per class, 20+20 Public/PrivateTest."""
    root = tmp_path_factory.mktemp("fer-small")
    for emo in EMOTIONS:
        files = sorted((fer_root / "train" / emo).iterdir())[:TRAIN_PER_CLASS]
        test = sorted((fer_root / "test" / emo).iterdir())
        pub = [f for f in test if f.name.startswith("PublicTest_")][:TEST_PER_CLASS]
        pri = [f for f in test if f.name.startswith("PrivateTest_")][:TEST_PER_CLASS]
        for sub, fs in (("train", files), ("test", pub + pri)):
            (root / sub / emo).mkdir(parents=True)
            for f in fs:
                shutil.copy(f, root / sub / emo / f.name)
    return root


def _train_args(data, out, name, *extra):
    return ["train", "--data", str(data), "--out-dir", str(out), "--name", name, "--model", "fernet_s",
            "--batch-size", "16", "--optimizer", "adam", "--lr", "0.002", "--augment", "none", "--ema", "0",
            "--weight-decay", "0",
            "--label-smoothing", "0", "--warmup-epochs", "0", "--schedule", "cosine", "--no-progress",
            "--threads", "2", *extra]


@pytest.fixture(scope="module")
def trained(small_real, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(_train_args(small_real, out, "e2e", "--epochs", "12")) == 0
    return out / "e2e"


def test_training_writes_everything_and_learns(trained, small_real):
    for f in ("last.pt", "best.pt", "metrics.csv", "curves.png", "config.json"):
        assert (trained / f).is_file(), f
    ck = load_checkpoint(trained / "last.pt")
    assert ck["epoch"] == 12 and ck["labels"] == list(EMOTIONS) and ck["model"] == "fernet_s"
    assert {"state_dict", "optimizer", "config", "history"} <= set(ck)
    hist = ck["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.1
    # accuracy on what it trained on is well above chance (7 balanced classes: 1/7)
    out = trained / "eval-train"
    assert main(["evaluate", str(trained / "last.pt"), "--data", str(small_real), "--split", "train",
                 "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["accuracy"] > 0.35
    assert rep["n"] == 7 * TRAIN_PER_CLASS
    assert set(rep["per_class"]) == set(EMOTIONS)
    assert (out / "confusion.png").stat().st_size > 10_000


def test_evaluate_private_split_with_tta(trained, small_real, capsys):
    out = trained / "eval-private"
    assert main(["evaluate", str(trained / "best.pt"), "--data", str(small_real), "--split", "private",
                 "--tta", "flip", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "macro-F1" in text and "surprise" in text
    rep = json.loads((out / "report.json").read_text())
    assert rep["n"] == 7 * TEST_PER_CLASS and rep["tta"] == "flip"
    assert np.array(rep["confusion_matrix"]).sum() == rep["n"]


def test_checkpoint_round_trip(trained, small_real):
    from ferkit.data import load_split

    ck = load_checkpoint(trained / "last.pt")
    m1 = model_from_checkpoint(ck, use_ema=False)
    m2 = model_from_checkpoint(trained / "last.pt")
    x = torch.from_numpy(load_split(small_real, "public").images[:16]).unsqueeze(1).float()
    with torch.no_grad():
        assert torch.equal(m1(x), m2(x))


def test_resume_reaches_the_same_weights(small_real, tmp_path):
    assert main(_train_args(small_real, tmp_path, "straight", "--epochs", "2", "--limit", "64")) == 0
    # a 2-epoch run stopped after its first epoch (4 steps of 16), as if killed, then resumed
    assert main(_train_args(small_real, tmp_path, "resumed", "--epochs", "2", "--limit", "64", "--max-steps", "4")) == 0
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 1
    assert main(_train_args(small_real, tmp_path, "resumed", "--epochs", "2", "--limit", "64", "--resume")) == 0
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert b["epoch"] == 2
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


def test_ctrl_c_saves_and_exits_cleanly(small_real, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    args = _train_args(small_real, tmp_path, "sigint", "--epochs", "50")
    proc = subprocess.Popen([sys.executable, "-m", "ferkit.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = tmp_path / "sigint" / "metrics.csv"
    deadline = time.time() + 120
    while not metrics.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert metrics.exists(), proc.communicate()[0]
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "--resume" in out
    assert (tmp_path / "sigint" / "interrupted.pt").is_file()
    done = load_checkpoint(tmp_path / "sigint" / "last.pt")["epoch"]
    assert 1 <= done < 50
    # and it resumes from there
    assert main(_train_args(small_real, tmp_path, "sigint", "--epochs", str(done + 1), "--resume")) == 0
    assert load_checkpoint(tmp_path / "sigint" / "last.pt")["epoch"] == done + 1


def test_export_onnx_parity_and_contract(trained, small_real, tmp_path):
    import onnx
    import onnxruntime as ort

    from ferkit.data import load_split

    out = tmp_path / "m.onnx"
    assert main(["export", str(trained / "best.pt"), "--out", str(out), "--tta", "flip",
                 "--parity-data", str(small_real)]) == 0
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["labels"]) == list(EMOTIONS) and meta["tta"] == "flip"
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].name == "pixels" and sess.get_outputs()[0].name == "probs"
    imgs = load_split(small_real, "private").images
    probs = sess.run(None, {"pixels": imgs[:, None].astype(np.float32)})[0]
    assert probs.shape == (len(imgs), 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    from ferkit.evaluate import predict_probs

    ref = predict_probs(model_from_checkpoint(trained / "best.pt"), imgs, tta="flip")
    assert np.abs(ref - probs).max() < 1e-4


def test_config_file_and_unknown_keys(small_real, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: fernet_s\nepochs: 1\nbatch_size: 64\naugment: strong\nlimit: 128\nval_limit: 64\n")
    assert main(["train", "--config", str(cfg), "--data", str(small_real), "--out-dir", str(tmp_path),
                 "--name", "cfg", "--no-progress"]) == 0
    assert json.loads((tmp_path / "cfg" / "config.json").read_text())["batch_size"] == 64
    cfg.write_text("modle: seed\n")
    assert main(["train", "--config", str(cfg), "--data", str(small_real)]) == 2


def test_seed_recipe_config_is_the_original():
    from ferkit.train import TrainConfig

    cfg = TrainConfig.from_file(Path(__file__).resolve().parents[1] / "configs" / "seed.yaml")
    assert (cfg.model, cfg.optimizer, cfg.lr, cfg.epochs, cfg.batch_size) == ("seed", "adam", 1e-3, 100, 128)
    assert cfg.augment == "none" and cfg.label_smoothing == 0 and cfg.ema == 0 and cfg.schedule == "none"


def test_import_ferkit_does_not_import_torch():
    code = "import sys, ferkit, ferkit.emotions, ferkit.data, ferkit.metrics, ferkit.weights; " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_export_int8_weights_quarter_size_same_answers(trained, small_real, tmp_path):
    import onnx
    import onnxruntime as ort

    from ferkit.data import load_split

    sizes, probs = {}, {}
    imgs = load_split(small_real, "private").images[:, None].astype(np.float32)
    for w in ("float32", "int8"):
        out = tmp_path / f"{w}.onnx"
        assert main(["export", str(trained / "best.pt"), "--out", str(out), "--weights", w,
                     "--parity-data", str(small_real)]) == 0
        sizes[w] = out.stat().st_size
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        probs[w] = sess.run(["probs"], {"pixels": imgs})[0]
        meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert meta["weights_storage"].startswith(w)
    assert sizes["int8"] < sizes["float32"] / 3.5
    assert np.abs(probs["int8"] - probs["float32"]).max() < 0.05
    assert (probs["int8"].argmax(1) == probs["float32"].argmax(1)).mean() >= 0.97


def test_resume_keeps_the_checkpoint_config_and_says_what_changed(small_real, tmp_path, capsys):
    """Issue 14 #6 / issue 15: a resumed run is the same run; given flags change it, and it says so."""
    common = ["--out-dir", str(tmp_path), "--name", "r", "--model", "fernet_s", "--batch-size", "28",
              "--no-progress", "--threads", "2"]
    assert main(["train", "--data", str(small_real), *common, "--epochs", "1", "--limit", "56",
                 "--val-limit", "50", "--augment", "none"]) == 0
    capsys.readouterr()
    # no --epochs (default 60), no --data: both come from the checkpoint; nothing left to train
    assert main(["train", *common, "--resume", "--max-steps", "4"]) == 0
    text = capsys.readouterr().out
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ck["epoch"] == 1 and ck["config"]["epochs"] == 1 and ck["config"]["val_limit"] == 50
    assert "kept from the checkpoint" in text and "epochs 1 (not 60)" in text and "nothing to train" in text
    # explicit flags change the run, and are listed
    assert main(["train", *common, "--resume", "--epochs", "2", "--val-limit", "20"]) == 0
    text = capsys.readouterr().out
    assert "changed by flags: epochs 1 -> 2, val_limit 50 -> 20" in text and "select on 20 (public)" in text
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ck["epoch"] == 2 and ck["config"]["val_limit"] == 20 and ck["config"]["augment"] == "none"
    # a saved run cannot continue as another network
    assert main(["train", *common, "--resume", "--model", "seed"]) == 2
    assert "resumed run keeps it" in capsys.readouterr().err


def test_init_starts_from_a_checkpoints_weights(trained, small_real, tmp_path, capsys):
    """--init: fine-tuning starts from the given weights (with the learning rate at 0 they come out unchanged),
    and a checkpoint of another model is refused with a message naming the file."""
    src = load_checkpoint(trained / "last.pt")
    assert main(_train_args(small_real, tmp_path, "ft", "--epochs", "1", "--lr", "0",
                            "--init", str(trained / "last.pt"))) == 0
    got = load_checkpoint(tmp_path / "ft" / "last.pt")["state_dict"]
    convs = [k for k in src["state_dict"] if k.endswith("0.weight") and src["state_dict"][k].ndim == 4]
    assert convs and all(torch.equal(got[k], src["state_dict"][k]) for k in convs)
    capsys.readouterr()
    assert main(_train_args(small_real, tmp_path, "bad", "--epochs", "1", "--model", "fernet_xs",
                            "--init", str(trained / "last.pt"))) != 0
    assert re.search(r"last\.pt: --init holds a fernet_s .*this run trains a fernet_xs", capsys.readouterr().err)
    # a resumed run cannot start again from other weights: refused, not silently ignored
    other = tmp_path / "other.pt"
    shutil.copy(trained / "best.pt", other)
    assert main(_train_args(small_real, tmp_path, "ft", "--epochs", "2", "--lr", "0", "--resume",
                            "--init", str(other))) == 2
    assert "--init" in (err := capsys.readouterr().err) and "resumed run keeps it" in err
