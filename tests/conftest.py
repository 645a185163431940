from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FER2013 = Path(os.environ.get("FERKIT_FER2013", REPO.parent / "shared" / "fer2013"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Tests never touch the user's ~/.cache/ferkit."""
    old = os.environ.get("FERKIT_CACHE")
    os.environ["FERKIT_CACHE"] = str(tmp_path_factory.mktemp("ferkit-cache"))
    yield
    if old is None:
        os.environ.pop("FERKIT_CACHE", None)
    else:
        os.environ["FERKIT_CACHE"] = old


@pytest.fixture(scope="session")
def fer_root() -> Path:
    if not (FER2013 / "train").is_dir():
        pytest.fail(f"FER2013 not found at {FER2013} (set FERKIT_FER2013); the tests use real images")
    return FER2013


def real_files(fer_root: Path, split_dir: str, emotion: str, n: int, prefix: str = "") -> list[Path]:
    files = sorted(p for p in (fer_root / split_dir / emotion).iterdir() if p.name.startswith(prefix))
    return files[:n]


@pytest.fixture
def kaggle_copy(tmp_path, fer_root):
    """A small Kaggle-layout dataset made of real FER2013 images, with alias folder names."""

    def make(root: Path, per_class: int = 3, aliases: bool = True, test_name: str = "test") -> Path:
        names = {"angry": "anger", "happy": "happiness", "sad": "sadness", "surprise": "surprised"}
        for emo in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"):
            folder = names.get(emo, emo) if aliases else emo
            for f in real_files(fer_root, "train", emo, per_class):
                dst = root / "train" / folder / f.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, dst)
            for prefix in ("PublicTest_", "PrivateTest_"):
                for f in real_files(fer_root, "test", emo, 2, prefix):
                    dst = root / test_name / folder / f.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(f, dst)
        return root

    return make
