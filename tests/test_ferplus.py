"""FER+ votes: both readers on real rows, the protocols on hand-checked rows, the crowd metrics."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from ferkit.data import DatasetError, load_split
from ferkit.data.ferplus import (
    ENV,
    FERPLUS_COLUMNS,
    Votes,
    find_votes,
    majority,
    original_agreement,
    read_votes_table,
    vote_targets,
    votes_for,
)
from ferkit.data.label_source import LabelSource, parse_label_source, training_targets
from ferkit.data.readers import Split, decode_file
from ferkit.emotions import EMOTIONS, FER2013_CSV_ORDER, INDEX
from ferkit.metrics_crowd import crowd_report, format_crowd_report, human_agreement, vote_cross_entropy

VOTES = REPO.parent / "shared" / "ferplus" / "ferplus_votes.csv"

# real rows of ferplus_votes.csv, copied by hand, with what each rule must make of them (worked out by hand:
# "after" = the counts once votes of 1 are dropped)
HAND = {
    # 5 neutral, 3 sad, 1 angry, 1 disgust; after: 5 of 8 -> neutral (without the outlier rule: 5 of 10, none)
    "test/angry/PrivateTest_11296953.jpg": ([5, 0, 0, 3, 1, 1, 0, 0, 0, 0], "neutral", {"neutral": 5, "sad": 3}),
    # after: neutral 2, surprise 2, angry 4 of 8: exactly half is not a majority
    "test/angry/PrivateTest_10131363.jpg": ([2, 1, 2, 0, 4, 0, 0, 0, 1, 0], "no_majority",
                                            {"neutral": 2, "surprise": 2, "angry": 4}),
    # after: angry 2, disgust 3, unknown 2 = 7: 3 is not > 3.5 (unknown counts in the total); target without it
    "test/angry/PrivateTest_14494003.jpg": ([1, 0, 0, 1, 2, 3, 1, 0, 2, 0], "no_majority",
                                            {"angry": 2, "disgust": 3}),
    # after: neutral 3, unknown 6 of 9 -> majority unknown; mostly unknown
    "test/angry/PrivateTest_71268050.jpg": ([3, 0, 0, 1, 0, 0, 0, 0, 6, 0], "unknown", "mostly_unknown"),
    # after: angry 3, contempt 4 of 7 -> contempt; contempt holds more than half
    "test/angry/PrivateTest_1623042.jpg": ([1, 0, 0, 1, 3, 0, 0, 4, 1, 0], "contempt", "mostly_contempt"),
    # 10 NF on a named row -> not a face
    "test/neutral/PrivateTest_15353271.jpg": ([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], "not_face", "mostly_unknown"),
    # FER+ left it without a name (status unmatched_mostly_nf)
    "test/angry/PrivateTest_26784100.jpg": ([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], "no_name", "no_name"),
    # neutral 3, disgust 2, unknown 5: no majority; unknown exactly half is not "mostly" -> target kept
    "test/angry/PrivateTest_36424712.jpg": ([3, 0, 0, 0, 0, 2, 0, 0, 5, 0], "no_majority",
                                            {"neutral": 3, "disgust": 2}),
    # after: contempt 8 -> contempt; no vote left for the 7 classes
    "test/disgust/PrivateTest_84635755.jpg": ([0, 0, 0, 0, 1, 1, 0, 8, 0, 0], "contempt", "mostly_contempt"),
}


@pytest.fixture(scope="module")
def votes_csv() -> Path:
    if not VOTES.is_file():
        pytest.fail(f"FER+ votes not found at {VOTES}; the tests use the real votes")
    return VOTES


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)


@pytest.fixture(scope="module")
def private(fer_root):
    return load_split(fer_root, "private")


def test_private_test_protocol_counts(private, votes_csv, fer_root):
    votes = votes_for(private, find_votes(fer_root))  # found beside the dataset: ../shared/ferplus
    assert Path(votes.path).resolve() == votes_csv.resolve()
    assert (votes.status != "no_votes").all()
    maj = majority(votes)
    assert (len(maj.labels), int(maj.keep.sum())) == (3589, 3136)  # the README's figures
    assert round(original_agreement(private.labels, maj), 3) == 0.674
    dropped = maj.dropped()
    assert sum(dropped.values()) == 3589 - 3136 and dropped["no_votes"] == 0
    # the original labels as a one-hot "model": its majority accuracy is that agreement, from the metrics side
    rep = crowd_report(np.eye(7, dtype=np.float32)[private.labels], votes, private.labels)
    assert rep["majority"]["accuracy"] == pytest.approx(rep["original_label_agreement"])
    assert rep["majority"]["n"] == rep["majority"]["kept"] == 3136
    assert "3136 of 3589" in format_crowd_report(rep)


def test_hand_checked_rows(private, votes_csv):
    idx = [private.sources.index(f) for f in HAND]
    votes = votes_for(private.subset(idx), votes_csv)
    assert votes.counts.tolist() == [row[0] for row in HAND.values()]
    maj, vt = majority(votes), vote_targets(votes)
    for i, (_counts, want_major, want_target) in enumerate(HAND.values()):
        got = EMOTIONS[maj.labels[i]] if maj.labels[i] >= 0 else maj.reasons[i]
        assert got == want_major
        if isinstance(want_target, str):
            assert vt.reasons[i] == want_target and not vt.probs[i].any()
        else:
            total = sum(want_target.values())
            want = np.array([want_target.get(e, 0) / total for e in EMOTIONS])
            assert vt.reasons[i] == "" and np.allclose(vt.probs[i], want)


def test_folder_variants_match_by_path_end_and_name(kaggle_copy, tmp_path, votes_csv, fer_root):
    table, _ = read_votes_table(votes_csv)
    for aliases in (False, True):  # emotion folders as in FER2013, then renamed (anger/, happiness/, ...)
        root = kaggle_copy(tmp_path / f"copy-{aliases}", aliases=aliases)
        for data in (root, root / "test"):  # the dataset root, and a split folder given directly
            ds = load_split(data, "public" if data == root else "all", cache=False)
            votes = votes_for(ds, votes_csv)
            assert (votes.status == "ok").all()
            want = [table[_msambare(s)][0] for s in ds.sources]
            assert np.array_equal(votes.counts, np.stack(want))
    ds = load_split(kaggle_copy(tmp_path / "x"), "train", cache=False)
    other = ds.subset([0])
    other.sources = ["angry/not_in_fer2013.jpg"]
    with pytest.raises(DatasetError, match="no votes for any"):
        votes_for(other, votes_csv)


def _msambare(source: str) -> str:
    """'test/anger/PublicTest_1.jpg' or 'anger/PublicTest_1.jpg' -> 'test/angry/PublicTest_1.jpg'."""
    folder, name = source.split("/")[-2:]
    alias = {"anger": "angry", "happiness": "happy", "sadness": "sad", "surprised": "surprise"}
    return f"{'train' if name.startswith('Training_') else 'test'}/{alias.get(folder, folder)}/{name}"


def _write_pair(folder: Path, rows: list[dict], fer_root: Path, votes_csv: Path) -> tuple[Path, Path]:
    """A fer2013.csv + FER+ fer2013new.csv pair holding ``rows`` of ferplus_votes.csv, in that order."""
    csv_order = {e: i for i, e in enumerate(FER2013_CSV_ORDER)}
    folder.mkdir(parents=True, exist_ok=True)
    old, new = folder / "fer2013.csv", folder / "fer2013new.csv"
    with open(old, "w", newline="") as f1, open(new, "w", newline="") as f2:
        w1, w2 = csv.writer(f1), csv.writer(f2)
        w1.writerow(["emotion", "pixels", "Usage"])
        w2.writerow(["Usage", "Image name", *FERPLUS_COLUMNS])
        for i, r in enumerate(rows):
            px = decode_file(fer_root / r["file"])
            w1.writerow([csv_order[r["msambare_label"]], " ".join(map(str, px.ravel())), r["usage"]])
            name = "" if r["status"].startswith("unmatched") else f"fer{i:07d}.png"
            w2.writerow([r["usage"], name, *(r[c] for c in FERPLUS_COLUMNS)])
    return old, new


@pytest.fixture(scope="module")
def pair_rows(votes_csv):
    with open(votes_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(0)
    pick = [r for r in rows if r["file"] in HAND]
    pick += [rows[i] for i in rng.choice(len(rows), 40, replace=False)]
    pick += [r for r in rows if r["status"] == "dup_same_votes"][:2]
    return [pick[i] for i in rng.permutation(len(pick))]  # interleaved usages: rows matched by position


def test_fer2013new_pair(tmp_path, pair_rows, fer_root, votes_csv):
    old, new = _write_pair(tmp_path / "ferplus", pair_rows, fer_root, votes_csv)
    assert find_votes(old) == new  # found beside fer2013.csv
    for split, usage in (("train", ("Training",)), ("private", ("PrivateTest",)), ("test", ("PublicTest",
                                                                                             "PrivateTest"))):
        ds = load_split(old, split)
        rows = [r for r in pair_rows if r["usage"] in usage]
        votes = votes_for(ds, new)
        assert votes.counts.tolist() == [[int(r[c]) for c in FERPLUS_COLUMNS] for r in rows]
        assert list(votes.status) == ["no_name" if r["status"].startswith("unmatched") else "ok" for r in rows]
        # the same images read from the folder with ferplus_votes.csv: the same labels under both rules
        folder = Split(np.stack([decode_file(fer_root / r["file"]) for r in rows]),
                       np.array([INDEX[r["msambare_label"]] for r in rows]), [r["file"] for r in rows], split)
        assert np.array_equal(ds.images, folder.images) and np.array_equal(ds.labels, folder.labels)
        folder_votes = votes_for(folder, votes_csv)
        assert np.array_equal(majority(votes).labels, majority(folder_votes).labels)
        assert np.array_equal(vote_targets(votes).probs, vote_targets(folder_votes).probs)
    assert "no_name" in {("no_name" if r["status"].startswith("unmatched") else "") for r in pair_rows}


def test_fer2013new_misaligned_or_wrong_file(tmp_path, pair_rows, fer_root, votes_csv):
    old, new = _write_pair(tmp_path / "p", pair_rows, fer_root, votes_csv)
    lines = new.read_text().splitlines(keepends=True)
    short = tmp_path / "short.csv"
    short.write_text("".join(lines[:-3]))
    ds = load_split(old, "all")
    with pytest.raises(DatasetError, match="not the pair of this fer2013.csv"):
        votes_for(ds, short)
    other = tmp_path / "other-order.csv"  # the same rows in another order (Training first, as FER+ has them)
    body = sorted(lines[1:], key=lambda ln: ("Training", "PublicTest", "PrivateTest").index(ln.split(",")[0]))
    first_test = next(i for i, ln in enumerate(lines[1:]) if not ln.startswith("Training"))
    assert body[first_test].startswith("Training")  # so the first test image meets a Training row there
    other.write_text("".join(lines[:1] + body))
    with pytest.raises(DatasetError, match="not in the same row order"):
        votes_for(load_split(old, "test"), other)
    with pytest.raises(DatasetError, match="need FER\\+'s fer2013new.csv"):
        votes_for(ds, votes_csv)
    folder = load_split(fer_root, "private").subset([0])
    with pytest.raises(DatasetError, match="matched row by row"):
        votes_for(folder, new)
    with pytest.raises(DatasetError, match="not a FER\\+ votes file"):
        votes_for(ds, old)


def test_find_votes_explicit_and_env(tmp_path, monkeypatch, votes_csv, fer_root):
    with pytest.raises(DatasetError, match="votes file not found"):
        find_votes(fer_root, tmp_path / "nope.csv")
    monkeypatch.setenv(ENV, str(votes_csv.parent))  # a folder holding the file is fine
    assert find_votes(tmp_path) == votes_csv.parent / "ferplus_votes.csv"
    monkeypatch.delenv(ENV)
    assert find_votes(tmp_path) is None


def test_label_sources_and_training_targets(private, votes_csv):
    assert parse_label_source("fer2013") == LabelSource("fer2013")
    assert parse_label_source("FERPlus") == LabelSource("ferplus", 1.0)
    assert parse_label_source("mix:0.25") == LabelSource("mix", 0.25) and str(LabelSource("mix", 0.25)) == "mix:0.25"
    for bad in ("mix:1.5", "mix:", "votes:0.5", "soft"):
        with pytest.raises(ValueError, match="fer2013 \\| ferplus \\| mix:W"):
            parse_label_source(bad)
    votes = votes_for(private, votes_csv)
    idx, t, _ = training_targets(private, LabelSource("fer2013"), None)
    assert t is None and len(idx) == len(private)
    idx, t, vt = training_targets(private, LabelSource("mix", 0.5), votes)
    assert len(idx) == int(vt.keep.sum()) == len(private) - sum(vt.dropped().values())
    assert np.allclose(t.sum(1), 1) and np.allclose(t, 0.5 * np.eye(7)[private.labels[idx]] + 0.5 * vt.probs[idx])
    with pytest.raises(DatasetError, match="--votes"):
        training_targets(private, LabelSource("ferplus", 1.0), None)


def test_plausible_targets_on_hand_checked_rows():
    """plausible:W adds W to the original label only where a worker gave it (a raw vote of 1 counts, though the
    outlier rule drops it from the distribution); where none did, the votes alone are the target."""
    assert parse_label_source("plausible:1") == LabelSource("plausible", 1.0)
    assert str(parse_label_source("Plausible:2.5")) == "plausible:2.5"
    for bad in ("plausible:-1", "plausible:11", "plausible:x"):
        with pytest.raises(ValueError, match="plausible:W"):
            parse_label_source(bad)
    n = INDEX
    # columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
    counts = np.array([[6, 0, 0, 0, 4, 0, 0, 0, 0, 0],   # angry image: 4 workers said anger -> kept, boosted
                       [7, 0, 3, 0, 0, 0, 0, 0, 0, 0],   # fear image: no worker said fear -> votes alone
                       [8, 0, 0, 1, 0, 0, 0, 0, 1, 0],   # sad image: one worker said sadness -> plausible
                       [0, 0, 0, 0, 0, 0, 0, 0, 9, 1]])  # mostly unknown -> left out
    labels = np.array([n["angry"], n["fear"], n["sad"], n["happy"]])
    split = Split(np.zeros((4, 48, 48), np.uint8), labels, ["a", "b", "c", "d"], "train")
    votes = Votes(counts, np.array(["ok"] * 4), "hand")
    idx, t, _ = training_targets(split, LabelSource("plausible", 1.0), votes)
    assert list(idx) == [0, 1, 2]
    want = np.zeros((3, 7))
    want[0, [n["neutral"], n["angry"]]] = [0.6 / 2, (0.4 + 1) / 2]
    want[1, [n["neutral"], n["surprise"]]] = [0.7, 0.3]
    want[2, [n["neutral"], n["sad"]]] = [1 / 2, 1 / 2]  # sadness's single vote is dropped, then W = 1 added
    assert np.allclose(t, want)
    _, t0, _ = training_targets(split, LabelSource("plausible", 0.0), votes)
    _, tv, _ = training_targets(split, LabelSource("ferplus", 1.0), votes)
    assert np.allclose(t0, tv)  # W = 0: the votes


def test_human_agreement_hand_rows():
    rows = np.array([[5, 0, 0, 3, 1, 1, 0, 0, 0, 0],   # neutral x5 agree; sad x3, angry, disgust: others say neutral
                     [2, 1, 2, 0, 4, 0, 0, 0, 1, 0],   # neutral x2, surprise x2: others say angry; the rest: none
                     [0, 0, 0, 0, 10, 0, 0, 0, 0, 0]])  # all ten agree
    h = human_agreement(rows, pred=np.array([INDEX["neutral"], INDEX["angry"], INDEX["sad"]]))
    assert (h["pairs"], h["images"], h["workers_seen"]) == (24, 3, 30)
    assert h["value"] == pytest.approx(15 / 24)
    assert h["model_value"] == pytest.approx((10 + 4 + 0) / 24)


def test_vote_cross_entropy_floor():
    t = np.array([[0.5, 0, 0, 0, 0.5, 0, 0], [0, 0, 0, 1, 0, 0, 0]])
    same = vote_cross_entropy(t, t)
    assert same["kl"] == pytest.approx(0, abs=1e-9) and same["value"] == pytest.approx(np.log(2) / 2)
    worse = vote_cross_entropy(np.full((2, 7), 1 / 7), t)
    assert worse["value"] == pytest.approx(np.log(7)) and worse["kl"] > 0


def test_human_reference_on_private(private, votes_csv):
    votes = votes_for(private, votes_csv)
    maj = majority(votes)
    h = human_agreement(votes.counts[maj.keep])
    # every kept image has a worker whose nine others still agree; a worker is never more often right than
    # the majority they belong to
    assert h["images"] == int(maj.keep.sum()) and 0.5 < h["value"] < 1
    assert h["pairs"] <= int(votes.counts[maj.keep].sum())
