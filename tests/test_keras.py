"""Keras files in ferkit without TensorFlow: the notebook's own files (../shared/seed-keras, made by tf-keras 2.21)
give the probabilities Keras gave, through onnxruntime; broken or mismatched files fail naming the file.

Keras 3 files made in the test itself: tests/test_keras3.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("h5py")
pytest.importorskip("onnx")

from ferkit.emotions import EMOTIONS, FER2013_CSV_ORDER  # noqa: E402
from ferkit.keras.cache import cached_onnx  # noqa: E402
from ferkit.keras.convert import keras_to_onnx  # noqa: E402
from ferkit.keras.reader import read_keras  # noqa: E402
from ferkit.keras.topology import KerasFileError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SEED_KERAS = Path(os.environ.get("FERKIT_SEED_KERAS", REPO.parent / "shared" / "seed-keras"))
FIXTURES = ["emotiondetector", "emotiondetector-narrow"]
TOL = 1e-4


@pytest.fixture(scope="module")
def seed_keras() -> Path:
    if not (SEED_KERAS / "emotiondetector.h5").is_file():
        pytest.fail(f"Keras fixtures not found at {SEED_KERAS} (set FERKIT_SEED_KERAS)")
    return SEED_KERAS


def reference(seed_keras: Path, fer_root: Path, name: str):
    """(N x 1 x 48 x 48 raw pixels, Keras's probabilities, class order) of a fixture's reference images."""
    ref = np.load(seed_keras / f"{name}-reference.npz")
    pixels = np.stack([np.asarray(Image.open(fer_root / f).convert("L")) for f in ref["files"]])
    return pixels[:, None].astype(np.float32), ref["probs"], tuple(str(s) for s in ref["labels"])


def run_onnx(path, pixels: np.ndarray) -> tuple[np.ndarray, dict]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["probs"], {"pixels": pixels})[0], sess.get_modelmeta().custom_metadata_map


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("given", [".h5", ".json"])
def test_fixture_matches_keras(seed_keras, fer_root, tmp_path, name, given):
    """model.save's .h5 and the model_from_json + load_weights pair (the .json, its .h5 found beside it)."""
    pixels, want, labels = reference(seed_keras, fer_root, name)
    assert labels == EMOTIONS  # the notebook's sorted folder order, which ferkit assumes for these files
    out = tmp_path / "m.onnx"
    info = keras_to_onnx(seed_keras / f"{name}{given}", out)
    got, meta = run_onnx(out, pixels)
    diff = float(np.abs(got - want).max())
    print(f"{name}{given}: max |ferkit - Keras| = {diff:.2e} on {len(pixels)} PrivateTest images")
    assert diff <= TOL
    assert (got.argmax(1) == want.argmax(1)).all()
    assert json.loads(meta["labels"]) == list(EMOTIONS)
    assert "notebook's sorted folder order" in meta["keras_labels"] and "assumed" in info.labels_source
    assert meta["keras_format"].startswith("Keras 2") and meta["keras_version"] == "2.21.0"
    assert meta["input_scale"] == "raw 0..255" and meta["keras_input_scale"].startswith("x / 255")


def test_contract_words_are_export_s(seed_keras, tmp_path):
    from ferkit.export import CONTRACT

    _, meta = run_onnx(cached_onnx(seed_keras / "emotiondetector-narrow.h5", directory=tmp_path),
                       np.zeros((1, 1, 48, 48), np.float32))
    assert meta["ferkit_contract"] == CONTRACT


def test_optimizer_state_is_ignored(seed_keras):
    """The narrow file carries Adam's state (optimizer_weights); the model is read the same way."""
    import h5py

    with h5py.File(seed_keras / "emotiondetector-narrow.h5") as f:
        assert "optimizer_weights" in f
    m = read_keras(seed_keras / "emotiondetector-narrow.h5")
    kinds = [lay.kind for lay in m.layers]
    assert kinds.count("Conv2D") == 4 and kinds.count("Dense") == 3 and m.input_shape == (48, 48, 1)
    assert sum(w.size for lay in m.layers for w in lay.weights) == 265479  # the README's parameter count


def test_cache_converts_once_and_follows_content(seed_keras, tmp_path):
    src = tmp_path / "emotiondetector-narrow.h5"
    shutil.copy(seed_keras / src.name, src)
    cache = tmp_path / "cache"
    first = cached_onnx(src, directory=cache)
    stamp = first.stat().st_mtime_ns
    assert cached_onnx(src, directory=cache) == first and first.stat().st_mtime_ns == stamp  # no second conversion
    other = cached_onnx(src, directory=cache, labels="fer2013")  # other options: another entry
    assert other != first
    src.unlink()
    shutil.copy(seed_keras / "emotiondetector.h5", src)  # same name, other content: converted again
    assert cached_onnx(src, directory=cache) not in (first, other)
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_label_order_option_reorders(seed_keras, fer_root, tmp_path):
    """A model whose classes are in FER2013's CSV order: ferkit's output is put back in EMOTIONS order."""
    pixels, want, _ = reference(seed_keras, fer_root, "emotiondetector-narrow")
    out = tmp_path / "csv-order.onnx"
    info = keras_to_onnx(seed_keras / "emotiondetector-narrow.h5", out, labels="fer2013")
    got, meta = run_onnx(out, pixels)
    # the file's column j is FER2013_CSV_ORDER[j]; ferkit's column for emotion e is the file's column of e
    cols = [FER2013_CSV_ORDER.index(e) for e in EMOTIONS]
    assert np.abs(got - want[:, cols]).max() <= TOL
    assert "as asked" in meta["keras_labels"] and info.labels == FER2013_CSV_ORDER


def test_input_scale_option(seed_keras, fer_root, tmp_path):
    """--input-scale 0..255: the model gets raw pixels, i.e. Keras fed with x instead of x / 255."""
    pixels, _, _ = reference(seed_keras, fer_root, "emotiondetector-narrow")
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    keras_to_onnx(seed_keras / "emotiondetector-narrow.h5", a, input_scale="0..255")
    keras_to_onnx(seed_keras / "emotiondetector-narrow.h5", b)
    raw, meta = run_onnx(a, pixels / 255.0)  # x / 255 fed raw == x fed through the default /255
    ref, _ = run_onnx(b, pixels)
    assert np.abs(raw - ref).max() <= 1e-5 and "raw pixels" in meta["keras_input_scale"]


# --------------------------------------------------------------------------- files that must be refused

def test_truncated_h5_names_the_file(seed_keras, tmp_path):
    src = (seed_keras / "emotiondetector-narrow.h5").read_bytes()
    bad = tmp_path / "cut.h5"
    bad.write_bytes(src[: len(src) // 2])
    out = tmp_path / "cut.onnx"
    with pytest.raises(KerasFileError, match=r"cut\.h5.*(truncated|damaged)"):
        keras_to_onnx(bad, out)
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_json_not_matching_its_weights(seed_keras, tmp_path):
    """The narrow model's .json beside the full-size model's .h5: same layer sequence, other shapes."""
    js, h5 = tmp_path / "emotiondetector.json", tmp_path / "emotiondetector.h5"
    shutil.copy(seed_keras / "emotiondetector-narrow.json", js)
    shutil.copy(seed_keras / "emotiondetector.h5", h5)
    with pytest.raises(KerasFileError, match=r"emotiondetector\.json \+ emotiondetector\.h5.*conv2d.*"
                                             r"expected shapes \[\(3, 3, 1, 32\).*holds \[\(3, 3, 1, 128\)"):
        keras_to_onnx(js, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_json_with_fewer_layers_than_weights(seed_keras, tmp_path):
    cfg = json.loads((seed_keras / "emotiondetector-narrow.json").read_text())
    cfg["config"]["layers"] = [entry for entry in cfg["config"]["layers"] if entry["config"]["name"] != "dense_1"]
    js = tmp_path / "emotiondetector-narrow.json"
    js.write_text(json.dumps(cfg))
    shutil.copy(seed_keras / "emotiondetector-narrow.h5", tmp_path)
    with pytest.raises(KerasFileError, match=r"emotiondetector-narrow\.json.*6 layers with weights.*holds weights "
                                             r"for 7.*do not belong together"):
        read_keras(js)


def _edited_h5(seed_keras: Path, tmp_path: Path, edit) -> Path:
    import h5py

    dst = tmp_path / "edited.h5"
    shutil.copy(seed_keras / "emotiondetector-narrow.h5", dst)
    dst.chmod(0o644)
    with h5py.File(dst, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        edit(cfg["config"]["layers"])
        f.attrs["model_config"] = json.dumps(cfg)
    return dst


def test_unsupported_layer_named(seed_keras, tmp_path):
    def swap(layers):
        layers[4]["class_name"] = "LayerNormalization"  # the second Conv2D's place

    bad = _edited_h5(seed_keras, tmp_path, swap)
    with pytest.raises(KerasFileError, match=r"edited\.h5: layer 'conv2d_1' of type LayerNormalization is not "
                                             r"supported \(supported: Conv2D"):
        keras_to_onnx(bad, tmp_path / "x.onnx")


def test_input_that_is_not_a_face_image(seed_keras, tmp_path):
    def four_channels(layers):
        layers[0]["config"]["batch_input_shape"] = [None, 48, 48, 4]

    bad = _edited_h5(seed_keras, tmp_path, four_channels)
    with pytest.raises(KerasFileError, match=r"edited\.h5: input shape \(48, 48, 4\).*1 gray or 3 colour"):
        keras_to_onnx(bad, tmp_path / "x.onnx")


def test_not_seven_outputs(seed_keras, tmp_path):
    import h5py

    bad = tmp_path / "six.h5"
    shutil.copy(seed_keras / "emotiondetector-narrow.h5", bad)
    bad.chmod(0o644)
    with h5py.File(bad, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"]["layers"][-1]["config"]["units"] = 6
        f.attrs["model_config"] = json.dumps(cfg)
        g = f["model_weights/dense_2/dense_2"]
        k, b = g["kernel:0"][()], g["bias:0"][()]
        del g["kernel:0"], g["bias:0"]
        g["kernel:0"], g["bias:0"] = k[:, :6], b[:6]
    with pytest.raises(KerasFileError, match=r"six\.h5: the model has 6 outputs.*needs the 7 emotions"):
        keras_to_onnx(bad, tmp_path / "x.onnx")


def test_not_a_keras_file(tmp_path):
    junk = tmp_path / "photo.h5"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not hdf5")
    with pytest.raises(KerasFileError, match=r"photo\.h5: not a Keras model file"):
        read_keras(junk)
    lonely = tmp_path / "weights.json"
    lonely.write_text('{"class_name": "Sequential", "config": {"layers": []}}')
    with pytest.raises(KerasFileError, match=r"weights\.json: a model config without weights"):
        read_keras(lonely)


def test_runtime_path_needs_no_torch(seed_keras, tmp_path):
    """Reading and converting import neither torch nor TensorFlow (the runtime never imports torch)."""
    code = ("import sys; from ferkit.keras.cache import cached_onnx; "
            f"cached_onnx({str(seed_keras / 'emotiondetector-narrow.json')!r}, directory={str(tmp_path)!r}); "
            "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(list(tmp_path.glob("emotiondetector-narrow-*.onnx"))) == 1
