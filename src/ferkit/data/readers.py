"""Dataset readers: Kaggle folder layouts and the original fer2013.csv, decoded to 48x48 uint8.

Layouts understood (auto-detected from the path the user gives):

* ``<root>/train/<emotion>/*`` and ``<root>/test/<emotion>/*`` (``validation/`` is a synonym of
  ``test/``), also under ``<root>/images/`` (the jonathanoheix dataset);
* the msambare FER2013 copy, where ``test/`` holds both official test sets told apart by the
  file-name prefix: ``--split public`` keeps ``PublicTest_*``, ``--split private`` keeps ``PrivateTest_*``;
* a single split folder ``<dir>/<emotion>/*``: it is ONE split. ``all`` reads the whole folder; ``public`` /
  ``private`` keep the ``PublicTest_`` / ``PrivateTest_`` files in it (fer2013/test given directly);
  ``train`` reads it only if the folder is called ``train``, ``test`` only if it is not: a split folder
  never stands in for a split it is not (no training and selecting on the same images);
* the original ``fer2013.csv`` (columns emotion, pixels, Usage).

Everything is returned as a :class:`Split`: ``images`` (N, 48, 48) uint8, ``labels`` (N,) int64 in
:data:`ferkit.emotions.EMOTIONS` order, and ``sources`` naming where each image came from.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..emotions import EMOTIONS, FER2013_CSV_ORDER, INDEX, canonical

log = logging.getLogger(__name__)

IMAGE_SIZE = 48
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
SPLITS = ("train", "test", "public", "private", "all")  # validation/ is a folder name, read with "test"
PREFIXES = {"public": "PublicTest_", "private": "PrivateTest_"}
CACHE_VERSION = 1


class DatasetError(ValueError):
    """A dataset could not be read as asked; the message names the path and the problem."""


@dataclass
class Split:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64
    sources: list[str]  # file path (relative to the dataset root) or "csv:<row>"
    name: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {e: int(n) for e, n in zip(EMOTIONS, c)}

    def subset(self, idx) -> Split:
        idx = np.asarray(idx)
        return Split(self.images[idx], self.labels[idx], [self.sources[i] for i in idx], self.name)


# --------------------------------------------------------------------------- decoding


def to_gray48(img: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """Any PIL image (any mode, any size) -> (size, size) uint8 grayscale, EXIF orientation applied."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    img = img.convert("L")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(img, dtype=np.uint8)


def decode_file(path: str | os.PathLike) -> np.ndarray:
    """Decode one image file to 48x48 uint8; raises DatasetError naming the file on failure."""
    try:
        with Image.open(path) as im:
            im.load()
            return to_gray48(im)
    except Exception as e:  # PIL raises many exception types for bad files
        raise DatasetError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from e


# --------------------------------------------------------------------------- layout detection


def _emotion_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _looks_like_split_dir(folder: Path) -> bool:
    subs = _emotion_dirs(folder)
    return bool(subs) and sum(canonical(p.name) is not None for p in subs) >= max(1, len(subs) // 2)


def resolve_root(path: str | os.PathLike) -> Path:
    """The folder holding train/ and test/ (or validation/), looking inside images/ too."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    for cand in (p, p / "images"):
        if cand.is_dir() and any((cand / s).is_dir() for s in ("train", "test", "validation", "val")):
            return cand
    return p


def _split_folder_and_prefix(root: Path, split: str) -> tuple[Path, str | None]:
    """Map a split name onto a folder and an optional file-name prefix filter."""
    split = split.lower()
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}"
                           + (" (a validation/ folder is read with 'test')" if split in ("val", "validation")
                              else ""))
    if is_split_folder(root):
        return _single_split(root, split)  # the user pointed at one split folder directly
    if split == "train":
        folder = root / "train"
        if not folder.is_dir():
            raise DatasetError(f"{root}: no train/ folder (found: {_listing(root)})")
        return folder, None
    for name in ("test", "validation", "val"):
        if (root / name).is_dir():
            folder = root / name
            break
    else:
        raise DatasetError(f"{root}: no test/ or validation/ folder (found: {_listing(root)})")
    return folder, PREFIXES.get(split)


def is_split_folder(root: Path) -> bool:
    """Emotion folders directly inside (one split), not a dataset root with train/ and test/."""
    return _looks_like_split_dir(root) and not (root / "train").is_dir()


def _single_split(folder: Path, split: str) -> tuple[Path, str | None]:
    is_train = folder.name.lower() == "train"
    if split == "all" or split == ("train" if is_train else "test"):
        return folder, None
    if split in PREFIXES:
        return folder, PREFIXES[split]
    own = "train" if is_train else "test"
    raise DatasetError(f"{folder}: a single split folder (emotion folders directly inside), read as the {own} "
                       f"split; it has no {split} split. Pass the dataset root (the folder holding train/ and "
                       f"test/) to get every split, or --split {own}/all for this folder")


def _listing(folder: Path) -> str:
    try:
        return ", ".join(sorted(p.name for p in folder.iterdir())[:12]) or "nothing"
    except OSError as e:
        return str(e)


def list_split_files(
    path: str | os.PathLike, split: str = "train", skip_unknown: bool = False
) -> tuple[Path, list[tuple[str, int]]]:
    """(root, [(relative path, label index), ...]) for a folder dataset, sorted for determinism."""
    root = resolve_root(path)
    if split == "all" and not is_split_folder(root):
        out: list[tuple[str, int]] = []
        for s in ("train", "test"):
            out += list_split_files(root, s, skip_unknown)[1]
        return root, out
    folder, prefix = _split_folder_and_prefix(root, split)
    files: list[tuple[str, int]] = []
    unknown = []
    for sub in _emotion_dirs(folder):
        emo = canonical(sub.name)
        if emo is None:
            unknown.append(sub.name)
            continue
        for dirpath, _dirs, names in os.walk(sub):
            for n in names:
                if Path(n).suffix.lower() not in IMAGE_EXTS:
                    continue
                if prefix and not n.startswith(prefix):
                    continue
                files.append((os.path.relpath(os.path.join(dirpath, n), root), INDEX[emo]))
    if unknown and not skip_unknown:
        raise DatasetError(
            f"{folder}: unknown emotion folder(s) {', '.join(sorted(unknown))}; valid names: "
            f"{', '.join(EMOTIONS)} (and aliases such as anger, happiness, sadness, surprised); "
            "pass skip_unknown=True / --skip-unknown to ignore them"
        )
    if unknown:
        log.warning("%s: skipped unknown emotion folder(s) %s", folder, ", ".join(sorted(unknown)))
    if not files:
        what = f" named {prefix}*" if prefix else ""
        hint = (" (this split needs the FER2013 file-name prefixes: pass --split test for the whole test/ folder, "
                "--split all for every file of a split folder)") if prefix else ""
        raise DatasetError(f"{folder}: no images{what} found under emotion folders{hint}")
    files.sort()
    return root, files


# --------------------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    env = os.environ.get("FERKIT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "ferkit"


def _fingerprint(root: Path, files: list[tuple[str, int]], extra: str) -> str:
    h = hashlib.sha1(f"v{CACHE_VERSION}|{root.resolve()}|{extra}".encode())
    for rel, lab in files:
        st = os.stat(root / rel)
        h.update(f"{rel}|{lab}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _atomic_save_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _decode_many(root: Path, files: list[tuple[str, int]], progress: bool) -> tuple[np.ndarray, list[int], list]:
    imgs = np.zeros((len(files), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    ok = np.zeros(len(files), bool)
    errors: list[tuple[str, str]] = []

    def work(i: int):
        try:
            imgs[i] = decode_file(root / files[i][0])
            ok[i] = True
        except DatasetError as e:
            errors.append((files[i][0], str(e)))

    it = range(len(files))
    bar = None
    if progress and len(files) > 2000:
        from tqdm import tqdm

        bar = tqdm(total=len(files), desc="decoding", unit="img", file=sys.stderr, leave=False, disable=None)
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as ex:
        for _ in ex.map(work, it, chunksize=256):
            if bar:
                bar.update()
    if bar:
        bar.close()
    keep = np.flatnonzero(ok).tolist()
    return imgs, keep, errors


def read_folder_split(
    path: str | os.PathLike,
    split: str = "train",
    *,
    skip_unknown: bool = False,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Split:
    root, files = list_split_files(path, split, skip_unknown)
    key = _fingerprint(root, files, split)
    cdir = Path(cache_dir) if cache_dir else default_cache_dir()
    cpath = cdir / f"{root.name}-{split}-{key}.npz"
    if cache and cpath.exists():
        try:
            with np.load(cpath, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                return Split(
                    z["images"],
                    z["labels"].astype(np.int64),
                    list(z["sources"]),
                    split,
                    [tuple(s) for s in meta.get("skipped", [])],
                )
        except Exception as e:  # a corrupt cache is rebuilt, never fatal
            log.warning("%s: unreadable cache (%s), rebuilding", cpath, e)
    imgs, keep, errors = _decode_many(root, files, progress)
    for _src, msg in errors:
        log.warning("skipped %s", msg)
    labels = np.array([files[i][1] for i in keep], np.int64)
    sources = [files[i][0] for i in keep]
    out = Split(imgs[keep], labels, sources, split, errors)
    if cache:
        try:
            _atomic_save_npz(
                cpath,
                images=out.images,
                labels=out.labels,
                sources=np.array(sources),
                meta=np.array(json.dumps({"root": str(root), "split": split, "skipped": errors})),
            )
        except OSError as e:
            log.warning("could not write cache %s: %s", cpath, e)
    return out


# --------------------------------------------------------------------------- fer2013.csv

CSV_USAGE = {
    "train": ("Training",),
    "public": ("PublicTest",),
    "private": ("PrivateTest",),
    "test": ("PublicTest", "PrivateTest"),
    "all": ("Training", "PublicTest", "PrivateTest"),
}


def read_fer2013_csv(path: str | os.PathLike, split: str = "train") -> Split:
    """Read the original fer2013.csv (emotion, pixels, Usage); labels are remapped to EMOTIONS order."""
    path = Path(path)
    if split not in CSV_USAGE:
        raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(CSV_USAGE)}")
    usages = CSV_USAGE[split]
    remap = [INDEX[e] for e in FER2013_CSV_ORDER]
    imgs, labels, sources, skipped = [], [], [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        need = {"emotion", "pixels"}
        if not reader.fieldnames or not need <= {c.strip() for c in reader.fieldnames}:
            raise DatasetError(f"{path}: not a fer2013.csv (columns {reader.fieldnames}; need emotion, pixels, Usage)")
        for row_no, row in enumerate(reader, start=2):
            row = {k.strip(): v for k, v in row.items() if k}
            usage = (row.get("Usage") or "Training").strip()
            if usage not in usages:
                continue
            src = f"{path.name}:{row_no}"
            try:
                e = int(row["emotion"])
                if not 0 <= e < 7:
                    raise ValueError(f"emotion {e} outside 0..6")
                px = np.array(row["pixels"].split(), dtype=np.int64)
                if px.size != IMAGE_SIZE * IMAGE_SIZE:
                    raise ValueError(f"{px.size} pixels, expected {IMAGE_SIZE * IMAGE_SIZE}")
                if px.min() < 0 or px.max() > 255:
                    raise ValueError("pixel values outside 0..255")
            except (ValueError, TypeError, AttributeError) as err:
                skipped.append((src, f"{src}: bad row ({err})"))
                log.warning("skipped %s: bad row (%s)", src, err)
                continue
            imgs.append(px.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
            labels.append(remap[e])
            sources.append(src)
    if not imgs:
        raise DatasetError(f"{path}: no rows with Usage in {usages}")
    return Split(np.stack(imgs), np.array(labels, np.int64), sources, split, skipped)


# --------------------------------------------------------------------------- entry point


def load_split(
    path: str | os.PathLike,
    split: str = "train",
    *,
    skip_unknown: bool = False,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Split:
    """Load one split of any supported dataset layout (see module docstring)."""
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return read_fer2013_csv(p, split)
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as z:
                key = f"{split}_images"
                if key not in z:
                    raise DatasetError(f"{p}: no arrays for split {split!r} (has {', '.join(z.files)})")
                return Split(z[key], z[f"{split}_labels"].astype(np.int64), [f"{p.name}:{i}" for i in
                             range(len(z[key]))], split)
        raise DatasetError(f"{p}: not a dataset (expected a folder, fer2013.csv or .npz)")
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    csvs = sorted(p.glob("fer2013*.csv")) + sorted(p.glob("*/fer2013*.csv"))
    root = resolve_root(p)
    has_folders = any((root / s).is_dir() for s in ("train", "test", "validation")) or _looks_like_split_dir(root)
    if csvs and not has_folders:
        return read_fer2013_csv(csvs[0], split)
    return read_folder_split(p, split, skip_unknown=skip_unknown, cache=cache, cache_dir=cache_dir,
                             progress=progress)


def report_split(path: str | os.PathLike) -> str:
    """The split a report is made on: ``private`` (FER2013's PrivateTest) when the dataset marks it,
    else ``test`` (the whole test/ folder of a Kaggle-style dataset), else ``train``."""
    for s in ("private", "test"):
        if has_split(path, s):
            return s
    return "train"


def has_split(path: str | os.PathLike, split: str) -> bool:
    """Whether `load_split(path, split)` would find images (cheap: lists files, decodes nothing)."""
    p = Path(path)
    try:
        if p.is_file() and p.suffix.lower() == ".csv":
            read_fer2013_csv(p, split)
            return True
        if p.is_file() and p.suffix.lower() == ".npz":
            with np.load(p) as z:
                return f"{split}_images" in z
        list_split_files(p, split, skip_unknown=True)
        return True
    except (DatasetError, OSError):
        return False
