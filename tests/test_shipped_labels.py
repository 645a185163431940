"""What each shipped model learned is said wherever it is listed (issue 22), and every shipped model runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ferkit.emotions import EMOTIONS
from ferkit.recognizer import Recognizer
from ferkit.weights import list_shipped, shipped_info

FER = Path(__file__).resolve().parents[2] / "shared" / "fer2013"


def test_every_shipped_model_says_what_labels_it_learned():
    info = {m["name"]: m for m in shipped_info()}
    assert {"default", "fast", "ferplus", "fer2013"} <= set(info)
    assert info["fer2013"]["trained_labels"] == "fer2013"  # files from before the key say nothing: FER2013
    # round 5: members trained on the votes alone and on votes + the labels a worker also gave (W = 1 and 2)
    learned = info["default"]["trained_labels"]
    assert learned.startswith("ferplus") and "plausible:1" in learned and "plausible:2" in learned
    assert info["fast"]["trained_labels"].startswith("plausible:2")
    assert info["ferplus"]["trained_labels"].startswith("ferplus")
    # the decision prior each file since v2 carries inside its graph is said too
    assert info["default"]["class_prior"] == {"angry": 0.75, "sad": 0.5}
    assert info["fast"]["class_prior"] == {"angry": 0.5, "sad": 0.25}
    assert info["fer2013"]["class_prior"] == {} and info["ferplus"]["class_prior"] == {}
    head = json.loads((Path(list_shipped()["default"]).parent / "headline.json").read_text())["models"]
    for name in info:  # the model card measured every shipped file under both label sets
        assert head[name]["ferplus_private_test"] > 0.5, name
        assert head[name]["trained_labels"] == info[name]["trained_labels"]


def test_ferkit_models_lists_the_labels_each_model_learned():
    out = subprocess.run([sys.executable, "-m", "ferkit.cli", "models"], capture_output=True, text=True, check=True)
    row = next(line for line in out.stdout.splitlines() if line.strip().startswith("ferplus"))
    assert "ferkit-ferplus.onnx" in row and row.rstrip().endswith("ferplus (FER+ votes)")
    row = next(line for line in out.stdout.splitlines() if line.strip().startswith("default"))
    assert "5 x fernet_m, TTA flip, angry prior +0.75, sad prior +0.5; ferplus (FER+ votes); plausible:1" in row
    row = next(line for line in out.stdout.splitlines() if line.strip().startswith("fer2013"))
    assert "ferkit-fer2013.onnx" in row and "3 x fernet_m, TTA scale" in row and row.rstrip().endswith("fer2013")
    assert "FER+" in out.stdout.splitlines()[1]  # the column header


@pytest.mark.skipif(not (FER / "test").is_dir(), reason="needs ../shared/fer2013")
@pytest.mark.parametrize("name", sorted(list_shipped()))
def test_every_shipped_model_classifies_real_faces(name):
    from PIL import Image

    files = sorted((FER / "test" / "happy").glob("PublicTest_*.jpg"))[:32]
    faces = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    probs = Recognizer(model=name, detector="full").predict_arrays(faces)
    assert probs.shape == (len(files), len(EMOTIONS))
    assert np.allclose(probs.sum(1), 1, atol=1e-4) and np.isfinite(probs).all()
    assert (probs.argmax(1) == EMOTIONS.index("happy")).mean() > 0.7  # happy faces are the easy class for all


def test_export_writes_what_the_members_learned(tmp_path):
    torch = pytest.importorskip("torch")  # noqa: F841
    from ferkit.data.softlabels import save_soft_labels
    from ferkit.export.export import trained_labels

    soft = tmp_path / "votes.npz"
    save_soft_labels(soft, np.array([b"k" * 16]), np.full((1, 7), 1 / 7, np.float32), source="FER+ votes (test)")
    teacher = tmp_path / "teacher.npz"
    save_soft_labels(teacher, np.array([b"k" * 16]), np.full((1, 7), 1 / 7, np.float32), source="ensemble")
    assert trained_labels([{"config": {}}]) == "fer2013"
    assert trained_labels([{"config": {"labels": "mix:0.3"}}]) == "mix:0.3"
    assert trained_labels([{"config": {"soft_labels": str(soft), "kd_alpha": 1.0}}]) == "ferplus (FER+ votes)"
    assert trained_labels([{"config": {"soft_labels": str(soft), "kd_alpha": 0.5}}]).startswith("mix:0.5 (")
    assert "teacher" in trained_labels([{"config": {"soft_labels": str(teacher), "kd_alpha": 0.5}}])
    both = trained_labels([{"config": {}}, {"config": {"labels": "ferplus"}}])
    assert both == "fer2013; ferplus"
