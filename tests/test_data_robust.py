"""Dataset paths that used to give silently wrong numbers (issue 14, defects 5, 15, 16) on real FER2013 files,
and a property test of the folder reader over random trees of good, bad and empty files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferkit.cli import main
from ferkit.data import DatasetError, load_split
from ferkit.emotions import EMOTIONS

# --------------------------------------------------------------------------- defect 5: a split folder as --data


def test_split_folder_keeps_public_and_private_apart(tmp_path, kaggle_copy, capsys):
    root = kaggle_copy(tmp_path / "k")  # test/ holds 2 PublicTest_ + 2 PrivateTest_ per class
    test = root / "test"
    assert main(["data", "info", str(test)]) == 0
    rows = {line.split()[0]: int(line.split()[1]) for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows == {"test": 28, "public": 14, "private": 14}
    pri = load_split(test, "private", cache=False)
    assert len(pri) == 14 and all(Path(s).name.startswith("PrivateTest_") for s in pri.sources)
    assert len(load_split(test, "all", cache=False)) == 28
    with pytest.raises(DatasetError, match="has no train split"):
        load_split(test, "train", cache=False)  # a test folder never stands in for training images
    with pytest.raises(DatasetError, match="--split all"):
        load_split(root / "train", "private", cache=False)  # no PrivateTest_ files there: says what to pass


def test_training_on_a_split_folder_refuses_to_select_on_its_own_images(tmp_path, kaggle_copy, capsys):
    pytest.importorskip("torch")
    root = kaggle_copy(tmp_path / "k")
    rc = main(["train", "--data", str(root / "train"), "--out-dir", str(tmp_path / "runs"), "--model", "seed",
               "--epochs", "1", "--max-steps", "1", "--batch-size", "8", "--no-progress", "--threads", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "single split folder" in err and "dataset root" in err
    assert not list((tmp_path / "runs").rglob("best.pt"))


# --------------------------------------------------------------------------- defect 15: wrong dataset paths


@pytest.mark.parametrize("cmd", ["info", "audit"])
def test_wrong_dataset_path_is_an_error(tmp_path, cmd, capsys):
    assert main(["data", cmd, str(tmp_path / "nonexist")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(Path(__file__).parent / "assets" / "astronaut.jpg", flat / "a.jpg")
    assert main(["data", cmd, str(flat)]) == 2
    cap = capsys.readouterr()
    assert "no dataset found" in cap.err and "<root>/train/<emotion>/" in cap.err and cap.out == ""


def test_audit_json_never_replaces_the_dataset(tmp_path, kaggle_copy, capsys):
    import csv

    path = tmp_path / "fer2013.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        w.writerow([3, " ".join(["128"] * 48 * 48), "Training"])
    before = path.read_bytes()
    with pytest.raises(SystemExit) as e:  # --json takes only .json/.jsonl names or '-': refused while parsing
        main(["data", "audit", str(path), "--json", str(path)])
    assert e.value.code == 2 and "argument --json" in capsys.readouterr().err and path.read_bytes() == before
    # a .json name that is an input is refused by the output rules
    js = tmp_path / "d.json"
    js.write_text("{}")
    assert main(["data", "audit", str(js), "--json", str(js)]) == 2
    assert "is an input of this run" in capsys.readouterr().err and js.read_text() == "{}"


# --------------------------------------------------------------------------- defect 16: --split val


@pytest.fixture
def two_checkpoints(tmp_path):
    """best.pt and last.pt of one run: real (untrained) seed networks in the checkpoint format."""
    torch = pytest.importorskip("torch")
    from ferkit.checkpoint import FORMAT, atomic_torch_save
    from ferkit.models import create_model

    run = tmp_path / "run"
    for i, name in enumerate(("best", "last")):
        torch.manual_seed(i)
        atomic_torch_save({"format": FORMAT, "labels": list(EMOTIONS), "model": "seed", "epoch": i,
                           "state_dict": create_model("seed").state_dict()}, run / f"{name}.pt")
    return run


def test_val_is_not_a_split(tmp_path, kaggle_copy, two_checkpoints, capsys):
    root = kaggle_copy(tmp_path / "k")
    for name in ("val", "validation"):
        with pytest.raises(DatasetError, match="validation/ folder is read with 'test'"):
            load_split(root, name, cache=False)  # used to mix PublicTest + PrivateTest silently
        with pytest.raises(SystemExit) as e:  # used to score both test sets together, rc 0
            main(["evaluate", str(two_checkpoints / "best.pt"), "--data", str(root), "--split", name])
        assert e.value.code == 2
    assert "invalid choice: 'val'" in capsys.readouterr().err
    assert not list(two_checkpoints.glob("eval-*"))


def test_evaluations_of_two_checkpoints_keep_their_own_reports(tmp_path, kaggle_copy, two_checkpoints, capsys):
    """Write-path review: best.pt and last.pt of one run used to share eval-<split>-<tta>/report.json."""
    import json

    root = kaggle_copy(tmp_path / "k")
    for name in ("best", "last"):
        assert main(["evaluate", str(two_checkpoints / f"{name}.pt"), "--data", str(root), "--split", "private"]) == 0
    reports = sorted(two_checkpoints.glob("eval-*/report.json"))
    assert [p.parent.name for p in reports] == ["eval-best-private-none", "eval-last-private-none"]
    assert [json.loads(p.read_text())["epoch"] for p in reports] == [0, 1]


# --------------------------------------------------------------------------- progress noise


def test_decoding_progress_is_silent_without_a_terminal(fer_root, capsys):
    load_split(fer_root, "public", cache=False, progress=True)  # 3,589 files: a bar on a terminal
    assert "\r" not in capsys.readouterr().err


# --------------------------------------------------------------------------- property: random folder trees

_FOLDERS = ["angry", "happiness", "sad", "surprised", "neutral", "misc"]  # aliases and one unknown
_KINDS = ["good", "bad", "empty", "text"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.lists(st.tuples(st.sampled_from(_FOLDERS), st.sampled_from(_KINDS), st.booleans()), max_size=10))
def test_folder_reader_on_random_trees(tmp_path_factory, fer_root, tree):
    """Good files are read with their folder's label, bad and empty ones are reported and skipped, other
    files ignored; an unknown folder is skipped when asked; no images at all is a DatasetError."""
    from ferkit.emotions import canonical

    good_src = sorted((fer_root / "train" / "happy").iterdir())[:10]
    root = tmp_path_factory.mktemp("tree")
    (root / "train").mkdir()
    expect_good: dict[str, int] = {}
    expect_bad = 0
    for i, (folder, kind, nested) in enumerate(tree):
        d = root / "train" / folder / ("sub" if nested else "")
        d.mkdir(parents=True, exist_ok=True)
        known = folder != "misc"
        if kind == "good":
            shutil.copy(good_src[i], d / f"g{i}.jpg")
            if known:
                expect_good[canonical(folder)] = expect_good.get(canonical(folder), 0) + 1
        elif kind == "bad":
            (d / f"b{i}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
            expect_bad += known
        elif kind == "empty":
            (d / f"e{i}.png").write_bytes(b"")
            expect_bad += known
        else:
            (d / f"t{i}.txt").write_text("notes")
    if not expect_good and not expect_bad:
        with pytest.raises(DatasetError):
            load_split(root, "train", skip_unknown=True, cache=False, progress=False)
        return
    ds = load_split(root, "train", skip_unknown=True, cache=False, progress=False)
    assert {e: n for e, n in ds.counts().items() if n} == expect_good
    assert len(ds.skipped) == expect_bad
    assert ds.images.shape == (len(ds), 48, 48) and set(ds.labels.tolist()) <= set(range(len(EMOTIONS)))
    if any(f == "misc" for f, _, _ in tree):
        with pytest.raises(DatasetError, match="unknown emotion folder"):
            load_split(root, "train", cache=False, progress=False)
