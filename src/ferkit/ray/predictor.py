""":class:`FerkitPredictor`: ferkit's detection + classification as a callable class for Ray Data's
``Dataset.map_batches``, one :class:`~ferkit.recognizer.Recognizer` per actor (the model is loaded once, in the
constructor). It imports neither Ray nor torch: Ray calls it, and it can be called by hand on a batch.

A batch holds images by ``path`` (a local path, or any URI pyarrow opens: ``s3://``, ``gs://``, ``file://``...),
optionally with their ``bytes`` already read (``ray.data.read_binary_files(..., include_paths=True)`` gives both),
a ``file`` (the name written in the rows; default: the path) and an ``image`` id (passed through). Each image is
read and decoded exactly as ``ferkit predict`` does (:func:`ferkit.images.load_image`), its faces are detected and
cropped, and the crops of the whole batch are classified together. The result is a ``pyarrow.Table`` of
:mod:`ferkit.rows <ferkit.ray.rows>` (one row per face, a ``no face`` row, or an error row naming the file: a bad
file never fails the batch) plus ``image`` (the id, or the image's position in the batch), ``image_rows`` (the rows
this image has: a reader can tell when an image is complete) and ``note`` (set when a huge file was decoded at
reduced size).
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .rows import image_rows, schema


def output_schema():
    """The pyarrow schema of what :class:`FerkitPredictor` returns."""
    import pyarrow as pa

    return schema([("image", pa.int64()), ("image_rows", pa.int32()), ("note", pa.string())])


@dataclass
class _Image:
    path: str
    data: bytes | None = None
    dets: list = field(default_factory=list)
    crops: np.ndarray | None = None
    detector: str | None = None
    error: str | None = None
    note: str | None = None


def is_uri(path: str) -> bool:
    """Whether ``path`` names a file through a pyarrow filesystem (``s3://b/k``, ``file:///x``), not a local path."""
    scheme, sep, _ = path.partition("://")
    return bool(sep) and scheme.isalnum() and len(scheme) > 1


def read_bytes(uri: str) -> bytes:
    """The content of a file named by a URI, read with pyarrow's filesystems (S3, GCS, HDFS, local...)."""
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    with filesystem.open_input_stream(path) as f:
        return f.read()


def _decode(path: str, data: bytes | None):
    """:func:`ferkit.images.load_image` on a local path; a URI or bytes go through a temporary file (the same
    decoder), and a message about that file names ``path`` instead."""
    from ..images import ImageError, load_image

    if data is None and not is_uri(path):
        return load_image(path)
    if data is None:
        data = read_bytes(path)
    fd, tmp = tempfile.mkstemp(prefix="ferkit-", suffix=Path(path).suffix[:16])
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            return load_image(tmp)
        except ImageError as e:
            raise ImageError(str(e).replace(tmp, path)) from None
    finally:
        os.unlink(tmp)


def _columns(batch) -> dict[str, list]:
    """A Ray Data batch in any of its formats (pyarrow Table, pandas DataFrame, dict of numpy arrays) -> lists."""
    if hasattr(batch, "to_pydict"):
        return batch.to_pydict()
    if hasattr(batch, "columns") and hasattr(batch, "iloc"):
        return {c: batch[c].tolist() for c in batch.columns}
    return {k: list(v) for k, v in batch.items()}


class FerkitPredictor:
    """Faces and emotions of a batch of images, for ``Dataset.map_batches`` (a class: Ray builds one per actor).

    >>> faces = ds.map_batches(FerkitPredictor, fn_constructor_kwargs={"model": "fast"}, concurrency=4,
    ...                        num_cpus=1, batch_size=32)   # ds: columns path (+ bytes, file, image)

    The constructor takes ``ferkit predict``'s options: ``model``, ``detector``, ``crop`` (inputs are face crops:
    no detection), ``min_face``, ``threshold``, ``max_faces``, ``max_side`` (0/None: never scaled), ``threads``
    (onnxruntime threads, and images decoded at once, per actor; give Ray the same ``num_cpus``) and
    ``batch_size`` (face crops per inference call).
    """

    def __init__(self, model=None, detector: str = "auto", crop: bool = False, min_face: int = 24,
                 threshold: float | None = None, max_faces: int | None = None, max_side: int | None = 640,
                 threads: int = 1, batch_size: int = 64):
        from ..recognizer import Recognizer

        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        self.crop = bool(crop)
        self.threads = max(1, int(threads or 1))
        self.batch_size = int(batch_size)
        self.rec = Recognizer(model=model, detector="full" if crop else detector, min_face=min_face,
                              threshold=threshold, max_faces=max_faces, threads=self.threads,
                              max_side=max_side or None)
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    def _locate(self, im: _Image) -> _Image:
        """Read, decode, detect and crop one image (what ``ferkit predict`` does per file)."""
        from ..recognizer import in_file_pixels, to_face48

        try:
            img = _decode(im.path, im.data)
            im.data, im.note = None, img.note
            if self.crop:
                from ..faces import Detection

                w, h = img.size
                im.dets, im.crops, im.detector = [Detection((0, 0, w, h), 1.0)], to_face48(img.bgr)[None], "crop"
            else:
                dets, im.crops, im.detector = self.rec.locate(img.bgr)
                im.dets = in_file_pixels(dets, img)
        except (ValueError, OSError) as e:  # ImageError is a ValueError
            im.error = str(e) if im.path in str(e) else f"{im.path}: {e}"
        except Exception as e:  # noqa: BLE001 - one bad file never fails the batch
            im.error = f"{im.path}: {type(e).__name__}: {e}"
        return im

    def __call__(self, batch):
        import pyarrow as pa

        cols = _columns(batch)
        if "path" not in cols:
            raise ValueError(f"a batch for FerkitPredictor needs a 'path' column (it has {sorted(cols)})")
        paths = [os.fsdecode(p) for p in cols["path"]]
        n = len(paths)
        datas = cols.get("bytes") or [None] * n
        files = [os.fsdecode(f) for f in cols["file"]] if "file" in cols else paths
        ids = [int(i) for i in cols["image"]] if "image" in cols else list(range(n))
        todo = [_Image(p, None if d is None else bytes(d)) for p, d in zip(paths, datas, strict=True)]
        done = list(self._pool.map(self._locate, todo)) if self._pool else [self._locate(im) for im in todo]
        ok = [im for im in done if im.error is None and im.crops is not None and len(im.crops)]
        probs = self.rec.predict_arrays(np.concatenate([im.crops for im in ok]), self.batch_size) if ok else None
        per_image, k = {}, 0
        for im in ok:
            per_image[id(im)], k = probs[k:k + len(im.crops)], k + len(im.crops)
        out = []
        for im, file, image in zip(done, files, ids, strict=True):
            rows = image_rows(file, im.dets, per_image.get(id(im)), im.detector, im.error)
            for r in rows:
                r |= {"image": image, "image_rows": len(rows), "note": im.note}
            out += rows
        return pa.Table.from_pylist(out, schema=output_schema())
