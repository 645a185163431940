"""Converted Keras models, cached by content: ``<cache>/keras/<name>-<key>.onnx``.

``<cache>`` is ferkit's cache folder (``$FERKIT_CACHE``, else ``$XDG_CACHE_HOME/ferkit``, else
``~/.cache/ferkit``). The key hashes the bytes of every file the model is read from, the conversion options
and the converter's version, so an edited or replaced ``.h5`` is converted again and an unchanged one never
is. Files are written atomically (temporary file + rename), so two processes converting the same model at
once both end with a complete file. A cache folder that cannot be written falls back to the system's
temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from .onnx_graph import CONVERTER

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras", ".json")
FALLBACK_DIR = Path(tempfile.gettempdir()) / "ferkit-keras-cache"  # when the cache folder is not writable
_CHUNK = 1 << 20


def is_keras_path(model) -> bool:
    """Whether a ``--model`` value names a Keras file (by its suffix: .h5, .hdf5, .keras, .json)."""
    return str(model).lower().endswith(KERAS_SUFFIXES)


def files_sha256(files: list[Path]) -> str:
    """One SHA-256 over the bytes of all files (each prefixed by its length)."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{os.path.getsize(f)}:".encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    from ..data.readers import default_cache_dir

    return default_cache_dir() / "keras"


def is_converted(path) -> bool:
    """Whether ``path`` is an ONNX file this cache made (a Keras model's conversion)."""
    folder = Path(path).resolve().parent
    return folder in (cache_dir().resolve(), FALLBACK_DIR.resolve())


def _writable(d: Path) -> Path:
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return d
    except OSError as e:
        alt = FALLBACK_DIR
        log.warning("cache folder %s not writable (%s); converted Keras models go to %s", d, e, alt)
        alt.mkdir(parents=True, exist_ok=True)
        return alt


def need_extra(path) -> None:
    """Raise KerasFileError naming ``path`` when h5py or onnx (the ``keras`` extra) is missing."""
    import importlib.util

    from .topology import KerasFileError

    missing = [m for m in ("h5py", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        raise KerasFileError(f"{path}: a Keras model; reading it needs {' and '.join(missing)}: "
                             "pip install 'ferkit[keras]'")


def notice(metadata: dict) -> str | None:
    """One line for the user about a model converted from Keras (what was read, the input scale and the label
    order, and how each was decided), from the ONNX file's metadata; None for any other model."""
    if metadata.get("source") != "keras":
        return None
    src = ", ".join(json.loads(metadata.get("checkpoints", "[]"))) or "?"
    notes = metadata.get("keras_notes", "none")
    scale, labels = metadata.get("keras_input_scale", "?"), metadata.get("keras_labels", "?")
    line = (f"{src}: {metadata.get('keras_format', 'Keras')} model, run as ferkit ONNX; input {scale}; labels "
            f"{labels}" + ("" if notes == "none" else f"; {notes}"))
    if "assumed" in labels or scale.endswith("(the notebook's)"):  # say how to change what was assumed
        line += ("; if the model was trained otherwise: ferkit export MODEL --labels ORDER --input-scale RANGE "
                 "--out model.onnx, then --model model.onnx")
    return line


def cached_onnx(path: str | os.PathLike, *, weights=None, input_scale=None, labels=None,
                directory: str | os.PathLike | None = None) -> Path:
    """The ferkit ONNX file for a Keras model, converted on first use and then taken from the cache."""
    from .convert import keras_to_onnx
    from .reader import model_files

    need_extra(path)
    files = model_files(path, weights)
    sha = files_sha256(files)
    options = json.dumps({"input_scale": input_scale, "labels": labels, "converter": CONVERTER}, sort_keys=True)
    key = hashlib.sha256(f"{sha}|{options}".encode()).hexdigest()[:20]
    stem = Path(files[-1]).name.split(".")[0] or "model"
    d = _writable(Path(directory) if directory else cache_dir())
    out = d / f"{stem}-{key}.onnx"
    if out.is_file():
        log.info("Keras model %s: cached conversion %s", path, out)
        return out
    t0 = time.perf_counter()
    info = keras_to_onnx(path, out, weights=weights, input_scale=input_scale, labels=labels, sha256=sha)
    log.info("Keras model %s converted in %.2f s -> %s (%s)", path, time.perf_counter() - t0, out,
             info.describe().replace("\n", "; "))
    return out
