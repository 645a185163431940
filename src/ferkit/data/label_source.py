"""What a model learns from: the one flag (``ferkit train --labels``) that picks training targets.

* ``fer2013``: the dataset's own labels (one-hot), every image;
* ``ferplus``: the FER+ vote distribution (:func:`ferkit.data.ferplus.vote_targets`);
* ``mix:W``: (1 - W) x one-hot original label + W x vote distribution;
* ``plausible:W``: the vote distribution, plus W on the original label wherever at least one of the ten
  workers gave that label (raw count >= 1, before the outlier rule), renormalised. A label the crowd finds
  plausible is kept (W = 1 trains such an image like ``mix:0.5``); a label no worker gave is replaced by the
  crowd's votes. It keeps clear expressions that the crowd only half-names while agreeing with the crowd
  where FER2013's label is plainly wrong (MODEL_CARD.md, "Models trained on the votes").

With votes in the source, images without a vote target (mostly unknown / not a face, no votes) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..emotions import EMOTIONS
from .ferplus import EMOTION_COLUMNS, ENV, Votes, VoteTargets, vote_targets
from .readers import DatasetError, Split


@dataclass(frozen=True)
class LabelSource:
    """``kind`` is fer2013, ferplus, mix or plausible; ``weight`` the W of mix / plausible (1 for ferplus)."""

    kind: str
    weight: float = 0.0

    @property
    def uses_votes(self) -> bool:
        return self.kind != "fer2013"

    def __str__(self) -> str:
        return f"{self.kind}:{self.weight:g}" if self.kind in ("mix", "plausible") else self.kind


LABEL_SOURCES = ("fer2013 | ferplus | mix:W (W in 0..1, the weight of the votes) | plausible:W (W in 0..10, the "
                 "weight added to an original label that at least one worker gave)")
_MAX_W = {"mix": 1.0, "plausible": 10.0}


def parse_label_source(text: str) -> LabelSource:
    t = str(text).strip().lower()
    if t in ("fer2013", "original", ""):
        return LabelSource("fer2013")
    if t in ("ferplus", "votes"):
        return LabelSource("ferplus", 1.0)
    kind, colon, w = t.partition(":")
    if colon and kind in _MAX_W:
        try:
            v = float(w)
        except ValueError:
            v = -1.0
        if 0.0 <= v <= _MAX_W[kind]:
            return LabelSource(kind, v)
    raise ValueError(f"labels {text!r}: choose {LABEL_SOURCES}")


def training_targets(split: Split, source: LabelSource, votes: Votes | None) -> tuple[np.ndarray, np.ndarray | None,
                                                                                        VoteTargets | None]:
    """(indices of the images to train on, their targets (K, 7) float32 or None for plain one-hot labels,
    the vote targets for reporting). With votes in the source, images without a vote target are left out."""
    if not source.uses_votes:
        return np.arange(len(split)), None, None
    if votes is None:
        raise DatasetError(f"labels {source}: no FER+ votes for this dataset (pass --votes FILE or set ${ENV})")
    vt = vote_targets(votes)
    idx = np.flatnonzero(vt.keep)
    labels = split.labels[idx]
    onehot = np.eye(len(EMOTIONS), dtype=np.float32)[labels]
    if source.kind == "plausible":
        given = votes.counts[idx][np.arange(len(idx)), EMOTION_COLUMNS[labels]] >= 1
        t = vt.probs[idx] + source.weight * onehot * given[:, None]
        return idx, (t / t.sum(1, keepdims=True)).astype(np.float32), vt
    return idx, ((1 - source.weight) * onehot + source.weight * vt.probs[idx]).astype(np.float32), vt
