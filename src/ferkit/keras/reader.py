"""Read Keras model files with h5py, json and zipfile alone (no TensorFlow, no Keras, no torch).

Formats (told apart by their bytes, not their names):

* Keras 2 full model ``.h5`` (``model.save("x.h5")`` in TensorFlow 2.x): root attribute ``model_config``
  (JSON), weights in ``model_weights/<layer>/<weight name>``, listed by the ``layer_names`` and
  ``weight_names`` attributes; an ``optimizer_weights`` group, when there, is ignored.
* Keras 3 legacy ``.h5``: the same layout, Keras 3 configs and weight names.
* Keras 3 ``.keras``: a zip holding ``config.json``, ``metadata.json`` and ``model.weights.h5``
  (``layers/<layer>/vars/<i>``).
* A ``.json`` (``model.to_json()``) beside a weights file: a full ``.h5`` as the notebook saves it, a
  ``save_weights`` ``.h5`` (Keras 2) or a ``.weights.h5`` (Keras 3). Weights are matched to the layers in
  order, as Keras's ``load_weights`` does.

:func:`read_keras` returns a :class:`KerasModel` (input shape, layers with their configs and numpy
weights, labels when the file holds them); building the ONNX graph is :mod:`ferkit.keras.onnx_graph`'s
job. Every error is a :class:`KerasFileError` whose message starts with the file it is about.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .topology import KerasFileError, layer_chain

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
# weights a layer's config implies, in Keras's order (trainable first, then non-trainable)
_BN_ORDER = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclass
class KerasLayer:
    kind: str  # Keras class name: Conv2D, Dense, ...
    name: str
    config: dict
    weights: list[np.ndarray] = field(default_factory=list)


@dataclass
class KerasModel:
    source: str  # the file(s) read, for messages: "x.h5" or "x.json + x.h5"
    files: list[Path]  # every file the model came from (the cache hashes them all)
    format: str  # "Keras 2 .h5", "Keras 3 .keras", ...
    keras_version: str | None
    input_shape: tuple  # (H, W, C) as the file states it (None for an open size), channels last
    layers: list[KerasLayer]
    labels: list[str] | None = None  # class names stored in the file, if any


def sniff(path: Path) -> str:
    """'hdf5', 'zip', 'json' or 'unknown', from the first bytes."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(HDF5_MAGIC):
        return "hdf5"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.lstrip()[:1] == b"{":
        return "json"
    return "unknown"


def _h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - the keras extra installs it
        raise KerasFileError("reading Keras files needs h5py: pip install 'ferkit[keras]'") from e
    return h5py


def _text(v) -> str:
    return v.decode("utf8") if isinstance(v, bytes) else str(v)


def _names(attrs, key: str) -> list[str]:
    if key not in attrs:
        return []
    return [_text(n) for n in np.asarray(attrs[key]).reshape(-1)]


def _json(text: str, where: str) -> dict:
    try:
        cfg = json.loads(text)
    except ValueError as e:
        raise KerasFileError(f"{where}: not valid JSON ({e})") from e
    if not isinstance(cfg, dict) or "class_name" not in cfg:
        raise KerasFileError(f"{where}: not a Keras model config (no 'class_name' at the top)")
    return cfg


def _labels_attr(attrs) -> list[str] | None:
    """Class names stored in a root attribute ``labels`` (or ``class_names``): a JSON list, a comma-separated
    string or an array of strings."""
    for key in ("labels", "class_names"):
        if key in attrs:
            raw = attrs[key]
            if not isinstance(raw, (str, bytes)):
                return [_text(v) for v in np.asarray(raw).reshape(-1)]
            text = _text(raw)
            try:
                vals = json.loads(text)
            except ValueError:
                vals = text.split(",")
            return [str(v).strip() for v in (vals if isinstance(vals, list) else [vals])]
    return None


def _version(attrs) -> str | None:
    return _text(attrs["keras_version"]) if "keras_version" in attrs else None


# --------------------------------------------------------------------------- weights in the legacy layout

def _legacy_weights(group, where: str) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """[(layer name, [(weight name, array), ...]), ...] for layers that have weights, in file order."""
    out = []
    for lname in _names(group.attrs, "layer_names"):
        if lname not in group:
            raise KerasFileError(f"{where}: layer {lname!r} is listed but its weights are missing (truncated file?)")
        g = group[lname]
        wnames = _names(g.attrs, "weight_names")
        if wnames:
            ws = []
            for w in wnames:
                if w not in g:
                    raise KerasFileError(f"{where}: weight {w!r} of layer {lname!r} is missing")
                ws.append((w, np.asarray(g[w][()], dtype=np.float32)))
            out.append((lname, ws))
    return out


def _v3_weights(f, where: str) -> dict[str, list[np.ndarray]]:
    """{layer name: [arrays in vars/0, vars/1, ... order]} from a Keras 3 weights file."""
    if "layers" not in f:
        raise KerasFileError(f"{where}: no 'layers' group (not a Keras 3 weights file)")
    out: dict[str, list[np.ndarray]] = {}
    for lname, g in f["layers"].items():
        v = g.get("vars")
        if v is None:
            continue
        keys = sorted(v.keys(), key=int)
        out[lname] = [np.asarray(v[k][()], dtype=np.float32) for k in keys]
    return out


def _snake(name: str) -> str:
    """Keras's to_snake_case: 'Conv2D' -> 'conv2d', 'LeakyReLU' -> 'leaky_re_lu'."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _v3_keys(kinds: list[str]) -> list[str]:
    """The group names a Keras 3 weights file gives the layers: not their names (those vary from session to
    session) but the snake-cased class name, numbered in layer order (conv2d, conv2d_1, ...)."""
    used: dict[str, int] = {}
    keys = []
    for kind in kinds:
        base = _snake(kind)
        if base in used:
            used[base] += 1
            keys.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            keys.append(base)
    return keys


def _short(wname: str) -> str:
    """'dense/kernel:0', 'sequential/dense/kernel' -> 'kernel'."""
    return wname.split("/")[-1].split(":")[0]


def _ordered(kind: str, named: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    """Weights in Keras's order for the layer; BatchNormalization by name when the names say which is which."""
    if kind == "BatchNormalization":
        by = {_short(n): a for n, a in named}
        if set(by) <= set(_BN_ORDER) and len(by) == len(named):
            return [by[k] for k in _BN_ORDER if k in by]
    return [a for _, a in named]


# --------------------------------------------------------------------------- assembling

def _assemble(cfg: dict, weights, where: str, fmt: str, files: list[Path],
              version: str | None, labels: list[str] | None, wfile: str) -> KerasModel:
    """Attach weights to the chain of layers. ``weights``: the legacy list (matched in order, as Keras's
    load_weights does) or the Keras 3 {group: arrays} dict (matched by the group names Keras 3 gives)."""
    input_shape, chain = layer_chain(cfg, where)
    layers = [KerasLayer(kind, name, conf) for kind, name, conf in chain]
    if isinstance(weights, dict):
        keys = _v3_keys([lay.kind for lay in layers])
        for lay, key in zip(layers, keys):
            lay.weights = list(weights.get(key, []))
        extra = [n for n, w in weights.items() if w and n not in keys]
        if extra:
            raise KerasFileError(f"{where}: {wfile} holds weights for layers the model does not have: "
                                 f"{', '.join(sorted(extra))} (the files do not belong together)")
    else:
        need = [lay for lay in layers if _expects_weights(lay)]
        if len(need) != len(weights):
            raise KerasFileError(f"{where}: the model has {len(need)} layers with weights, {wfile} holds weights "
                                 f"for {len(weights)} ({', '.join(n for n, _ in weights) or 'none'}): the files "
                                 "do not belong together")
        for lay, (_, named) in zip(need, weights):
            lay.weights = _ordered(lay.kind, named)
    return KerasModel(where, files, fmt, version, input_shape, layers, labels)


def _expects_weights(layer: KerasLayer) -> bool:
    return layer.kind in ("Conv2D", "Dense", "BatchNormalization")


def _read_h5_full(path: Path) -> KerasModel:
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        cfg = _json(_text(f.attrs["model_config"]), str(path))
        group = f["model_weights"] if "model_weights" in f else f
        version = _version(f.attrs) or _version(group.attrs)
        _refuse_keras1(version, path)
        weights = _legacy_weights(group, str(path))
        labels = _labels_attr(f.attrs)
    major = (version or "?").split(".")[0]
    return _assemble(cfg, weights, str(path), f"Keras {major} .h5", [path], version, labels, path.name)


def _refuse_keras1(version: str | None, path) -> None:
    if version is not None and version.startswith("1"):
        raise KerasFileError(f"{path}: a Keras {version} file; only Keras 2 and 3 files are read")


def _read_keras_zip(path: Path) -> KerasModel:
    h5py = _h5py()
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "config.json" not in names:
                raise KerasFileError(f"{path}: a zip without config.json (not a .keras model)")
            cfg = _json(z.read("config.json").decode("utf8"), f"{path} (config.json)")
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
            if "model.weights.h5" not in names:
                raise KerasFileError(f"{path}: no model.weights.h5 inside ({', '.join(sorted(names))})")
            blob = z.read("model.weights.h5")
    except zipfile.BadZipFile as e:
        raise KerasFileError(f"{path}: damaged .keras archive ({e})") from e
    try:
        with h5py.File(io.BytesIO(blob), "r") as f:
            weights = _v3_weights(f, f"{path} (model.weights.h5)")
    except OSError as e:
        raise KerasFileError(f"{path}: model.weights.h5 inside is not readable HDF5 ({e})") from e
    labels = meta.get("labels") if isinstance(meta.get("labels"), list) else None
    return _assemble(cfg, weights, str(path), "Keras 3 .keras", [path], meta.get("keras_version"), labels,
                     "model.weights.h5")


def _read_pair(cfg_path: Path, weights_path: Path) -> KerasModel:
    h5py = _h5py()
    where = f"{cfg_path} + {weights_path.name}"
    cfg = _json(cfg_path.read_text(encoding="utf8", errors="replace"), str(cfg_path))
    if sniff(weights_path) != "hdf5":
        raise KerasFileError(f"{weights_path}: not an HDF5 weights file (the weights for {cfg_path.name})")
    with h5py.File(weights_path, "r") as f:
        labels = _labels_attr(f.attrs)
        if "layers" in f and "layer_names" not in f.attrs and "model_weights" not in f:
            weights = _v3_weights(f, str(weights_path))
            version, fmt = None, "Keras 3 .json + .weights.h5"
        else:
            group = f["model_weights"] if "model_weights" in f else f
            version = _version(f.attrs) or _version(group.attrs)
            _refuse_keras1(version, weights_path)
            weights = _legacy_weights(group, str(weights_path))
            fmt = f"Keras {(version or '?').split('.')[0]} .json + .h5"
    return _assemble(cfg, weights, where, fmt, [cfg_path, weights_path],
                     version or cfg.get("keras_version"), labels, weights_path.name)


def _partner(path: Path, suffixes: tuple[str, ...]) -> Path | None:
    stem = path.name
    for s in (".weights.h5", ".h5", ".hdf5", ".json", ".keras"):
        if stem.lower().endswith(s):
            stem = stem[: -len(s)]
            break
    for s in suffixes:
        p = path.with_name(stem + s)
        if p.is_file() and p != path:
            return p
    return None


def model_files(path: str | os.PathLike, weights: str | os.PathLike | None = None) -> list[Path]:
    """The files a model is read from: [path] for a full model, [json, weights] for a pair (the partner
    found beside the given file when not named)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    kind = sniff(path)
    if kind == "json":
        w = Path(weights) if weights else _partner(path, (".h5", ".weights.h5", ".hdf5"))
        if w is None:
            raise KerasFileError(f"{path}: a model config without weights: no {path.stem}.h5 beside it "
                                 "(name the weights file)")
        if not w.is_file():
            raise FileNotFoundError(f"{w}: no such file (the weights for {path.name})")
        return [path, w]
    if kind == "hdf5":
        h5py = _h5py()
        try:
            with h5py.File(path, "r") as f:
                full = "model_config" in f.attrs
        except OSError as e:
            raise KerasFileError(f"{path}: not readable HDF5 (truncated or damaged? {e})") from e
        if full:
            return [path]
        cfg = _partner(path, (".json",))
        if cfg is None:
            raise KerasFileError(f"{path}: weights only (no model config inside) and no {path.stem}.json beside "
                                 "it: pass the .json that model.to_json() wrote")
        return [cfg, path]
    if kind == "zip":
        return [path]
    raise KerasFileError(f"{path}: not a Keras model file (neither HDF5 .h5, a .keras archive nor a .json config)")


def read_keras(path: str | os.PathLike, weights: str | os.PathLike | None = None) -> KerasModel:
    """Read any supported Keras file (or .json + weights pair) into a :class:`KerasModel`."""
    files = model_files(path, weights)
    try:
        if len(files) == 2:
            return _read_pair(*files)
        if sniff(files[0]) == "zip":
            return _read_keras_zip(files[0])
        return _read_h5_full(files[0])
    except KerasFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        # h5py reports truncation and damage as OSError/KeyError at the first read that hits it
        what = " + ".join(str(f) for f in files)
        raise KerasFileError(f"{what}: cannot read the Keras model ({type(e).__name__}: {e}); truncated or "
                             "damaged file?") from e
