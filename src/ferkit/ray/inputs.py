"""What a Ray run reads: inputs expanded to image files on the driver, then handed to Ray Data as a dataset of
paths (the workers read the files themselves, so one unreadable file is one error row, never a failed job).

Local paths, folders (recursive) and globs are expanded exactly as ``ferkit predict`` does
(:func:`ferkit.images.list_images`), with the same names in the rows. A URI (``s3://bucket/photos/``,
``gs://...``, ``file:///...``: any filesystem pyarrow knows, credentials as pyarrow finds them) is listed with
pyarrow: a folder recursively, keeping the image extensions ``list_images`` keeps; globs are for local paths only.
On a cluster of several machines, local paths must name the same files on every machine (a shared filesystem);
URIs need no sharing.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath

from .predictor import is_uri


def _list_uri(item: str) -> tuple[list[str], str | None]:
    """Files under a URI (a file: itself) and the problem when there is none."""
    from pyarrow import fs

    from ..images import IMAGE_EXTS

    try:
        filesystem, root = fs.FileSystem.from_uri(item)
        info = filesystem.get_file_info(root)
        if info.type == fs.FileType.File:
            return [item], None
        if info.type != fs.FileType.Directory:
            return [], "no such file or folder"
        found = filesystem.get_file_info(fs.FileSelector(root, recursive=True))
    except (OSError, ValueError) as e:  # pyarrow's errors (ArrowInvalid is a ValueError)
        return [], f"cannot list ({type(e).__name__}: {e})"
    base = item.rstrip("/")
    top = PurePosixPath(root)
    files = []
    for f in found:
        rel = PurePosixPath(f.path).relative_to(top)
        if f.type == fs.FileType.File and not any(part.startswith(".") for part in rel.parts) \
                and rel.suffix.lower() in IMAGE_EXTS:
            files.append(f"{base}/{rel}")
    if not files:
        return [], "folder holds no images"
    return sorted(files), None


def _display_name(path: str, inputs: list[str]) -> str:
    """The name of a file in the rows: under a folder argument, that folder's name and the path inside it (as
    ``ferkit predict`` names them); else the path as given."""
    for item in inputs:
        if is_uri(item) != is_uri(path):
            continue
        if is_uri(item):
            root = PurePosixPath(item.split("://", 1)[1])
            try:
                return str(PurePosixPath(root.name) / PurePosixPath(path.split("://", 1)[1]).relative_to(root))
            except ValueError:
                continue
        if Path(item).is_dir():
            try:
                return str(Path(Path(item).name) / Path(path).relative_to(Path(item)))
            except ValueError:
                continue
    return path


def list_inputs(inputs: list[str]) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """``(paths, names, problems)``: every image file of ``inputs`` (local paths expanded by
    :func:`ferkit.images.list_images`, in its order, then the files of URIs, listed with pyarrow), the name each
    one has in the rows, and ``(input, reason)`` for the inputs that matched nothing."""
    from ..images import list_images
    from ..outputs import safe_text

    local = [i for i in inputs if not is_uri(i)]
    files, problems = list_images(local) if local else ([], [])
    paths = [str(f) for f in files]
    seen = set(paths)
    for item in inputs:
        if is_uri(item):
            found, why = _list_uri(item)
            if why:
                problems.append((item, why))
            for f in found:
                if f not in seen:
                    seen.add(f)
                    paths.append(f)
    return paths, [safe_text(_display_name(p, inputs)) for p in paths], problems


def block_size(n_images: int, workers: int, most: int = 256) -> int:
    """Images per Ray task: about 8 tasks per worker (work is shared out and a retried task redoes little), at
    most ``most`` (the driver puts one block per task into the object store)."""
    return max(1, min(most, math.ceil(n_images / (8 * max(1, workers)))))


def paths_dataset(paths: list[str], names: list[str] | None = None, block: int = 64):
    """A Ray ``Dataset`` of ``image`` (position in ``paths``), ``path`` (bytes: any file name survives) and
    ``file`` (the name in the rows), ``block`` images per block: the input of
    :class:`~ferkit.ray.FerkitPredictor`."""
    import pyarrow as pa
    import ray.data

    names = names if names is not None else [str(p) for p in paths]
    tables = []
    for i in range(0, len(paths), block):
        j = min(len(paths), i + block)
        tables.append(pa.table({"image": pa.array(range(i, j), pa.int64()),
                                "path": pa.array([os.fsencode(p) for p in paths[i:j]], pa.binary()),
                                "file": pa.array(names[i:j], pa.string())}))
    if not tables:
        raise ValueError("no images to read")
    return ray.data.from_arrow(tables)
