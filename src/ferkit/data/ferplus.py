"""FER+ crowd votes (Barsoum et al. 2016: ten workers re-labelled every FER2013 image) as a label source.

Two inputs are read, each aligned with the images a :class:`~ferkit.data.readers.Split` holds, in its order:

* ``ferplus_votes.csv`` (``../shared/ferplus``): one row per file of a FER2013 folder copy (msambare layout),
  keyed by its path under that folder (``test/angry/PrivateTest_10131363.jpg``); a split folder given
  directly (``fer2013/test``) is matched by the end of the path, a copy with other emotion folder names
  (``anger/``) by the file name where only one file bears it (FER2013's names are unique but for two);
* FER+'s own ``fer2013new.csv`` beside ``fer2013.csv``: the same row order, matched row by row (the ``Usage``
  of each row is checked against the split, so a file of another order is refused, not misread).

Votes are kept in FER+'s column order (:data:`FERPLUS_COLUMNS`: neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown, NF). Two rules turn them into labels, both after the **outlier rule** (every
count <= 1 set to 0: a single worker's vote is dropped):

* **majority** (FER+'s test protocol, :func:`majority`): an image has a label only if one class holds more
  than half of the remaining votes, unknown and NF counting in the total; images whose label is unknown, NF
  (not a face) or contempt (ferkit has 7 classes) are removed. Drop reasons: :data:`MAJORITY_REASONS`.
* **vote targets** (training on the distribution, :func:`vote_targets`): the remaining votes of the 7 classes,
  normalised (contempt, unknown and NF votes dropped). Left out: images whose unknown + NF votes are more than
  half of the remaining votes ("mostly unknown/NF"), and images whose contempt + unknown + NF votes are more
  than half (the crowd mostly named none of the 7). Drop reasons: :data:`TARGET_REASONS`.

Images FER+ left without a name (its unmatched, not-a-face rows) and images absent from the votes file are
dropped by both rules. :mod:`ferkit.data.label_source` turns them into training targets (the one flag that
picks training labels). The votes are MIT-licensed
(Microsoft); keep ``LICENSE-FERPlus.md`` with any copy of them.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..emotions import EMOTIONS
from .readers import CSV_USAGE, DatasetError, Split

FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
CONTEMPT, UNKNOWN, NOT_FACE = 7, 8, 9
# FER+ column of each ferkit emotion, in EMOTIONS order (angry, disgust, fear, happy, neutral, sad, surprise)
_FERPLUS_NAME = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "neutral": "neutral",
                 "sad": "sadness", "surprise": "surprise"}
EMOTION_COLUMNS = np.array([FERPLUS_COLUMNS.index(_FERPLUS_NAME[e]) for e in EMOTIONS])
# ferkit index of each FER+ column (-1: contempt, unknown, NF)
COLUMN_EMOTION = np.full(len(FERPLUS_COLUMNS), -1)
COLUMN_EMOTION[EMOTION_COLUMNS] = np.arange(len(EMOTIONS))

MAJORITY_REASONS = {
    "no_votes": "not in the votes file",
    "no_name": "FER+ left it without a name (not a face)",
    "no_majority": "no class holds more than half of the votes (after dropping votes of 1)",
    "unknown": "majority label unknown",
    "not_face": "majority label NF (not a face)",
    "contempt": "majority label contempt (not one of ferkit's 7 classes)",
}
TARGET_REASONS = {
    "no_votes": MAJORITY_REASONS["no_votes"],
    "no_name": MAJORITY_REASONS["no_name"],
    "scattered": "every vote was a single worker's (all counts <= 1)",
    "mostly_unknown": "unknown + NF hold more than half of the votes (after dropping votes of 1)",
    "mostly_contempt": "contempt + unknown + NF hold more than half of the votes (after dropping votes of 1)",
}
VOTES_CSV = "ferplus_votes.csv"
FER2013NEW_CSV = "fer2013new.csv"
ENV = "FERKIT_FERPLUS"
log = logging.getLogger(__name__)


@dataclass
class Votes:
    """FER+ votes aligned with the images of a split: ``counts`` (N, 10) in :data:`FERPLUS_COLUMNS` order
    (zeros where absent) and ``status`` (N,): ``ok``, ``no_votes`` (not in the file) or ``no_name``."""

    counts: np.ndarray
    status: np.ndarray
    path: str

    def __len__(self) -> int:
        return len(self.counts)

    def subset(self, idx) -> Votes:
        idx = np.asarray(idx)
        return Votes(self.counts[idx], self.status[idx], self.path)


# --------------------------------------------------------------------------- reading


def _vote_row(row: dict, where: str) -> np.ndarray:
    try:
        v = np.array([int(row[c]) for c in FERPLUS_COLUMNS], np.int64)
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{where}: bad vote counts ({type(e).__name__}: {e})") from e
    if (v < 0).any():
        raise DatasetError(f"{where}: negative vote count")
    return v


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="") as f:
            return [c.strip() for c in next(csv.reader(f), [])]
    except OSError as e:
        raise DatasetError(f"{path}: cannot read votes ({e})") from e


def _missing_columns(path: Path, header: list[str], need: tuple[str, ...]) -> None:
    missing = [c for c in need if c not in header]
    if missing:
        raise DatasetError(f"{path}: not a FER+ votes file (missing column(s) {', '.join(missing)}; "
                           f"expected {VOTES_CSV} or {FER2013NEW_CSV})")


_TABLES: dict[tuple, tuple[dict, dict]] = {}


def read_votes_table(path: str | os.PathLike) -> tuple[dict[str, tuple[np.ndarray, str]], dict[str, list[str]]]:
    """``ferplus_votes.csv`` -> ({file: (votes, status)}, {basename: [files]}); read once per file version."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key in _TABLES:
        return _TABLES[key]
    _missing_columns(path, _header(path), ("file", "status", *FERPLUS_COLUMNS))
    table: dict[str, tuple[np.ndarray, str]] = {}
    by_name: dict[str, list[str]] = {}
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            row = {k.strip(): v for k, v in row.items() if k}
            name = (row.get("file") or "").strip().replace("\\", "/")
            status = (row.get("status") or "").strip()
            table[name] = (_vote_row(row, f"{path}:{line}"), "no_name" if status.startswith("unmatched") else "ok")
            by_name.setdefault(name.rsplit("/", 1)[-1], []).append(name)
    _TABLES.clear()  # one table at a time: it is the large one
    _TABLES[key] = (table, by_name)
    return table, by_name


def read_fer2013new(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """FER+'s ``fer2013new.csv`` -> (votes (R, 10), named (R,) bool, usage per row), in fer2013.csv row order."""
    path = Path(path)
    _missing_columns(path, _header(path), ("Usage", "Image name", *FERPLUS_COLUMNS))
    votes, named, usage = [], [], []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            row = {k.strip(): v for k, v in row.items() if k}
            votes.append(_vote_row(row, f"{path}:{line}"))
            named.append(bool((row.get("Image name") or "").strip()))
            usage.append((row.get("Usage") or "").strip())
    if not votes:
        raise DatasetError(f"{path}: no rows")
    return np.stack(votes), np.array(named), usage


def find_votes(data: str | os.PathLike, explicit: str | os.PathLike | None = None) -> Path | None:
    """The votes file for dataset ``data``: ``explicit`` if given, else ``$FERKIT_FERPLUS``, else
    ``fer2013new.csv`` beside a ``fer2013.csv``, else ``ferplus_votes.csv`` in the dataset folder, its
    parent, or a ``ferplus/`` folder beside it (the ``../shared`` layout). ``None`` when nothing is found;
    a path given explicitly (or by the variable) that does not exist is an error."""
    for given, what in ((explicit, "--votes"), (os.environ.get(ENV), f"${ENV}")):
        if given:
            p = Path(given)
            if p.is_dir():
                p = next((p / n for n in (VOTES_CSV, FER2013NEW_CSV) if (p / n).is_file()), p / VOTES_CSV)
            if not p.is_file():
                raise DatasetError(f"{p}: votes file not found ({what})")
            return p
    d = Path(data)
    if d.is_file():
        cand = [d.parent / FER2013NEW_CSV] if d.suffix.lower() == ".csv" else []
    else:
        cand = [d / FER2013NEW_CSV, d / VOTES_CSV] + [q / VOTES_CSV for q in (d.parent, d.parent / "ferplus",
                                                                              d.parent.parent / "ferplus")]
    return next((c for c in cand if c.is_file()), None)


def _csv_row(source: str) -> int | None:
    """Row index (0-based, data rows) of a ``fer2013.csv:<line>`` source, or None for a file source."""
    name, sep, line = source.rpartition(":")
    if sep and line.isdigit() and name.lower().endswith(".csv"):
        return int(line) - 2
    return None


def votes_for(split: Split, votes_path: str | os.PathLike) -> Votes:
    """Votes for every image of ``split``, in its order (see the module docstring for the two inputs)."""
    path = Path(votes_path)
    header = _header(path)
    if "Image name" in header:
        counts, status = _from_fer2013new(split, path)
    else:
        counts, status = _from_table(split, path)
    if len(split) and (status == "no_votes").all():
        first = split.sources[0]
        raise DatasetError(f"{path}: no votes for any of the {len(split)} images of split {split.name!r} "
                           f"(e.g. {first}); is it the votes file of this dataset?")
    return Votes(counts, status, str(path))


def _from_table(split: Split, path: Path) -> tuple[np.ndarray, np.ndarray]:
    table, by_name = read_votes_table(path)
    counts = np.zeros((len(split), len(FERPLUS_COLUMNS)), np.int64)
    status = np.full(len(split), "no_votes", dtype=object)
    for i, src in enumerate(split.sources):
        if _csv_row(src) is not None:
            raise DatasetError(f"{path}: keyed by file path; the images of {src.rpartition(':')[0]} need FER+'s "
                               f"{FER2013NEW_CSV} (--votes {FER2013NEW_CSV})")
        rel = src.replace("\\", "/")
        hit = table.get(rel)
        if hit is None:  # a split folder given directly, or other emotion folder names: the end of the path,
            same = by_name.get(rel.rsplit("/", 1)[-1], [])  # else the file name when only one file has it
            ends = [n for n in same if n.endswith("/" + rel)] or same
            hit = table[ends[0]] if len(ends) == 1 else None
        if hit is not None:
            counts[i], status[i] = hit
    return counts, status


def _from_fer2013new(split: Split, path: Path) -> tuple[np.ndarray, np.ndarray]:
    votes, named, usage = read_fer2013new(path)
    usages = CSV_USAGE.get(split.name)
    counts = np.zeros((len(split), len(FERPLUS_COLUMNS)), np.int64)
    status = np.full(len(split), "no_votes", dtype=object)
    for i, src in enumerate(split.sources):
        r = _csv_row(src)
        if r is None:
            raise DatasetError(f"{path}: FER+'s {FER2013NEW_CSV} is matched row by row with fer2013.csv; {src} is "
                               f"a file (use {VOTES_CSV}, keyed by file path)")
        if not 0 <= r < len(votes):
            raise DatasetError(f"{path}: has {len(votes)} rows, {src} is row {r + 1}: not the pair of this fer2013.csv")
        if usages and usage[r] not in usages:
            raise DatasetError(f"{path}: row {r + 2} is {usage[r]!r} but {src} is in split {split.name!r}: "
                               f"the two files are not in the same row order")
        counts[i], status[i] = votes[r], ("ok" if named[r] else "no_name")
    return counts, status


def load_votes(split: Split, data: str | os.PathLike, explicit: str | os.PathLike | None = None) -> Votes | None:
    """:func:`votes_for` with the file :func:`find_votes` picks: ``None`` when there is none or ``explicit`` is
    ``"none"``. A file given explicitly must fit the images (else an error); one that was only found (by
    ``$FERKIT_FERPLUS`` or beside the dataset) and fits none of them is passed over with a warning."""
    if explicit is not None and str(explicit).strip().lower() == "none":
        return None
    path = find_votes(data, explicit or None)
    if path is None:
        return None
    try:
        return votes_for(split, path)
    except DatasetError as e:
        if explicit:
            raise
        log.warning("FER+ votes not used: %s", e)
        return None


# --------------------------------------------------------------------------- the rules


def drop_outliers(counts: np.ndarray) -> np.ndarray:
    """The outlier rule: every count <= 1 (one worker's vote) set to 0."""
    c = np.asarray(counts, np.int64).copy()
    c[c <= 1] = 0
    return c


def majority_of(counts: np.ndarray) -> np.ndarray:
    """FER+ majority column (0..9) of each row of raw counts after the outlier rule; -1 where no class holds
    more than half of the remaining votes (unknown and NF in the total)."""
    c = drop_outliers(counts)
    top = c.argmax(1)
    ok = 2 * c.max(1) > c.sum(1)
    return np.where(ok, top, -1)


@dataclass
class Majority:
    """The majority protocol on a split: ``labels`` (N,) in EMOTIONS order (-1: dropped), ``reasons`` (N,)
    ('' where kept, else a key of :data:`MAJORITY_REASONS`)."""

    labels: np.ndarray
    reasons: np.ndarray

    @property
    def keep(self) -> np.ndarray:
        return self.labels >= 0

    def dropped(self) -> dict[str, int]:
        return {r: int((self.reasons == r).sum()) for r in MAJORITY_REASONS}

    def summary(self) -> dict:
        return {"images": len(self.labels), "kept": int(self.keep.sum()), "dropped": self.dropped()}


def majority(votes: Votes) -> Majority:
    """FER+'s test protocol, restricted to ferkit's 7 classes (module docstring)."""
    col = majority_of(votes.counts)
    labels = np.where(col >= 0, COLUMN_EMOTION[np.maximum(col, 0)], -1)
    reasons = np.full(len(col), "", dtype=object)
    reasons[col == CONTEMPT] = "contempt"
    reasons[col == NOT_FACE] = "not_face"
    reasons[col == UNKNOWN] = "unknown"
    reasons[col < 0] = "no_majority"
    for s in ("no_name", "no_votes"):
        reasons[votes.status == s] = s
    labels[reasons != ""] = -1
    return Majority(labels.astype(np.int64), reasons)


@dataclass
class VoteTargets:
    """``probs`` (N, 7) float32 in EMOTIONS order (zeros where dropped) and ``reasons`` (N,) ('' where kept,
    else a key of :data:`TARGET_REASONS`)."""

    probs: np.ndarray
    reasons: np.ndarray

    @property
    def keep(self) -> np.ndarray:
        return self.reasons == ""

    def dropped(self) -> dict[str, int]:
        return {r: int((self.reasons == r).sum()) for r in TARGET_REASONS}

    def summary(self) -> dict:
        return {"images": len(self.reasons), "kept": int(self.keep.sum()), "dropped": self.dropped()}


def vote_targets(votes: Votes) -> VoteTargets:
    """The vote distribution over the 7 classes after the outlier rule (module docstring)."""
    c = drop_outliers(votes.counts)
    total = c.sum(1)
    seven = c[:, EMOTION_COLUMNS]
    unknown = c[:, UNKNOWN] + c[:, NOT_FACE]
    reasons = np.full(len(c), "", dtype=object)
    reasons[2 * (unknown + c[:, CONTEMPT]) > total] = "mostly_contempt"
    reasons[2 * unknown > total] = "mostly_unknown"
    reasons[total == 0] = "scattered"
    for s in ("no_name", "no_votes"):
        reasons[votes.status == s] = s
    keep = reasons == ""
    probs = np.zeros(seven.shape, np.float32)
    probs[keep] = seven[keep] / seven[keep].sum(1, keepdims=True)
    return VoteTargets(probs, reasons)


def original_agreement(labels: np.ndarray, maj: Majority) -> float:
    """How often the dataset's own label equals the FER+ majority, on the images the protocol keeps."""
    k = maj.keep
    return float((np.asarray(labels)[k] == maj.labels[k]).mean()) if k.any() else float("nan")
