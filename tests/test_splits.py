"""Issue 20 items 14, 15, 17: one resolver for datasets (ferkit.data.splits) and models, behind `data info`,
`data audit` and `evaluate`; what an audit compares and what an evaluation scored, said in words. Real FER2013
files, the shipped models on onnxruntime, the CLI in a fresh interpreter where torch cannot be imported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ferkit.cli import main
from ferkit.emotions import EMOTIONS

REPO = Path(__file__).resolve().parents[1]
NO_TORCH = "import sys; sys.modules['torch'] = None; from ferkit.cli import main; sys.exit(main(sys.argv[1:]))"


def _no_torch(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH, *argv], capture_output=True, text=True, timeout=300)


def _test_only(root: Path, fer_root: Path, public: int, private: int) -> Path:
    """``root/test/<emotion>/``: the first `public` PublicTest_ and `private` PrivateTest_ files of each class."""
    for emo in EMOTIONS:
        files = sorted((fer_root / "test" / emo).iterdir())
        pick = ([f for f in files if f.name.startswith("PublicTest_")][:public]
                + [f for f in files if f.name.startswith("PrivateTest_")][:private])
        (root / "test" / emo).mkdir(parents=True)
        for f in pick:
            shutil.copy(f, root / "test" / emo / f.name)
    return root


def _audit(path: Path, capsys, *extra) -> dict:
    assert main(["data", "audit", str(path), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_audit_of_a_test_folder_finds_no_leak_or_duplicate_that_is_not_there(tmp_path, fer_root, capsys):
    """Item 14: public and private are parts of test; comparing them with test made every file a duplicate
    (and a leak) of itself. Auto takes splits that are no part of another; explicit ones count a file once."""
    both = _test_only(tmp_path / "both", fer_root, public=2, private=2)  # test = public + private
    rep = _audit(both, capsys)
    assert set(rep["splits"]) == {"public", "private"}
    assert rep["shared_between_splits"] == {"public&private": 0} and rep["duplicate_groups"] == 0
    only = _test_only(tmp_path / "only", fer_root, public=0, private=3)  # test = private
    rep = _audit(only, capsys)
    assert set(rep["splits"]) == {"test"} and rep["duplicate_groups"] == 0
    rep = _audit(only, capsys, "--splits", "test,private")  # asked for: the same files, said so
    assert rep["same_files"] == {"test&private": 21}
    assert rep["shared_between_splits"] == {"test&private": 0} and rep["duplicate_groups"] == 0
    # a real duplicate is still one: a copy of a test image under another name
    src = next((only / "test" / "happy").iterdir())
    shutil.copy(src, src.with_name("PrivateTest_copy.jpg"))
    rep = _audit(only, capsys, "--splits", "test,private")
    assert rep["duplicate_groups"] == 1 and rep["largest_group"] == 2
    assert rep["shared_between_splits"] == {"test&private": 1}  # the copy in test, the original in private
    assert main(["data", "audit", str(only)]) == 0
    assert "duplicate groups (distinct images with 2+ files): 1 " in capsys.readouterr().out


def test_evaluate_says_which_images_it_scored_and_why(tmp_path, fer_root, capsys):
    """Item 15: auto picks the PrivateTest_ files of a test/ folder; the report's first line says how many of
    how many, which and why, and how to score them all; --split all on a folder without train/ names --split
    test."""
    data = _test_only(tmp_path / "small", fer_root, public=2, private=3)
    assert main(["evaluate", "fast", "--data", str(data), "--out", str(tmp_path / "rep")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"scored 21 of the 35 images in {data / 'test'}: the PrivateTest_* files "
                            "(split private; auto: FER2013's reporting set")
    assert first.endswith("; --split test scores all 35)")
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["n"] == 21
    assert main(["evaluate", "fast", "--data", str(data), "--split", "test", "-q", "--json",
                 str(tmp_path / "r.json"), "--out", str(tmp_path / "rep-test")]) == 0
    out = capsys.readouterr()
    assert out.out == "" and f"scored 35 images: every image in {data / 'test'} (split test; as asked)" in out.err
    assert json.loads((tmp_path / "r.json").read_text())["scored"].startswith("scored 35 images")
    assert main(["evaluate", "fast", "--data", str(data), "--split", "all"]) == 2
    err = capsys.readouterr().err
    assert "no train/ folder" in err and "this dataset has: test, public, private" in err
    assert "--split test scores its test split (35 images)" in err


def test_one_message_for_an_unknown_model_and_a_folder_without_a_dataset(tmp_path, fer_root):
    """Item 17 (without torch, as on a runtime-only install): evaluate says what predict says of a model name
    it does not know, and what `data info` says of a folder holding no dataset."""
    data = _test_only(tmp_path / "d", fer_root, public=1, private=1)
    ev = _no_torch("evaluate", "nonexistent", "--data", str(data))
    pr = _no_torch("predict", str(REPO / "tests" / "assets" / "coffee.jpg"), "--model", "nonexistent")
    assert ev.returncode == pr.returncode == 2
    for r in (ev, pr):
        assert "model 'nonexistent': no such file and not a shipped model name (shipped: default, fast" in r.stderr
        assert "torch" not in r.stderr
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(REPO / "tests" / "assets" / "coffee.jpg", photos)
    ev = _no_torch("evaluate", "default", "--data", str(photos))
    info = _no_torch("data", "info", str(photos))
    assert ev.returncode == info.returncode == 2
    said = [r.stderr.strip().split("error: ", 1)[1] for r in (ev, info)]
    assert said[0] == said[1] and said[0].startswith(f"{photos}: no dataset found; expected <root>/train/")


@pytest.mark.parametrize("argv", [["evaluate", "fast", "--data", "D", "--json", "-"], ["data", "audit", "D", "--json"]])
def test_json_on_stdout_is_the_only_thing_on_stdout(tmp_path, fer_root, capsys, argv):
    data = _test_only(tmp_path / "d", fer_root, public=1, private=1)
    argv = [str(data) if a == "D" else a for a in argv]
    if argv[0] == "evaluate":
        argv += ["--out", str(tmp_path / "rep")]
    assert main(argv) == 0
    json.loads(capsys.readouterr().out)
