"""FER+ votes through the commands: a short real training on the votes, ``ferkit evaluate`` under both label sets
(a shipped ONNX model and a checkpoint; folders with ferplus_votes.csv and fer2013.csv with fer2013new.csv)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_ferplus import VOTES, _write_pair

from ferkit.checkpoint import load_checkpoint, model_from_checkpoint
from ferkit.cli import main
from ferkit.data import load_split
from ferkit.data.ferplus import ENV, majority, vote_targets, votes_for
from ferkit.emotions import EMOTIONS
from ferkit.evaluate import predict_probs
from ferkit.metrics_crowd import vote_cross_entropy
from ferkit.models import create_model

TRAIN_PER_CLASS, NO_NAME, PUBLIC, PRIVATE = 40, 4, 10, 20


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    if not VOTES.is_file():
        pytest.fail(f"FER+ votes not found at {VOTES}; the tests use the real votes")
    with open(VOTES, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def voted(tmp_path_factory, fer_root, rows) -> Path:
    """A msambare-layout copy of real images: 40 Training per class, plus 4 that FER+ left without a name
    (not faces: no vote target), and 10 + 20 Public/PrivateTest per class."""
    root = tmp_path_factory.mktemp("fer-voted")
    files = []
    for emo in EMOTIONS:
        mine = sorted(r["file"] for r in rows if r["msambare_label"] == emo and r["status"] == "unique")
        files += [f for f in mine if "/Training_" in f][:TRAIN_PER_CLASS]
        files += [f for f in mine if "/PublicTest_" in f][:PUBLIC] + [f for f in mine if "/PrivateTest_" in f][:PRIVATE]
    files += [r["file"] for r in rows if r["usage"] == "Training" and r["status"].startswith("unmatched")][:NO_NAME]
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fer_root / f, root / f)
    return root


def _train(data, out, name, *extra):
    return main(["train", "--data", str(data), "--out-dir", str(out), "--name", name, "--model", "fernet_xxs",
                 "--batch-size", "16", "--optimizer", "adam", "--lr", "0.003", "--augment", "none", "--ema", "0",
                 "--weight-decay", "0", "--label-smoothing", "0", "--warmup-epochs", "0", "--no-progress",
                 "--threads", "2", "--votes", str(VOTES), *extra])


@pytest.fixture(scope="module")
def votes_run(voted, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert _train(voted, out, "votes", "--labels", "ferplus", "--epochs", "3") == 0
    return out / "votes"


def test_training_on_votes_lowers_vote_cross_entropy(votes_run, voted, capfd):
    ck = load_checkpoint(votes_run / "last.pt")
    assert ck["config"]["labels"] == "ferplus" and ck["val_labels"] == "ferplus-majority"
    train = load_split(voted, "train")
    vt = vote_targets(votes_for(train, VOTES))
    assert len(train) == 7 * TRAIN_PER_CLASS + NO_NAME and vt.dropped()["no_name"] == NO_NAME
    images, targets = train.images[vt.keep], vt.probs[vt.keep]
    torch.manual_seed(0)  # the run's seed: the weights it started from
    before = vote_cross_entropy(predict_probs(create_model("fernet_xxs"), images), targets)["value"]
    after = vote_cross_entropy(predict_probs(model_from_checkpoint(ck), images), targets)["value"]
    assert after < before - 0.2, (before, after)
    # the images trained on: those with a vote target; the log says how many and why the others were left out
    assert ck["history"][-1]["step"] == 3 * (int(vt.keep.sum()) // 16)


def test_mixture_and_teacher_together(voted, tmp_path, capsys):
    from ferkit.data.softlabels import image_keys, save_soft_labels

    train = load_split(voted, "train")
    teacher = np.full((len(train), 7), 1 / 7, np.float32)  # a uniform teacher: the kd path still applies on top
    save_soft_labels(tmp_path / "soft.npz", image_keys(train.images), teacher)
    assert _train(voted, tmp_path, "mix", "--labels", "mix:0.5", "--soft-labels", str(tmp_path / "soft.npz"),
                  "--kd-alpha", "0.3", "--max-steps", "2", "--epochs", "1") == 0
    out = capsys.readouterr().out
    kept = int(vote_targets(votes_for(train, VOTES)).keep.sum())
    assert f"training on {kept} of {len(train)} images" in out and f"{NO_NAME} no_name" in out
    assert "selecting best.pt on FER+ majority labels" in out
    assert load_checkpoint(tmp_path / "mix" / "last.pt")["config"]["labels"] == "mix:0.5"
    assert main(["train", "--data", str(voted), "--labels", "votes:2"]) == 2
    assert "fer2013 | ferplus | mix:W" in capsys.readouterr().err


def test_plausible_labels_train_through_the_cli_and_say_so_in_the_export(voted, tmp_path, capsys):
    assert _train(voted, tmp_path, "pl", "--labels", "plausible:1", "--max-steps", "2", "--epochs", "1") == 0
    out = capsys.readouterr().out
    assert "labels plausible:1" in out and "selecting best.pt on FER+ majority labels" in out
    assert load_checkpoint(tmp_path / "pl" / "last.pt")["config"]["labels"] == "plausible:1"
    assert main(["export", str(tmp_path / "pl" / "last.pt"), "--out", str(tmp_path / "pl.onnx")]) == 0
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "pl.onnx")).metadata_props}
    assert meta["trained_labels"] == "plausible:1"


def _evaluate(model, data, out, *extra) -> dict:
    assert main(["evaluate", str(model), "--data", str(data), "--out", str(out), "--json", str(out / "r.json"),
                 *extra]) == 0
    return json.loads((out / "r.json").read_text())


def test_evaluate_onnx_both_label_sets(voted, tmp_path, capsys, monkeypatch):
    from ferkit.recognizer import Recognizer

    rep = _evaluate("fast", voted, tmp_path / "e", "--split", "private", "--votes", str(VOTES))
    fp = rep["ferplus"]
    assert rep["n"] == fp["images"] == 7 * PRIVATE
    m = fp["majority"]
    assert m["kept"] + sum(m["dropped"].values()) == 7 * PRIVATE and m["n"] == m["kept"] > 0.7 * 7 * PRIVATE
    # the same figure recomputed from the model's own answers and the majority of the same images
    ds = load_split(voted, "private")
    maj = majority(votes_for(ds, VOTES))
    pred = Recognizer(model="fast", detector="full").predict_arrays(ds.images).argmax(1)
    assert m["accuracy"] == pytest.approx(float((pred[maj.keep] == maj.labels[maj.keep]).mean()))
    assert np.array(m["confusion_matrix"]).sum() == m["kept"] and set(m["per_class"]) == set(EMOTIONS)
    ce, h = fp["vote_cross_entropy"], fp["human_agreement"]
    assert 0 < ce["target_entropy"] < ce["value"] and ce["n"] + sum(ce["dropped"].values()) == 7 * PRIVATE
    assert 0.5 < h["value"] < 1 and 0 < h["model_value"] < 1 and h["images"] == m["kept"]
    assert 0 <= m["ece"] < 1 and 0 <= fp["original_label_agreement"] <= 1
    assert (tmp_path / "e" / "confusion-ferplus.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert f"FER+ majority (7 classes): {m['kept']} of {7 * PRIVATE} images kept" in out and "human reference" in out
    # found through $FERKIT_FERPLUS; left out with --votes none; a copy without votes beside it: no section
    monkeypatch.setenv(ENV, str(VOTES))
    assert _evaluate("fast", voted, tmp_path / "env", "--split", "private")["ferplus"]["majority"] == m
    assert "ferplus" not in _evaluate("fast", voted, tmp_path / "none", "--split", "private", "--votes", "none")
    monkeypatch.delenv(ENV)
    assert "ferplus" not in _evaluate("fast", voted, tmp_path / "plain", "--split", "private")


def test_evaluate_checkpoint_and_csv_pair(votes_run, voted, rows, tmp_path, fer_root, capsys):
    rep = _evaluate(votes_run / "last.pt", voted, tmp_path / "ck", "--split", "public", "--votes", str(VOTES))
    assert rep["ferplus"]["images"] == 7 * PUBLIC and rep["ferplus"]["majority"]["kept"] > 0
    # fer2013.csv with FER+'s fer2013new.csv beside it: found and matched row by row
    pick = [r for r in rows if r["file"].startswith("test/") and (voted / r["file"]).exists()]
    old, new = _write_pair(tmp_path / "pair", pick, fer_root, VOTES)
    from_csv = _evaluate("fast", old, tmp_path / "csv", "--split", "private")["ferplus"]
    from_folder = _evaluate("fast", voted, tmp_path / "dir", "--split", "private", "--votes", str(VOTES))["ferplus"]
    assert from_csv["votes"] == str(new)
    for key in ("kept", "dropped", "confusion_matrix"):
        assert from_csv["majority"][key] == from_folder["majority"][key]
    capsys.readouterr()
    assert main(["evaluate", "fast", "--data", str(voted), "--split", "private", "--votes", str(new),
                 "--out", str(tmp_path / "bad")]) == 2
    assert "matched row by row" in capsys.readouterr().err
