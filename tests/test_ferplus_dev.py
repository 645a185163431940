"""The issue-22 screen (scripts/ferplus_screen.py, behind `screen.py table/search`) on hand-made rows: the
class-prior grid and the clear-by-both recall that round 3 of the selection rule gates on; and the check that
the cached photo crops are the ones ferkit cuts today (round 4), on real photos."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest
from conftest import REPO

from ferkit.emotions import EMOTIONS

sys.path.insert(0, str(REPO / "scripts"))
import ferplus_screen as screen  # noqa: E402

A, H, N, S = (EMOTIONS.index(e) for e in ("angry", "happy", "neutral", "sad"))


def _votes(col: str) -> list[int]:
    """Ten FER+ votes all on one column (FER+'s column order)."""
    v = [0] * 10
    v[screen.FERPLUS.index(col)] = 10
    return v


def test_prior_grid_is_every_combination_and_leaves_zero_offsets_out():
    grid = screen.prior_grid([0.0, -0.5], ["angry=0,0.25", "sad=0.5"])
    assert grid == [{"sad": 0.5}, {"angry": 0.25, "sad": 0.5}, {"neutral": -0.5, "sad": 0.5},
                    {"neutral": -0.5, "angry": 0.25, "sad": 0.5}]
    assert screen.prior_grid([0.0], []) == [{}]
    for bad in ("anger=0.5", "angry", "angry="):
        with pytest.raises(SystemExit, match="--prior"):
            screen.prior_grid([0.0], [bad])


def test_clear_by_both_recall_counts_only_images_where_the_label_is_the_crowds_majority():
    # PublicTest rows: (FER2013 label, crowd votes, prediction). Clear by both: rows 0, 1, 3, 4 (label = majority).
    rows = [(A, "anger", A), (A, "anger", N), (A, "neutral", N), (S, "sadness", S), (H, "happiness", H),
            (S, "happiness", S)]
    y = np.array([r[0] for r in rows])
    pred = np.array([r[2] for r in rows])
    probs = np.eye(len(EMOTIONS))[pred] * 0.9 + 0.1 / len(EMOTIONS)
    dev = {"pub_y": y, "pub_votes": np.array([_votes(r[1]) for r in rows]),
           "photo_y": np.array([A, H]), "photo_x": np.zeros((2, 48, 48))}
    r = screen.scores(probs, np.eye(len(EMOTIONS))[[A, N]], dev)
    assert r["clear_n"]["angry"] == 2 and r["clear_n"]["sad"] == 1 and r["clear_n"]["happy"] == 1
    assert r["clear_recall"]["angry"] == 0.5 and r["clear_recall"]["sad"] == 1.0  # row 5 (crowd: happy) not counted
    assert r["ferplus_public"] == pytest.approx(4 / 6)  # right: rows 0, 2 (crowd neutral), 3, 4; wrong: 1, 5
    assert r["photo_recall"] == {"angry": 1.0, "happy": 0.0}
    big = {**r, "clear_n": {e: (150 if e in ("angry", "neutral") else 20) for e in EMOTIONS}}
    assert screen.clear_gated(big) == ["angry"]  # enough images, neutral excepted


PHOTOS = REPO.parent / "shared" / "webphotos-dev"


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="needs ../shared/webphotos-dev")
def test_stale_cached_crops_are_caught_before_a_screen(tmp_path):
    from ferkit.images import read_image
    from ferkit.recognizer import Recognizer

    files = sorted((PHOTOS / "happy").iterdir())[:3]
    rec = Recognizer(model="fast", detector="centerface")
    x = np.stack([screen.largest_face_crop(rec, read_image(str(f))) for f in files])
    dev = {"photo_files": np.array([str(f) for f in files]), "photo_y": np.full(3, H), "photo_x": x}
    assert screen.stale_crops(dev) == 0
    x2 = x.copy()
    x2[1, 10:20, 10:20] ^= 0xFF  # one crop cut differently (as round 1's cache was, by older crop code)
    assert screen.stale_crops({**dev, "photo_x": x2}) == 1
    assert screen.stale_crops({**dev, "photo_y": np.array([H, -1 - H, H])}) == 1  # "no face" that has one
    with pytest.raises(SystemExit, match="prepare"):
        screen.check_fresh({**dev, "photo_x": x2}, argparse.Namespace(allow_stale_crops=False, dev="dev.npz"))


def _row(file: str, ferplus: float, e2e: float = 0.86, sad: float = 0.75, fps: float = 200.0) -> dict:
    return {"name": file, "file": file, "e2e": e2e, "faces_per_s": fps, "ferplus_public": ferplus,
            "recall": {"angry": 0.8, "happy": 0.99, "neutral": 0.9, "sad": sad},
            "clear_recall": {"angry": 0.9, "sad": 0.8}, "clear_n": {"angry": 200, "sad": 150}}


def test_the_rule_on_measured_rows_gates_then_keeps_the_incumbent_under_the_margin():
    from ferplus_select import decide

    def shipped(rows):
        return [r["file"] for r in rows if r.get("shipped")]

    base = _row("v1", 0.713, e2e=0.85)
    # gates: e2e under the baseline's, sad recall 5.5 points under, speed under the floor: none ships, v1 stays
    rows = [dict(base), _row("low-e2e", 0.83, e2e=0.84), _row("low-sad", 0.83, sad=0.695), _row("slow", 0.83, fps=60)]
    decide(rows, "default")
    assert shipped(rows) == ["v1"]
    assert [r["passes"][:3] for r in rows[1:]] == ["no:"] * 3 and "sad recall -5.5" in rows[2]["passes"]
    # without an incumbent the best FER+ PublicTest wins; within 0.1 point the better e2e
    rows = [dict(base), _row("a", 0.8239), _row("b", 0.8245, e2e=0.855), _row("c", 0.8240, e2e=0.87)]
    decide(rows, "default")
    assert shipped(rows) == ["c"]
    # the incumbent stays unless a challenger beats it by the margin (0.25 points)
    rows = [dict(base), _row("today", 0.8239), _row("new", 0.8260)]
    decide(rows, "default", incumbent="today", margin=0.25)
    assert shipped(rows) == ["today"] and "+0.21 points" in rows[2]["note"]
    rows = [dict(base), _row("today", 0.8239), _row("new", 0.8265)]
    decide(rows, "default", incumbent="today", margin=0.25)
    assert shipped(rows) == ["new"]
    # an incumbent that fails a gate is not kept
    rows = [dict(base), _row("today", 0.8239, sad=0.6), _row("new", 0.8240)]
    decide(rows, "default", incumbent="today", margin=0.25)
    assert shipped(rows) == ["new"]
    # clear-by-both gate: only with clear_gate, only on classes with >= 100 clear images
    rows = [dict(base), _row("new", 0.83)]
    rows[1]["clear_recall"] = {"angry": 0.84, "sad": 0.8}
    decide(rows, "default")
    assert shipped(rows) == ["new"]
    decide(rows, "default", clear_gate=True)
    assert shipped(rows) == ["v1"] and "clear-by-both angry recall -6.0" in rows[1]["passes"]
