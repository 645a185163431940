"""Outputs never touch inputs (issue 14, defects 1-3): real photos, a real video, the real CLI; plus
property tests over the naming rules of ferkit.outputs."""

from __future__ import annotations

import hashlib
import os
import shutil
import string
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferkit.cli import main
from ferkit.outputs import OutputError, check_outputs, output_names, output_paths

sys.path.insert(0, str(Path(__file__).parent))
from conftest_video import FER, fer_files, paste_scene, read_gray  # noqa: E402

ASSETS = Path(__file__).parent / "assets"
FAST = ["--model", "fast", "--detector", "haar", "--no-progress", "-q"]


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- defect 1


def test_annotate_never_overwrites_the_input_photo(tmp_path, monkeypatch):
    """`cd work && ferkit predict ../photos/p.jpg --annotate ../annotated` used to replace p.jpg."""
    photos, work = tmp_path / "photos", tmp_path / "work"
    photos.mkdir()
    work.mkdir()
    shutil.copy(ASSETS / "astronaut.jpg", photos / "p.jpg")
    before = _digests(photos)
    monkeypatch.chdir(work)
    assert main(["predict", "../photos/p.jpg", "--annotate", "../annotated", *FAST]) == 0
    assert _digests(photos) == before
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == ["p.jpg"]
    # a folder argument of `..` used to climb out the same way
    assert main(["predict", "..", "--annotate", "../annotated2", *FAST]) == 0
    assert _digests(photos) == before
    written = sorted(str(p.relative_to(tmp_path / "annotated2")) for p in (tmp_path / "annotated2").rglob("*.jpg"))
    assert written == [f"{tmp_path.name}/annotated/p.jpg", f"{tmp_path.name}/photos/p.jpg"]
    # an output folder that would put a copy on its own input is refused before anything is written
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "photos", "--annotate", ".", *FAST]) == 2
    assert _digests(photos) == before


# --------------------------------------------------------------------------- defect 2


def test_annotated_outputs_never_overwrite_each_other(tmp_path):
    src = cv2.imread(str(ASSETS / "astronaut.jpg"))
    a, b = tmp_path / "a" / "img", tmp_path / "b" / "img"
    for d in (a, b):
        d.mkdir(parents=True)
    cv2.imwrite(str(a / "x.png"), src)
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(src[:, :, ::-1]).save(a / "x.gif")
    cv2.imwrite(str(b / "x.png"), cv2.flip(src, 1))
    out = tmp_path / "out"
    assert main(["predict", str(a), str(b), "--annotate", str(out), *FAST]) == 0
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["img-2/x.png", "img/x.gif.png", "img/x.png"]
    # each copy is drawn on its own input (the flipped one differs from the others)
    imgs = [cv2.imread(str(out / f)) for f in files]
    assert np.abs(imgs[0].astype(int) - imgs[2].astype(int)).max() > 100


# --------------------------------------------------------------------------- defect 3


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    face = paste_scene(read_gray(fer_files("happy")[0]))
    path = tmp_path_factory.mktemp("clip") / "c.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (face.shape[1], face.shape[0]))
    for _ in range(5):
        w.write(face)
    w.release()
    return path


@pytest.mark.skipif(not (FER / "test").is_dir(), reason=f"FER2013 not found at {FER}")
@pytest.mark.parametrize("opt", ["--out", "--csv", "--plot", "--json"])
def test_video_never_writes_over_its_input(small_clip, tmp_path, capsys, opt):
    clip = tmp_path / "c.avi"
    shutil.copy(small_clip, clip)
    before = _digest(clip)
    if opt == "--json":  # --json takes only .json/.jsonl names or '-': refused while parsing
        with pytest.raises(SystemExit) as e:
            main(["video", str(clip), opt, str(clip), "--quiet", "--model", "fast"])
        assert e.value.code == 2 and "argument --json" in capsys.readouterr().err
    else:
        assert main(["video", str(clip), opt, str(clip), "--quiet", "--model", "fast"]) == 2
        assert "is an input of this run" in capsys.readouterr().err
    assert _digest(clip) == before
    # two outputs on one file are refused too
    t = str(tmp_path / "t.json")
    assert main(["video", str(clip), "--csv", t, "--json", t, "--quiet"]) == 2
    assert "same file" in capsys.readouterr().err and not (tmp_path / "t.json").exists()


@pytest.mark.skipif(not (FER / "test").is_dir(), reason=f"FER2013 not found at {FER}")
def test_frame_folder_and_predict_csv_never_replace_an_input(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(fer_files("happy")[:3]):
        shutil.copy(f, frames / f"f{i}.jpg")
    before = _digests(frames)
    assert main(["video", str(frames), "--plot", str(frames / "f1.jpg"), "--quiet"]) == 2
    assert main(["predict", str(frames), "--csv", str(frames / "f2.jpg"), *FAST]) == 2
    assert main(["predict", str(frames), "--csv", str(frames), *FAST]) == 2  # a folder is no CSV
    assert _digests(frames) == before
    err = capsys.readouterr().err
    assert err.count("is an input of this run") == 2 and "is a folder, give a file name" in err


# --------------------------------------------------------------------------- properties of the naming rules

_chars = st.sampled_from(list(string.ascii_letters[:6] + "._-") + ["..", " ", "é", "\udcff"])
_part = st.lists(_chars, min_size=1, max_size=6).map("".join)
_ext = st.sampled_from([".jpg", ".JPG", ".png", ".gif", ".pgm", ".tif", ""])
_rel = st.tuples(st.lists(_part, min_size=0, max_size=2), _part, _ext)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.lists(_rel, min_size=1, max_size=12), n_roots=st.integers(1, 3), loose=st.integers(0, 3))
def test_output_naming_properties(tmp_path_factory, tree, n_roots, loose):
    """No two inputs map to one output; no output leaves its folder; no output is an input."""
    base = tmp_path_factory.mktemp("names")
    roots = [base / f"r{i}" / "img" for i in range(n_roots)]  # same folder name on purpose
    files: list[Path] = []
    for k, (dirs, stem, ext) in enumerate(tree):
        root = roots[k % n_roots]
        p = root.joinpath(*[d if d not in (".", "..") else "_" for d in dirs], (stem if stem not in (".", "..")
                          else "_") + ext)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
        except (OSError, UnicodeEncodeError):
            continue
        if p not in files:
            files.append(p)
    inputs: list[Path] = [*roots]
    for f in files[:loose]:  # some files are also given directly
        inputs.append(f)
    out = base / "out"
    for out_dir in (out, base, roots[0]):  # an output folder may even hold the inputs
        try:
            paths = output_paths(out_dir, files, inputs)
        except OutputError:
            assert out_dir != out
            continue
        keys = [os.path.normcase(str(p)).casefold() for p in paths]
        assert len(set(keys)) == len(paths)
        for p in paths:
            assert os.path.commonpath([os.path.abspath(p), os.path.abspath(out_dir)]) == os.path.abspath(out_dir)
            assert ".." not in p.relative_to(out_dir).parts
            assert p not in files
            assert p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
            str(p).encode("utf-8")  # always writable as UTF-8 text


def test_output_names_and_checks_examples(tmp_path):
    (tmp_path / "a").mkdir()
    f = tmp_path / "a" / "x.gif"
    f.touch()
    assert output_names([f], [tmp_path / "a"]) == [("a", "x.gif.png")]
    assert output_names([f, f.with_suffix(".png")], [f, f.with_suffix(".png")]) == [("x.gif.png",), ("x.png",)]
    with pytest.raises(OutputError, match="is an input"):
        check_outputs({"--csv": tmp_path / "a" / ".." / "a" / "x.gif"}, [f])
    link = tmp_path / "link.gif"
    link.symlink_to(f)
    with pytest.raises(OutputError, match="is an input"):
        check_outputs({"--out": link}, [f])
    check_outputs({"--csv": tmp_path / "new.csv", "--json": None}, [f])
