"""A ferkit ``seed`` checkpoint -> the notebook's two Keras files: ``NAME.h5`` (a full model, as
``model.save`` writes it) and ``NAME.json`` (as ``model.to_json()`` writes it).

The notebook's webcam script opens them either way: ``model_from_json(open("NAME.json").read())`` then
``model.load_weights("NAME.h5")``, or ``load_model("NAME.h5")``. The model takes what the notebook feeds
it: gray 48x48 pixels / 255, shape (N, 48, 48, 1); it returns the 7 probabilities in sorted folder order
(ferkit's order), which the ``.h5`` also names in its ``labels`` attribute.

Layout: Keras 2's (``model_config`` + ``model_weights/<layer>/<layer>/kernel:0``), with a config in the
plain form both Keras 2 and Keras 3 deserialize (Keras 3 reads it through both paths, tested); only
``h5py`` and ``json`` write it (no TensorFlow). Before the two files replace anything they are read back
with :mod:`ferkit.keras` and compared with the checkpoint's network in torch (:data:`PARITY_LIMIT`).
Needs torch (the checkpoint).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..emotions import EMOTIONS

KERAS_VERSION = "2.15.0"  # the layout written; Keras reads the major version only ("1" would convert kernels)
PARITY_LIMIT = 1e-4


class KerasCheckFailed(RuntimeError):
    """The Keras files, read back, differ from the checkpoint's network; nothing was replaced."""


def _layer(kind: str, name: str, **config) -> dict:
    return {"class_name": kind, "config": {"name": name, "trainable": True, "dtype": "float32", **config}}


def seed_layers(model) -> tuple[list[dict], list[tuple[str, list[tuple[str, np.ndarray]]]]]:
    """(Keras layer configs, [(layer name, [(weight name, array)])]) for a torch SeedCNN."""
    import torch.nn as nn

    from ..models.layers import Normalize

    mods = [m for m in model.children()]
    if not mods or not isinstance(mods[0], Normalize) or float(mods[0].mean) != 0 or float(mods[0].std) != 255:
        raise ValueError("not the seed network: it should start by scaling pixels to 0..1 (x / 255)")
    counts: dict[str, int] = {}

    def name(base: str) -> str:
        n = counts.get(base, 0)
        counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    shape = [None, 48, 48, 1]
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": shape, "dtype": "float32",
                                                      "sparse": False, "ragged": False, "name": "conv2d_input"}}]
    weights = []
    last_conv = None
    for i, m in enumerate(mods[1:], start=1):
        nxt = mods[i + 1] if i + 1 < len(mods) else None
        act = "relu" if isinstance(nxt, nn.ReLU) else "linear"
        if isinstance(m, nn.Conv2d):
            if m.stride != (1, 1) or m.padding != (0, 0) or m.dilation != (1, 1) or m.groups != 1:
                raise ValueError(f"conv {i}: only stride 1, no padding, no dilation, one group (the seed's)")
            n = name("conv2d")
            layers.append(_layer("Conv2D", n, filters=m.out_channels, kernel_size=list(m.kernel_size),
                                 strides=[1, 1], padding="valid", data_format="channels_last", dilation_rate=[1, 1],
                                 activation=act, use_bias=True))
            kernel = m.weight.detach().cpu().numpy().transpose(2, 3, 1, 0)
            weights.append((n, [(f"{n}/kernel:0", kernel), (f"{n}/bias:0", m.bias.detach().cpu().numpy())]))
            last_conv = m
        elif isinstance(m, nn.MaxPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            layers.append(_layer("MaxPooling2D", name("max_pooling2d"), pool_size=[k, k], padding="valid",
                                 strides=[k, k], data_format="channels_last"))
        elif isinstance(m, nn.Dropout):
            layers.append(_layer("Dropout", name("dropout"), rate=float(m.p), noise_shape=None, seed=None))
        elif isinstance(m, nn.Flatten):
            layers.append(_layer("Flatten", name("flatten"), data_format="channels_last"))
        elif isinstance(m, nn.Linear):
            if not any(isinstance(x, nn.Linear) for x in mods[i + 1:]):
                act = "softmax"  # the last layer: probabilities, as the notebook's model gives
            if "dense" not in counts and last_conv is not None and m.in_features != last_conv.out_channels:
                raise ValueError("the last feature map is not 1x1: the flatten order would differ from Keras's")
            n = name("dense")
            layers.append(_layer("Dense", n, units=m.out_features, activation=act, use_bias=True))
            weights.append((n, [(f"{n}/kernel:0", m.weight.detach().cpu().numpy().T),
                                (f"{n}/bias:0", m.bias.detach().cpu().numpy())]))
        elif not isinstance(m, nn.ReLU):
            raise ValueError(f"layer {i} ({type(m).__name__}) has no Keras twin here")
    return layers, weights


def model_json(layers: list[dict]) -> str:
    """``model.to_json()``'s text: Keras 2's plain config; the top-level ``module`` lets Keras 3's
    ``model_from_json`` find ``Sequential``."""
    return json.dumps({"module": "keras", "class_name": "Sequential", "config": {"name": "sequential",
                       "layers": layers}, "keras_version": KERAS_VERSION, "backend": "tensorflow"})


def _names(names: list[str]) -> np.ndarray:
    return np.array([n.encode("utf8") for n in names]) if names else np.array([], dtype="S1")


def write_h5(path: Path, config_json: str, layers: list[dict], weights, meta: dict) -> None:
    import h5py

    named = dict(weights)
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = KERAS_VERSION
        f.attrs["model_config"] = config_json
        for k, v in meta.items():
            f.attrs[k] = v
        g = f.create_group("model_weights")
        g.attrs["backend"] = "tensorflow"
        g.attrs["keras_version"] = KERAS_VERSION
        lnames = [entry["config"]["name"] for entry in layers if entry["class_name"] != "InputLayer"]
        g.attrs["layer_names"] = _names(lnames)
        for ln in lnames:
            lg = g.create_group(ln)
            ws = named.get(ln, [])
            lg.attrs["weight_names"] = _names([w for w, _ in ws])
            for wname, arr in ws:
                lg.create_dataset(wname, data=np.ascontiguousarray(arr, dtype=np.float32))
        g.create_group("top_level_model_weights").attrs["weight_names"] = _names([])


def _parity(model, h5: Path, json_path: Path) -> float:
    """Max |torch softmax - Keras files read back through ferkit's converter| on 32 random images."""
    import onnxruntime as ort
    import torch

    from .convert import build_onnx
    from .reader import read_keras

    x = np.random.default_rng(0).integers(0, 256, (32, 1, 48, 48)).astype(np.float32)
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    worst = 0.0
    for read in (read_keras(h5), read_keras(json_path, h5)):  # load_model's path, model_from_json's path
        onnx_model, _ = build_onnx(read)
        sess = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
        worst = max(worst, float(np.abs(sess.run(["probs"], {"pixels": x})[0] - ref).max()))
    return worst


def write_keras(checkpoint, out: str | os.PathLike, json_out: str | os.PathLike | None = None, *,
                use_ema: bool = True, log=print) -> dict:
    """Write ``out`` (.h5) and ``json_out`` (default: ``out`` with .json) for a ``seed`` checkpoint;
    both files are written to temporary names, checked, then renamed (nothing is replaced on failure)."""
    from ..checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    if ckpt.get("model") != "seed":
        raise ValueError(f"{checkpoint}: a {ckpt.get('model')!r} checkpoint; only the 'seed' model (the notebook's "
                         "network) can be written as a Keras file (other models: ferkit export to ONNX)")
    model = model_from_checkpoint(ckpt, use_ema=use_ema).eval()
    try:
        layers, weights = seed_layers(model)
    except ValueError as e:
        raise ValueError(f"{checkpoint}: {e}") from e
    out = Path(out)
    json_out = Path(json_out) if json_out else out.with_suffix(".json")
    if out.resolve() == json_out.resolve():
        raise ValueError(f"{out}: the .h5 and the .json must be two files")
    out.parent.mkdir(parents=True, exist_ok=True)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    tmp_h5 = out.with_name(f".{out.name}.{os.getpid()}.tmp.h5")
    tmp_json = json_out.with_name(f".{json_out.name}.{os.getpid()}.tmp.json")
    text = model_json(layers)
    meta = {"labels": json.dumps(list(EMOTIONS)), "ferkit_checkpoint": Path(checkpoint).name,
            "ferkit_input": "gray 48x48 pixels / 255, shape (N, 48, 48, 1)"}
    try:
        write_h5(tmp_h5, text, layers, weights, meta)
        tmp_json.write_text(text, encoding="utf8")
        diff = _parity(model, tmp_h5, tmp_json)
        if diff > PARITY_LIMIT:
            raise KerasCheckFailed(f"{out}: not written: the Keras files differ from the checkpoint by {diff:.2e} "
                               f"(> {PARITY_LIMIT:g})")
        os.replace(tmp_h5, out)
        os.replace(tmp_json, json_out)
    finally:
        tmp_h5.unlink(missing_ok=True)
        tmp_json.unlink(missing_ok=True)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {json_out}: the checkpoint's network as Keras files "
        f"(input gray 48x48 / 255, labels {', '.join(EMOTIONS)}); read back: max |diff| {diff:.1e}")
    return {"h5": str(out), "json": str(json_out), "max_abs_diff": diff, "layers": len(layers) - 1}
