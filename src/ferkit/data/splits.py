"""Which splits a dataset path has, which one a report is made on, and which images a split name selects, in
words: the one resolver behind ``ferkit data info``, ``ferkit data audit`` and ``ferkit evaluate``, so that a path
holding no dataset, or a split a dataset does not have, gets one message everywhere (no torch, nothing decoded).

* :func:`dataset_splits`: the splits a path has, or "no dataset found; expected ..." naming the layouts read;
* :func:`disjoint_splits`: those of them that are not part of another (``public`` and ``private`` are parts of
  ``test``), the ones an audit may compare with each other;
* :func:`choose_split`: the split asked for (``auto``: the report split and why), checked: a split the dataset
  lacks is an error that lists the splits it has and names the one to ask for;
* :func:`scored_images`: "which images, and why", the first line of an evaluation report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .readers import (
    CSV_USAGE,
    PREFIXES,
    DatasetError,
    _looks_like_split_dir,
    _split_folder_and_prefix,
    has_split,
    is_split_folder,
    list_split_files,
    resolve_root,
)

ORDER = ("train", "test", "public", "private")
PARTS = ("public", "private")  # FER2013's two official test sets: files of test/ told apart by their names


def no_dataset(path: str | os.PathLike) -> DatasetError:
    return DatasetError(f"{path}: no dataset found; expected <root>/train/<emotion>/ and <root>/test/<emotion>/ "
                        "(or validation/), one split folder <dir>/<emotion>/, a fer2013.csv or a .npz (emotion "
                        "folders: angry, disgust, fear, happy, neutral, sad, surprise or their aliases)")


def dataset_splits(path: str | os.PathLike) -> list[str]:
    """The splits of :data:`ORDER` that ``path`` has (lists files, decodes nothing); an error saying what was
    expected when it has none."""
    if not Path(path).exists():
        raise DatasetError(f"{path}: no such file or folder")
    found = [s for s in ORDER if has_split(path, s)]
    if not found:
        raise no_dataset(path)
    return found


def _n_files(path: str | os.PathLike, split: str) -> int | None:
    """Files a folder dataset's split lists (None for a .csv or .npz, or when it has no such split)."""
    try:
        return len(list_split_files(path, split, skip_unknown=True)[1])
    except (DatasetError, OSError):
        return None


def _kind(path: str | os.PathLike) -> tuple[str, Path]:
    """("csv", file) | ("npz", file) | ("folder", root): how :func:`ferkit.data.load_split` reads ``path``."""
    p = Path(path)
    if p.is_file():
        return ("npz" if p.suffix.lower() == ".npz" else "csv"), p
    root = resolve_root(p)
    csvs = sorted(p.glob("fer2013*.csv")) + sorted(p.glob("*/fer2013*.csv"))
    folders = any((root / s).is_dir() for s in ("train", "test", "validation")) or _looks_like_split_dir(root)
    return ("csv", csvs[0]) if csvs and not folders else ("folder", root)


def disjoint_splits(path: str | os.PathLike, found: list[str] | None = None) -> list[str]:
    """The splits of ``path`` an audit compares: none a part of another. ``test`` and its parts ``public`` and
    ``private`` are never both kept: the two parts when together they are the whole test split (FER2013), else
    ``test`` alone (a file in both would otherwise be counted as a duplicate, or a leak, of itself)."""
    found = list(found) if found is not None else dataset_splits(path)
    parts = [s for s in PARTS if s in found]
    if "test" not in found or not parts:
        return found
    kind, _ = _kind(path)
    whole = len(parts) == 2 and (kind == "csv" or (kind == "folder" and _n_files(path, "public") is not None
                                 and _n_files(path, "public") + _n_files(path, "private") == _n_files(path, "test")))
    drop = {"test"} if whole else set(parts)
    return [s for s in found if s not in drop]


@dataclass(frozen=True)
class Choice:
    split: str
    why: str  # "--split private", or why auto picked it


def choose_split(path: str | os.PathLike, split: str = "auto") -> Choice:
    """The split to score on ``path``. ``auto``: ``private`` (FER2013's reporting set) when the dataset marks
    it, else ``test``, else ``train`` (said as a warning: a model may have trained on those). Any other name is
    checked: a split the dataset lacks is an error listing the ones it has and the option to use."""
    found = dataset_splits(path)
    if split == "auto":
        if "private" in found:
            return Choice("private", "auto: FER2013's reporting set, marked by the file names")
        if "test" in found:
            return Choice("test", "auto: the test split")
        return Choice("train", "auto: the dataset has no test split, so its train split; a model may have been "
                               "trained on these images")
    if split in found or (split == "all" and has_split(path, "all")):
        return Choice(split, "as asked")
    try:  # the reader's own reason (no train/ folder, no PrivateTest_ names, ...)
        list_split_files(path, split, skip_unknown=True)
        reason = ""
    except (DatasetError, OSError) as e:
        reason = f" ({e})"
    hint = "test" if "test" in found else found[0]
    raise DatasetError(f"{path}: no {split!r} split{reason}; this dataset has: {', '.join(found)}; "
                       f"--split {hint} scores {_whole(path, hint)}")


def _whole(path: str | os.PathLike, split: str) -> str:
    n = _n_files(path, split)
    return f"its {split} split" + (f" ({n} images)" if n is not None else "")


def scored_images(path: str | os.PathLike, choice: Choice, n: int, skipped: int = 0) -> str:
    """The first line of an evaluation report: how many images were scored, which, and why, e.g. ``scored 76 of
    the 140 images in small/test: the PrivateTest_* files (split private; auto: ...; --split test scores all
    140)``."""
    kind, where = _kind(path)
    split, why = choice.split, choice.why
    if kind == "csv":
        rows = " + ".join(CSV_USAGE.get(split, (split,)))
        line = f"scored {n} images: the {rows} rows of {where} (split {split}; {why}"
    elif kind == "npz":
        line = f"scored {n} images: the {split}_images array of {where} (split {split}; {why}"
    elif split == "all" and not is_split_folder(where):
        test_folder = _split_folder_and_prefix(where, "test")[0]
        line = f"scored {n} images: every image in {where / 'train'} and {test_folder} (split all; {why}"
    else:
        folder, prefix = _split_folder_and_prefix(where, split)
        if prefix:
            whole_split = "all" if is_split_folder(where) else "test"
            whole = _n_files(path, whole_split)
            line = f"scored {n} of the {whole} images in {folder}: the {prefix}* files (split {split}; {why}"
            if why.startswith("auto"):
                line += f"; --split {whole_split} scores all {whole}"
        else:
            line = f"scored {n} images: every image in {folder} (split {split}; {why}"
    return line + (f"; {skipped} unreadable file(s) skipped" if skipped else "") + ")"


__all__ = ["ORDER", "PARTS", "PREFIXES", "Choice", "choose_split", "dataset_splits", "disjoint_splits",
           "no_dataset", "scored_images"]
