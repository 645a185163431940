"""Knowledge distillation plumbing on real FER2013 images: soft-label files keyed by pixel content,
out-of-fold splits that keep duplicates together, and training on teacher targets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_train import _train_args, small_real  # noqa: F401  (fixture)

from ferkit.checkpoint import load_checkpoint
from ferkit.cli import main
from ferkit.data import load_split
from ferkit.data.softlabels import fold_of, image_keys, load_soft_labels, save_soft_labels
from ferkit.emotions import EMOTIONS


def test_keys_follow_content_not_order(small_real, tmp_path):  # noqa: F811
    ds = load_split(small_real, "train")
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7), len(ds)).astype(np.float32)
    f = tmp_path / "soft.npz"
    save_soft_labels(f, image_keys(ds.images), probs, teachers=["test"])
    perm = rng.permutation(len(ds))
    got = load_soft_labels(f, ds.images[perm])
    assert np.allclose(got, probs[perm], atol=1e-3)  # stored as float16
    assert np.allclose(got.sum(1), 1, atol=1e-6)
    # an image the file does not know is an error that names the file
    other = load_split(small_real, "public").images[:3]
    with pytest.raises(ValueError, match="soft.npz.*no soft label for 3 of"):
        load_soft_labels(f, other)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_soft_labels(tmp_path / "nope.npz", ds.images)


def test_folds_keep_duplicates_together_and_cover_everything(small_real):  # noqa: F811
    ims = load_split(small_real, "train").images
    ims = np.concatenate([ims, ims[:10]])  # ten exact duplicates
    folds = fold_of(image_keys(ims), 4)
    assert set(folds) == {0, 1, 2, 3}
    assert (folds[-10:] == folds[:10]).all()
    assert np.bincount(folds).min() > len(ims) / 4 * 0.5  # roughly balanced


def test_kd_with_one_hot_teacher_equals_plain_training(small_real, tmp_path):  # noqa: F811
    """A teacher that says exactly the labels changes nothing: kd_alpha 1 gives the same weights."""
    ds = load_split(small_real, "train")
    f = tmp_path / "onehot.npz"
    save_soft_labels(f, image_keys(ds.images), np.eye(7, dtype=np.float32)[ds.labels])
    common = ("--epochs", "1", "--limit", "64", "--augment", "strong", "--label-smoothing", "0.1")
    assert main(_train_args(small_real, tmp_path, "plain", *common)) == 0
    assert main(_train_args(small_real, tmp_path, "kd", *common, "--soft-labels", str(f), "--kd-alpha", "1")) == 0
    a = load_checkpoint(tmp_path / "plain" / "last.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "kd" / "last.pt")
    assert b["config"]["kd_alpha"] == 1 and b["config"]["soft_labels"] == str(f)
    for k in a:
        assert torch.allclose(a[k], b["state_dict"][k], atol=1e-6), k


def test_kd_teacher_changes_training_and_fold_holds_out(small_real, tmp_path, capsys):  # noqa: F811
    ds = load_split(small_real, "train")
    f = tmp_path / "uniform.npz"
    save_soft_labels(f, image_keys(ds.images), np.full((len(ds), 7), 1 / 7, np.float32))
    assert main(_train_args(small_real, tmp_path, "kdu", "--epochs", "1", "--folds", "4", "--fold", "2",
                            "--soft-labels", str(f), "--kd-alpha", "0.5")) == 0
    out = capsys.readouterr().out
    n_keep = int((fold_of(image_keys(ds.images), 4) != 2).sum())
    assert f"training on {n_keep} images" in out and n_keep < len(ds)
    hist = load_checkpoint(tmp_path / "kdu" / "last.pt")["history"]
    # half of every target is uniform, so the loss cannot drop below that of the uniform part
    assert hist[0]["train_loss"] > 0.5 * np.log(7)
    cfg = json.loads((tmp_path / "kdu" / "config.json").read_text())
    assert (cfg["folds"], cfg["fold"]) == (4, 2)


def test_kd_alpha_without_file_is_a_clear_error(small_real, tmp_path, capsys):  # noqa: F811
    assert main(_train_args(small_real, tmp_path, "bad", "--epochs", "1", "--kd-alpha", "0.5")) == 2
    assert "kd_alpha > 0 needs soft_labels" in capsys.readouterr().err


def test_upsampled_model_keeps_the_48px_contract(small_real, tmp_path):  # noqa: F811
    """--model-arg upsample=64: trained, exported to ONNX, run on 48x48 pixels with parity."""
    import onnxruntime as ort

    assert main(_train_args(small_real, tmp_path, "up", "--epochs", "1", "--limit", "32",
                            "--model-arg", "upsample=64")) == 0
    ck = load_checkpoint(tmp_path / "up" / "best.pt")
    assert ck["model_kwargs"] == {"upsample": 64}
    onnx_path = tmp_path / "up.onnx"
    assert main(["export", str(tmp_path / "up" / "best.pt"), "--out", str(onnx_path),
                 "--parity-data", str(small_real)]) == 0
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ims = load_split(small_real, "private").images[:8]
    probs = sess.run(["probs"], {"pixels": ims[:, None].astype(np.float32)})[0]
    assert probs.shape == (8, len(EMOTIONS)) and np.allclose(probs.sum(1), 1, atol=1e-5)
