from __future__ import annotations

import csv
import os
import time

import numpy as np
import pytest
from PIL import Image

from ferkit.data import DatasetError, load_split
from ferkit.data.audit import audit, leaked_mask
from ferkit.data.readers import decode_file, list_split_files
from ferkit.emotions import EMOTIONS, FER2013_CSV_ORDER, INDEX, canonical, label_index


def test_aliases_map_to_canonical():
    assert canonical("Anger") == "angry"
    assert canonical("happiness") == "happy"
    assert canonical("sadness") == "sad"
    assert canonical("surprised") == "surprise"
    assert canonical("3_happy") == "happy"
    assert canonical("contempt") is None
    with pytest.raises(ValueError, match="valid names"):
        label_index("contempt")
    assert list(EMOTIONS) == sorted(EMOTIONS)


def test_kaggle_layout_with_aliases_and_prefix_splits(tmp_path, kaggle_copy):
    root = kaggle_copy(tmp_path / "ds")
    train = load_split(root, "train")
    assert train.images.shape == (21, 48, 48) and train.images.dtype == np.uint8
    assert train.counts() == {e: 3 for e in EMOTIONS}
    # folder "anger" holds angry images
    angry = [s for s, lab in zip(train.sources, train.labels) if lab == INDEX["angry"]]
    assert all(s.startswith(os.path.join("train", "anger")) for s in angry)
    pub, pri, test = load_split(root, "public"), load_split(root, "private"), load_split(root, "test")
    assert len(pub) == len(pri) == 14 and len(test) == 28
    assert all("PublicTest_" in s for s in pub.sources)
    assert all("PrivateTest_" in s for s in pri.sources)


def test_images_folder_and_validation_synonym(tmp_path, kaggle_copy):
    kaggle_copy(tmp_path / "jo" / "images", aliases=False, test_name="validation")
    assert len(load_split(tmp_path / "jo", "train")) == 21
    assert len(load_split(tmp_path / "jo", "test")) == 28


def test_unknown_folder_is_an_error_unless_skipped(tmp_path, kaggle_copy):
    root = kaggle_copy(tmp_path / "ds")
    (root / "train" / "contempt").mkdir()
    Image.new("L", (48, 48), 90).save(root / "train" / "contempt" / "x.png")
    with pytest.raises(DatasetError, match="contempt") as e:
        load_split(root, "train")
    assert "happy" in str(e.value)  # lists the valid names
    assert len(load_split(root, "train", skip_unknown=True)) == 21


def test_bad_files_are_reported_and_skipped(tmp_path, kaggle_copy, caplog):
    root = kaggle_copy(tmp_path / "ds")
    (root / "train" / "fear" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (root / "train" / "fear" / "empty.png").write_bytes(b"")
    ds = load_split(root, "train")
    assert len(ds) == 21
    bad = {os.path.basename(s) for s, _ in ds.skipped}
    assert bad == {"broken.jpg", "empty.png"}
    assert all("cannot decode" in msg for _, msg in ds.skipped)
    with pytest.raises(DatasetError, match="broken.jpg"):
        decode_file(root / "train" / "fear" / "broken.jpg")


def test_any_mode_and_size_becomes_gray48(tmp_path, fer_root):
    src = Image.open(next((fer_root / "train" / "happy").iterdir()))
    rgb = src.convert("RGB").resize((200, 160))
    rgb.save(tmp_path / "rgb.jpg")
    rgba = src.convert("RGBA").resize((96, 96))
    rgba.save(tmp_path / "rgba.png")
    for p in ("rgb.jpg", "rgba.png"):
        arr = decode_file(tmp_path / p)
        assert arr.shape == (48, 48) and arr.dtype == np.uint8
        # still the same face: strongly correlated with the original pixels
        assert np.corrcoef(arr.ravel().astype(float), np.asarray(src, float).ravel())[0, 1] > 0.9


def test_cache_is_reused_and_invalidated(tmp_path, kaggle_copy):
    root = kaggle_copy(tmp_path / "ds")
    cache = tmp_path / "cache"
    a = load_split(root, "train", cache_dir=cache)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    b = load_split(root, "train", cache_dir=cache)
    assert np.array_equal(a.images, b.images) and list(cache.glob("*.npz")) == files
    # replace one image's content: the fingerprint (size/mtime) changes, the cache is rebuilt
    victim = root / a.sources[0]
    Image.new("L", (48, 48), 7).save(victim, format="JPEG")
    os.utime(victim, (time.time() + 5, time.time() + 5))
    c = load_split(root, "train", cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2
    assert abs(int(c.images[0].mean()) - 7) <= 2 and not np.array_equal(a.images[0], c.images[0])


def test_fer2013_csv_reader(tmp_path, fer_root):
    rows = []
    expect = []
    for csv_idx, emo in enumerate(FER2013_CSV_ORDER):
        f = sorted((fer_root / "train" / emo).iterdir())[0]
        px = np.asarray(Image.open(f).convert("L"))
        usage = ("Training", "PublicTest", "PrivateTest")[csv_idx % 3]
        rows.append({"emotion": csv_idx, "pixels": " ".join(map(str, px.ravel())), "Usage": usage})
        expect.append((usage, INDEX[emo], px))
    rows.append({"emotion": 3, "pixels": "1 2 3", "Usage": "Training"})  # malformed
    path = tmp_path / "fer2013.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["emotion", "pixels", "Usage"])
        w.writeheader()
        w.writerows(rows)
    train = load_split(path, "train")
    want = [(lab, px) for u, lab, px in expect if u == "Training"]
    assert train.labels.tolist() == [lab for lab, _ in want]
    assert all(np.array_equal(a, px) for a, (_, px) in zip(train.images, want))
    assert len(train.skipped) == 1 and "pixels" in train.skipped[0][1]
    assert len(load_split(path, "test")) == sum(u != "Training" for u, _, _ in expect)
    # the folder holding fer2013.csv works too
    assert len(load_split(tmp_path, "private")) == sum(u == "PrivateTest" for u, _, _ in expect)


def test_real_fer2013_private_split(fer_root):
    _, files = list_split_files(fer_root, "private")
    assert len(files) == 3589
    _, pub = list_split_files(fer_root, "public")
    assert len(pub) == 3589


def test_audit_finds_duplicates_leaks_and_blanks(tmp_path, kaggle_copy):
    root = kaggle_copy(tmp_path / "ds")
    before = audit({"train": load_split(root, "train")})["splits"]["train"]["blank"]  # FER2013 has blanks too
    pub_file = next((root / "test" / "happiness").glob("PublicTest_*"))
    # leak a public test image into train (as a copy under another label) and add a blank image
    (root / "train" / "neutral" / "leak.jpg").write_bytes(pub_file.read_bytes())
    Image.new("L", (48, 48), 77).save(root / "train" / "sadness" / "blank.png")
    splits = {s: load_split(root, s) for s in ("train", "public", "private")}
    rep = audit(splits)
    assert rep["shared_between_splits"]["train&public"] == 1
    assert rep["splits"]["train"]["blank"] == before + 1
    assert rep["label_conflicts"] == 1
    assert leaked_mask(splits["public"], splits["train"]).sum() == 1


def test_audit_labels_distinct_images_and_files(tmp_path, kaggle_copy):
    from ferkit.data.audit import format_audit

    root = kaggle_copy(tmp_path / "ds")
    pub_file = next((root / "test" / "happiness").glob("PublicTest_*"))
    for k in range(2):  # one public image copied twice into train: 1 distinct image, 2 train files
        (root / "train" / "happiness" / f"leak{k}.jpg").write_bytes(pub_file.read_bytes())
    rep = audit({s: load_split(root, s) for s in ("train", "public")})
    assert rep["shared_between_splits"]["train&public"] == 1
    assert rep["shared_files"]["train&public"] == {"train": 2, "public": 1}
    assert "1 distinct images (2 files in train, 1 in public)" in format_audit(rep)
