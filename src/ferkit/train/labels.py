"""The label source of a training run, ``--labels fer2013|ferplus|mix:W|plausible:W`` (rules:
:mod:`ferkit.data.ferplus`, :mod:`ferkit.data.label_source`).

* ``fer2013``: the dataset's own labels, one-hot (what ferkit always did); selection on them.
* ``ferplus``: the FER+ vote distribution of each image (votes of 1 dropped, contempt/unknown/NF votes
  dropped); ``mix:W``: (1 - W) x one-hot dataset label + W x that distribution; ``plausible:W``: that
  distribution plus W on the dataset label wherever a worker also gave it, renormalised. Images without a
  vote target (mostly unknown/NF, mostly contempt, unnamed by FER+, absent from the votes file) are left out
  of training. ``best.pt`` is then selected on the FER+ majority labels of the selection split (the images the majority
  protocol keeps), the labels the model is meant to agree with.

The targets go through the same soft-target path as ``--soft-labels``/``--kd-alpha``: a teacher, when given,
is mixed into them as it is into the one-hot labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.ferplus import find_votes, majority, votes_for
from ..data.label_source import parse_label_source, training_targets
from ..data.readers import DatasetError, Split
from .config import TrainConfig


@dataclass
class LabelledData:
    train: Split  # the images trained on; labels = each target's top class (train accuracy, class weights)
    targets: np.ndarray | None  # (N, 7) float32, None: one-hot labels
    val: Split  # the selection images with the labels best.pt is chosen on
    val_labels: str  # "fer2013" or "ferplus-majority"
    votes: str = ""  # the votes file used


def _drops(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {r}" for r, n in counts.items() if n) or "none"


def apply_label_source(cfg: TrainConfig, train: Split, val: Split, log) -> LabelledData:
    """Training images, their targets and the selection labels for ``cfg.labels`` (module docstring)."""
    source = parse_label_source(cfg.labels)
    if not source.uses_votes:
        return LabelledData(train, None, val, "fer2013")
    path = find_votes(cfg.data, cfg.votes or None)
    if path is None:
        raise DatasetError(f"--labels {source}: no FER+ votes found for {cfg.data} (pass --votes FILE: "
                           "ferplus_votes.csv or FER+'s fer2013new.csv, or set $FERKIT_FERPLUS)")
    idx, targets, vt = training_targets(train, source, votes_for(train, path))
    if not len(idx):
        raise DatasetError(f"{path}: no training image has a vote target (dropped: {_drops(vt.dropped())})")
    log(f"labels {source} ({path}): training on {len(idx)} of {len(train)} images; left out: "
        f"{_drops(vt.dropped())}")
    train = train.subset(idx)
    train.labels = targets.argmax(1).astype(np.int64)
    maj = majority(votes_for(val, path))
    keep = np.flatnonzero(maj.keep)
    if not len(keep):
        raise DatasetError(f"{path}: no selection image has a FER+ majority label "
                           f"(dropped: {_drops(maj.dropped())})")
    log(f"selecting best.pt on FER+ majority labels: {len(keep)} of {len(val)} {val.name} images "
        f"(dropped: {_drops(maj.dropped())})")
    sel = val.subset(keep)
    sel.labels = maj.labels[keep]
    return LabelledData(train, targets, sel, "ferplus-majority", str(path))
