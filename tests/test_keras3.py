"""Keras 3 (torch backend, no TensorFlow) makes the files a new user of the notebook gets today; ferkit's
conversion matches ``model.predict`` on real FER2013 faces; a ferkit ``seed`` checkpoint written as Keras
files opens in Keras 3 through both of the notebook's loading paths with ferkit's probabilities."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "torch"  # Keras 3 on torch: no TensorFlow anywhere
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
if keras.backend.backend() != "torch":
    pytest.skip(f"Keras runs on {keras.backend.backend()}, these tests use the torch backend", allow_module_level=True)

from conftest import real_files  # noqa: E402
from test_keras import SEED_KERAS, TOL, run_onnx  # noqa: E402

from ferkit.emotions import EMOTIONS, FER2013_CSV_ORDER  # noqa: E402
from ferkit.keras.convert import keras_to_onnx  # noqa: E402
from ferkit.keras.topology import KerasFileError  # noqa: E402

layers = keras.layers
# Keras 3's own noise on numpy 2 and on the Keras 2 fixture's config, not ferkit's
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")]


@pytest.fixture(scope="module")
def faces(fer_root) -> np.ndarray:
    """21 real PrivateTest faces, 3 per emotion: (N, 48, 48) float32 raw pixels."""
    files = [f for e in EMOTIONS for f in real_files(fer_root, "test", e, 3, "PrivateTest_")]
    return np.stack([np.asarray(Image.open(f).convert("L")) for f in files]).astype(np.float32)


def ferkit_probs(path, faces, tmp_path, **kw) -> tuple[np.ndarray, dict]:
    out = tmp_path / f"{os.path.basename(str(path))}.onnx"
    keras_to_onnx(path, out, **kw)
    return run_onnx(out, faces[:, None])


def informative(p: np.ndarray) -> None:
    """The comparison means something: neither uniform nor one-hot probabilities."""
    top = p.max(1).mean()
    assert 0.3 < top < 0.995, f"mean top probability {top:.3f}: the test model's outputs are degenerate"


def notebook_model():
    """The notebook's Sequential CNN, layer for layer (Keras 3 API)."""
    m = keras.Sequential([keras.Input((48, 48, 1))])
    for filters in (128, 256, 512, 512):
        m.add(layers.Conv2D(filters, (3, 3), activation="relu"))
        m.add(layers.MaxPooling2D(pool_size=(2, 2)))
        m.add(layers.Dropout(0.4))
    m.add(layers.Flatten())
    for units, rate in ((512, 0.4), (256, 0.3)):
        m.add(layers.Dense(units, activation="relu"))
        m.add(layers.Dropout(rate))
    m.add(layers.Dense(7, activation="softmax"))
    return m


def randomise(model, seed: int, gain: float = 1.0) -> None:
    """Non-trivial weights for an untrained test model: kernels scaled by ``gain``, biases and BatchNorm
    statistics drawn at random (positive variances), so every weight's place matters."""
    rng = np.random.default_rng(seed)
    new = []
    for w in model.get_weights():
        if w.ndim > 1:
            new.append((w * gain).astype(np.float32))
        else:
            new.append(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
    model.set_weights(new)


@pytest.fixture(scope="module")
def notebook_files(tmp_path_factory):
    """The notebook's model in Keras 3 with the trained weights of ../shared/seed-keras/emotiondetector.h5,
    saved every way a Keras 3 user saves it."""
    d = tmp_path_factory.mktemp("keras3-notebook")
    m = notebook_model()
    m.load_weights(str(SEED_KERAS / "emotiondetector.h5"))  # Keras 3 reading the Keras 2 file
    m.save(d / "emotiondetector.keras")
    m.save(d / "emotiondetector.h5")
    (d / "emotiondetector.json").write_text(m.to_json())
    m.save_weights(d / "pair.weights.h5")
    (d / "pair.json").write_text(m.to_json())
    return m, d


@pytest.fixture(scope="module")
def notebook_probs(notebook_files, faces) -> np.ndarray:
    """What the notebook does with a face: model.predict on pixels / 255, shape (N, 48, 48, 1)."""
    want = notebook_files[0].predict(faces[..., None] / 255.0, verbose=0)
    informative(want)
    return want


@pytest.mark.parametrize("given", ["emotiondetector.keras", "emotiondetector.h5", "emotiondetector.json",
                                   "pair.json"])
def test_notebook_model_keras3(notebook_files, notebook_probs, faces, tmp_path, given):
    d, want = notebook_files[1], notebook_probs
    got, meta = ferkit_probs(d / given, faces, tmp_path)
    diff = float(np.abs(got - want).max())
    print(f"Keras 3 {given}: max |ferkit - model.predict| = {diff:.2e}")
    assert diff <= TOL
    assert meta["keras_format"].startswith("Keras 3")
    if given != "pair.json":  # Keras 3's to_json() and .weights.h5 carry no version
        assert meta["keras_version"].startswith("3.")


def test_batchnorm_same_padding_strides_variant(faces, tmp_path):
    """BatchNormalization, padding='same' (uneven pads: 0 before, 1 after), strides, average pooling,
    Activation/ReLU/Softmax layers, and Flatten of a 6x6x12 map: Keras's channels-last order matters.

    The average pool's 'same' pads are even here: with uneven ones Keras 3's torch backend pads zeros and
    counts them, unlike TensorFlow (where the notebook's files come from), whose rule ferkit follows."""
    keras.utils.set_random_seed(1)
    m = keras.Sequential([
        keras.Input((48, 48, 1)),
        layers.Conv2D(8, 3, strides=2, padding="same"), layers.BatchNormalization(), layers.Activation("relu"),
        layers.Conv2D(12, 3), layers.ReLU(),  # 24 -> 22
        layers.AveragePooling2D(3, strides=1, padding="same"), layers.MaxPooling2D(2),  # 22 -> 22 -> 11
        layers.MaxPooling2D(2, padding="same"), layers.Dropout(0.3),  # 11 -> 6
        layers.Flatten(), layers.Dense(16), layers.BatchNormalization(), layers.Activation("relu"),
        layers.Dense(7), layers.Softmax(),
    ])
    randomise(m, 1, gain=0.7)
    want = m.predict(faces[..., None] / 255.0, verbose=0)
    informative(want)
    for name in ("bn.keras", "bn.h5"):
        m.save(tmp_path / name)
        got, _ = ferkit_probs(tmp_path / name, faces, tmp_path)
        diff = float(np.abs(got - want).max())
        print(f"{name}: max |ferkit - model.predict| = {diff:.2e}")
        assert diff <= TOL


def test_functional_colour_model_with_logits(faces, tmp_path):
    """A Functional chain for 64x64 colour images, scaled to -1..1 by its own Rescaling layer, global
    average pooling, ending in logits: ferkit resizes, repeats the gray face, adds the softmax."""
    import cv2

    keras.utils.set_random_seed(2)
    inp = keras.Input((64, 64, 3))
    h = layers.Rescaling(1 / 127.5, offset=-1)(inp)
    h = layers.ZeroPadding2D(1)(h)
    h = layers.Conv2D(8, 5, strides=2)(h)
    h = layers.LeakyReLU()(h)
    h = layers.Conv2D(16, 3, dilation_rate=2, activation="swish")(h)
    h = layers.GlobalAveragePooling2D()(h)
    m = keras.Model(inp, layers.Dense(7)(h))
    randomise(m, 2, gain=2.0)
    big = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_LINEAR) for f in faces])
    logits = m.predict(np.repeat(big[..., None], 3, axis=-1), verbose=0)
    want = np.exp(logits - logits.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    informative(want)
    m.save(tmp_path / "colour.keras")
    got, meta = ferkit_probs(tmp_path / "colour.keras", faces, tmp_path)
    assert np.abs(got - want).max() <= TOL
    notes = meta["keras_notes"]
    assert "softmax was added" in notes and "resized to the model's 64x64" in notes and "three channels" in notes
    assert "Rescaling" in meta["keras_input_scale"] and "raw pixels" in meta["keras_input_scale"]


def test_labels_stored_in_the_file(notebook_files, notebook_probs, faces, tmp_path):
    """A file that names its classes (here in FER2013's CSV order): ferkit follows the file, says so."""
    import h5py

    path = tmp_path / "csv-order.h5"
    shutil.copy(notebook_files[1] / "emotiondetector.h5", path)
    with h5py.File(path, "r+") as f:
        f.attrs["labels"] = json.dumps([e.capitalize() for e in FER2013_CSV_ORDER])
    want = notebook_probs
    got, meta = ferkit_probs(path, faces, tmp_path)
    cols = [FER2013_CSV_ORDER.index(e) for e in EMOTIONS]
    assert np.abs(got - want[:, cols]).max() <= TOL
    assert meta["keras_labels"].endswith("(from the file)")


def test_unsupported_keras3_layer(tmp_path):
    m = keras.Sequential([keras.Input((48, 48, 1)), layers.SeparableConv2D(4, 3, name="sep"),
                          layers.Flatten(), layers.Dense(7, activation="softmax")])
    for name in ("sep.keras", "sep.h5"):
        m.save(tmp_path / name)
        with pytest.raises(KerasFileError, match=rf"{name}: layer 'sep' of type SeparableConv2D is not supported"):
            keras_to_onnx(tmp_path / name, tmp_path / "x.onnx")
        assert not (tmp_path / "x.onnx").exists()


# --------------------------------------------------------------------------- ferkit -> Keras

@pytest.fixture(scope="module")
def seed_checkpoint(tmp_path_factory):
    """A ferkit seed checkpoint holding trained weights (the Keras fixture's, moved into torch's layout)."""
    torch = pytest.importorskip("torch")
    from ferkit.checkpoint import FORMAT, VERSION, atomic_torch_save
    from ferkit.keras.reader import read_keras
    from ferkit.models import create_model

    trained = [lay.weights for lay in read_keras(SEED_KERAS / "emotiondetector.h5").layers if lay.weights]
    model = create_model("seed")
    mods = [x for x in model.modules() if isinstance(x, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(mods) == len(trained)
    with torch.no_grad():
        for mod, (k, b) in zip(mods, trained):
            mod.weight.copy_(torch.from_numpy(k.transpose(3, 2, 0, 1) if k.ndim == 4 else k.T))
            mod.bias.copy_(torch.from_numpy(b))
    path = tmp_path_factory.mktemp("seed-ckpt") / "best.pt"
    atomic_torch_save({"format": FORMAT, "version": VERSION, "model": "seed", "model_kwargs": {},
                       "labels": list(EMOTIONS), "state_dict": model.state_dict()}, path)
    return path


def test_seed_checkpoint_to_keras_opens_in_keras3(seed_checkpoint, faces, tmp_path):
    import h5py

    from ferkit.export import export_onnx
    from ferkit.keras.writer import write_keras

    onnx_path = tmp_path / "seed.onnx"
    export_onnx([seed_checkpoint], onnx_path, log=lambda *a: None)  # ferkit's own file for this checkpoint
    ferkit, _ = run_onnx(onnx_path, faces[:, None])
    informative(ferkit)
    res = write_keras(seed_checkpoint, tmp_path / "emotiondetector.h5", log=lambda *a: None)
    h5, js = tmp_path / "emotiondetector.h5", tmp_path / "emotiondetector.json"
    assert res["h5"] == str(h5) and res["json"] == str(js) and res["max_abs_diff"] <= TOL
    x = faces[..., None] / 255.0  # what the notebook's webcam script feeds
    by_json = keras.models.model_from_json(js.read_text())
    by_json.load_weights(str(h5))
    loaded = keras.models.load_model(str(h5))
    for how, model in (("model_from_json + load_weights", by_json), ("load_model", loaded)):
        diff = float(np.abs(model.predict(x, verbose=0) - ferkit).max())
        print(f"ferkit seed -> Keras 3 {how}: max |Keras - ferkit| = {diff:.2e}")
        assert diff <= TOL
    with h5py.File(h5) as f:
        assert json.loads(f.attrs["labels"]) == list(EMOTIONS)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_non_seed_checkpoint_refused(tmp_path):
    from ferkit.checkpoint import FORMAT, VERSION, atomic_torch_save
    from ferkit.keras.writer import write_keras
    from ferkit.models import create_model

    ckpt = tmp_path / "fernet.pt"
    atomic_torch_save({"format": FORMAT, "version": VERSION, "model": "fernet_s", "labels": list(EMOTIONS),
                       "state_dict": create_model("fernet_s").state_dict()}, ckpt)
    with pytest.raises(ValueError, match=r"fernet\.pt: a 'fernet_s' checkpoint; only the 'seed' model"):
        write_keras(ckpt, tmp_path / "x.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fernet.pt"]


def test_keras3_reads_the_fixture_pair_too(tmp_path):
    """Sanity of the premise: the notebook's Keras 2 .h5 is what Keras 3 itself loads (load_model)."""
    shutil.copy(SEED_KERAS / "emotiondetector-narrow.h5", tmp_path / "n.h5")
    m = keras.models.load_model(str(tmp_path / "n.h5"))
    assert m.count_params() == 265479
