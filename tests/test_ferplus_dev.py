"""The issue-22 screen (scripts/ferplus_dev.py) on hand-made rows: the class-prior grid and the clear-by-both
recall that round 3 of the selection rule gates on."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import REPO

from ferkit.emotions import EMOTIONS

sys.path.insert(0, str(REPO / "scripts"))
import ferplus_dev  # noqa: E402

A, H, N, S = (EMOTIONS.index(e) for e in ("angry", "happy", "neutral", "sad"))


def _votes(col: str) -> list[int]:
    """Ten FER+ votes all on one column (FER+'s column order)."""
    v = [0] * 10
    v[ferplus_dev.FERPLUS.index(col)] = 10
    return v


def test_prior_grid_is_every_combination_and_leaves_zero_offsets_out():
    grid = ferplus_dev.prior_grid([0.0, -0.5], ["angry=0,0.25", "sad=0.5"])
    assert grid == [{"sad": 0.5}, {"angry": 0.25, "sad": 0.5}, {"neutral": -0.5, "sad": 0.5},
                    {"neutral": -0.5, "angry": 0.25, "sad": 0.5}]
    assert ferplus_dev.prior_grid([0.0], []) == [{}]
    for bad in ("anger=0.5", "angry", "angry="):
        with pytest.raises(SystemExit, match="--prior"):
            ferplus_dev.prior_grid([0.0], [bad])


def test_clear_by_both_recall_counts_only_images_where_the_label_is_the_crowds_majority():
    # PublicTest rows: (FER2013 label, crowd votes, prediction). Clear by both: rows 0, 1, 3, 4 (label = majority).
    rows = [(A, "anger", A), (A, "anger", N), (A, "neutral", N), (S, "sadness", S), (H, "happiness", H),
            (S, "happiness", S)]
    y = np.array([r[0] for r in rows])
    pred = np.array([r[2] for r in rows])
    probs = np.eye(len(EMOTIONS))[pred] * 0.9 + 0.1 / len(EMOTIONS)
    dev = {"pub_y": y, "pub_votes": np.array([_votes(r[1]) for r in rows]),
           "photo_y": np.array([A, H]), "photo_x": np.zeros((2, 48, 48))}
    r = ferplus_dev.scores(probs, np.eye(len(EMOTIONS))[[A, N]], dev)
    assert r["clear_n"]["angry"] == 2 and r["clear_n"]["sad"] == 1 and r["clear_n"]["happy"] == 1
    assert r["clear_recall"]["angry"] == 0.5 and r["clear_recall"]["sad"] == 1.0  # row 5 (crowd: happy) not counted
    assert r["ferplus_public"] == pytest.approx(4 / 6)  # right: rows 0, 2 (crowd neutral), 3, 4; wrong: 1, 5
    assert r["photo_recall"] == {"angry": 1.0, "happy": 0.0}
    big = {**r, "clear_n": {e: (150 if e in ("angry", "neutral") else 20) for e in EMOTIONS}}
    assert ferplus_dev.clear_gated(big) == ["angry"]  # enough images, neutral excepted
