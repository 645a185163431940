"""The notebook's Keras file through ferkit's doors: ``--model emotiondetector.h5`` in predict, webcam and serve
(evaluate shares predict's resolution), ``ferkit export`` both ways, and the errors (exit 2, the file named,
nothing written)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")
pytest.importorskip("onnx")

from test_keras import SEED_KERAS, TOL, _edited_h5, run_onnx  # noqa: E402

from ferkit.cli import main  # noqa: E402
from ferkit.emotions import EMOTIONS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
H5 = SEED_KERAS / "emotiondetector.h5"


def ferkit(*args, **env) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""), **env)
    return subprocess.run([sys.executable, "-m", "ferkit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def reference(fer_root: Path, step: int = 20):
    ref = np.load(SEED_KERAS / "emotiondetector-reference.npz")
    return [fer_root / f for f in ref["files"][::step]], ref["probs"][::step]


def test_predict_with_the_notebooks_h5(fer_root, capsys):
    """FER2013 faces (48 px: classified whole) give Keras's own probabilities; the label order is stated."""
    files, want = reference(fer_root)
    assert main(["predict", *map(str, files), "--model", str(H5), "--json"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    got = np.array([[row["faces"][0]["probs"][e] for e in EMOTIONS] for row in rows])
    assert len(rows) == len(files) and np.abs(got - want).max() <= TOL
    assert "emotiondetector.h5: Keras 2 .h5 model" in err
    assert "labels angry, disgust, fear, happy, neutral, sad, surprise (assumed: the notebook's sorted" in err


def test_json_beside_h5_and_evaluate(tmp_path, kaggle_copy, capsys):
    """The notebook's loading pair (the .json, its .h5 beside it) in evaluate: no torch, a report."""
    data = kaggle_copy(tmp_path / "data", per_class=1)
    assert main(["evaluate", str(SEED_KERAS / "emotiondetector.json"), "--data", str(data), "--split", "test",
                 "--out", str(tmp_path / "ev")]) == 0
    _, err = capsys.readouterr()
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert rep["n"] == 28 and "emotiondetector.json + emotiondetector.h5" in err


def test_export_keras_to_onnx(tmp_path, fer_root, capsys):
    files, want = reference(fer_root)
    out = tmp_path / "emo.onnx"
    assert main(["export", str(H5), "--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["path"] == str(out) and res["labels"] == list(EMOTIONS) and "assumed" in res["labels_source"]
    from PIL import Image

    pixels = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])[:, None].astype(np.float32)
    got, meta = run_onnx(out, pixels)
    assert np.abs(got - want).max() <= TOL and meta["source"] == "keras"


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    """An unsupported layer, a truncated .h5, a .json that does not match its .h5."""
    unsupported = _edited_h5(SEED_KERAS, tmp_path, lambda layers: layers[4].update(class_name="LayerNormalization"))
    truncated = tmp_path / "truncated.h5"
    data = H5.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    pair = tmp_path / "pair"
    pair.mkdir()
    shutil.copy(SEED_KERAS / "emotiondetector-narrow.json", pair / "emotiondetector.json")
    shutil.copy(H5, pair / "emotiondetector.h5")
    return {"unsupported": unsupported, "truncated": truncated, "mismatch": pair / "emotiondetector.json"}


@pytest.mark.parametrize("case", ["unsupported", "truncated", "mismatch"])
def test_bad_keras_files_exit_2_and_write_nothing(tmp_path, case, capsys, monkeypatch):
    bad = _bad_files(tmp_path)[case]
    cache = tmp_path / "cache"
    monkeypatch.setenv("FERKIT_CACHE", str(cache))
    out = tmp_path / "x.onnx"
    expect = {"unsupported": "LayerNormalization is not supported", "truncated": "truncated",
              "mismatch": "do not match the layer's config"}[case]
    for args in (["export", bad, "--out", out], ["predict", REPO / "tests" / "assets", "--model", bad]):
        assert main([str(a) for a in args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith(f"ferkit {args[0]}: error: ") and bad.name in err and expect in err, err
        assert not out.exists() and not list(cache.rglob("*.onnx")) and not list(cache.rglob(".*tmp"))


def test_export_refuses_onnx_options_for_keras(tmp_path, capsys):
    out = tmp_path / "x.onnx"
    assert main(["export", str(H5), "--out", str(out), "--quantize", "int8"]) == 2
    assert "--quantize: not for a Keras model" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_webcam_with_the_notebooks_h5(tmp_path):
    """The notebook's own use, a camera, with ferkit's detector and tracking (a clip stands in for the camera)."""
    sys.path.insert(0, str(REPO / "tests"))
    from conftest_video import fer_files, read_gray, still, write_clip

    clip = write_clip(tmp_path / "cam.avi", [still(read_gray(fer_files("happy")[3]))], (320, 240), 15.0, 2.0,
                      face_px=112)
    rec, table = tmp_path / "rec.mp4", tmp_path / "t.csv"
    r = ferkit("webcam", "--camera", clip, "--no-window", "--model", H5, "--out", rec, "--csv", table)
    assert r.returncode == 0, r.stderr
    assert "emotiondetector.h5: Keras 2 .h5 model" in r.stderr and rec.stat().st_size > 0
    rows = table.read_text().splitlines()
    assert len(rows) > 10 and rows[0].split(",")[8:15] == list(EMOTIONS)


@pytest.mark.slow
def test_serve_with_the_notebooks_h5(tmp_path, fer_root):
    """ferkit serve --model emotiondetector.h5: a FER2013 face sent as a crop gets Keras's probabilities."""
    pytest.importorskip("fastapi")
    import httpx
    from serve_helpers import Server

    files, want = reference(fer_root, step=70)
    server = Server(["--model", str(H5)], tmp_path / "serve.log")
    try:
        for f, w in zip(files, want):
            r = httpx.post(server.url + "/v1/emotions", params={"crop": "true"},
                           files={"file": (f.name, f.read_bytes(), "image/jpeg")}, timeout=60)
            assert r.status_code == 200, r.text
            got = np.array([r.json()["faces"][0]["probs"][e] for e in EMOTIONS])
            assert np.abs(got - w).max() <= TOL
        info = httpx.get(server.url + "/v1/model", timeout=10).json()
        assert info["members"] == ["keras:emotiondetector.h5"]
        assert "emotiondetector.h5: Keras 2 .h5 model" in server.log()
    finally:
        server.stop()


# --------------------------------------------------------------------------- ferkit -> Keras

def _seed_checkpoint(tmp_path: Path, model: str = "seed") -> Path:
    pytest.importorskip("torch")
    from ferkit.checkpoint import FORMAT, VERSION, atomic_torch_save
    from ferkit.models import create_model

    path = tmp_path / f"{model}.pt"
    atomic_torch_save({"format": FORMAT, "version": VERSION, "model": model, "labels": list(EMOTIONS),
                       "state_dict": create_model(model).state_dict()}, path)
    return path


def test_export_seed_checkpoint_as_keras(tmp_path, capsys):
    """The files themselves are opened by Keras 3 in tests/test_keras3.py; here: the command and its output."""
    ckpt = _seed_checkpoint(tmp_path)
    assert main(["export", str(ckpt), "--out", str(tmp_path / "emotiondetector.h5")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["max_abs_diff"] <= TOL and Path(res["json"]) == tmp_path / "emotiondetector.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emotiondetector.h5", "emotiondetector.json", "seed.pt"]


def test_export_keras_refuses_other_models(tmp_path, capsys):
    ckpt = _seed_checkpoint(tmp_path, "fernet_s")
    assert main(["export", str(ckpt), "--format", "keras", "--out", str(tmp_path / "x.h5")]) == 2
    assert "fernet_s.pt: a 'fernet_s' checkpoint; only the 'seed' model" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fernet_s.pt"]
