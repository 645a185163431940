"""The README's command blocks run, as written, on small real inputs (issue 15: docs that agree); so do those of
docs/training.md, the model builder's guide (issue 21).

Every ```bash block in README.md and docs/training.md is preceded by a marker: ``<!-- readme-test: run -->``
(this test runs the commands of the block in order, in a scratch folder, and checks that each succeeds and
writes what it names; a command may use what an earlier one of its block wrote) or
``<!-- readme-test: skip (reason) -->``. A block without a marker fails the test, so a new block is
classified when it is written. Placeholder inputs (photo.jpg, face48.jpg, photos/, shots/*.png, crops/, clip.mp4) are
real photos and FER2013 faces, emotiondetector.h5/.json the Keras files of ``../shared/seed-keras``;
``../shared/fer2013`` is a small copy of real FER2013 images.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets"
MARKER = re.compile(r"<!--\s*readme-test:\s*(run|skip)\b\s*(.*?)\s*-->")
SETUP = ("python3 -m venv", ". .venv/bin/activate", "pip install", "bash scripts/install-dev.sh")
OUTPUT_FLAGS = ("--out", "--annotate", "--csv", "--json", "--plot")
DOCS = ("README.md", "docs/training.md")
SEED_KERAS = Path(os.environ.get("FERKIT_SEED_KERAS", REPO.parent / "shared" / "seed-keras"))


def readme_blocks(doc: str = "README.md") -> list[tuple[str, str, list[str]]]:
    """[(mode, reason, commands)] for every bash block of ``doc``, commands joined across backslash continuations."""
    lines = (REPO / doc).read_text().splitlines()
    blocks, i, marker = [], 0, None
    while i < len(lines):
        line = lines[i]
        m = MARKER.search(line)
        if m:
            marker = (m.group(1), m.group(2))
        elif line.strip() == "```bash":
            body = []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            text = "\n".join(body).replace("\\\n", " ")
            cmds = [c for c in (ln.split(" #")[0].strip() for ln in text.splitlines()) if c and not c.startswith("#")]
            mode, reason = marker or ("unmarked", "")
            blocks.append((mode, reason, cmds))
            marker = None
        elif line.strip() and not line.startswith("<!--"):
            marker = None if line.startswith("```") else marker
        i += 1
    return blocks


@pytest.mark.parametrize("doc, least, least_run", [("README.md", 5, 4), ("docs/training.md", 5, 1)])
def test_every_bash_block_is_classified(doc, least, least_run):
    blocks = readme_blocks(doc)
    assert len(blocks) >= least
    for mode, reason, cmds in blocks:
        assert mode in ("run", "skip"), f"{doc} block without a readme-test marker: {cmds[:1]}"
        assert mode == "run" or reason, f"a skipped {doc} block must say why: {cmds[:1]}"
    assert sum(m == "run" for m, _r, _c in blocks) >= least_run


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, fer_root) -> Path:
    """tmp/repo (the working folder, with tests/assets and the placeholder inputs) beside tmp/shared/fer2013."""
    import cv2

    top = tmp_path_factory.mktemp("readme")
    work = top / "repo"
    (work / "tests").mkdir(parents=True)
    shutil.copytree(ASSETS, work / "tests" / "assets")
    photos = sorted(ASSETS.glob("*.jpg"))
    shutil.copy(photos[0], work / "photo.jpg")
    shutil.copytree(ASSETS, work / "photos", ignore=shutil.ignore_patterns("*.md"))
    (work / "shots").mkdir()
    for p in photos:
        cv2.imwrite(str(work / "shots" / f"{p.stem}.png"), cv2.imread(str(p)))
    (work / "crops").mkdir()
    for emo in ("happy", "sad", "surprise"):
        for f in sorted((fer_root / "test" / emo).iterdir())[:2]:
            shutil.copy(f, work / "crops" / f"{emo}-{f.name}")
    # the Keras notebook's own model files (the README's "emotiondetector.h5" / ".json")
    for suffix in (".h5", ".json"):
        shutil.copyfile(SEED_KERAS / f"emotiondetector{suffix}", work / f"emotiondetector{suffix}")
    # a 48x48 FER2013 face as it comes (the README's "face48.jpg")
    shutil.copy(sorted((fer_root / "test" / "happy").iterdir())[0], work / "face48.jpg")
    # a 2-second clip of a real photo drifting sideways
    img = cv2.resize(cv2.imread(str(ASSETS / "astronaut.jpg")), (320, 320))
    vw = cv2.VideoWriter(str(work / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (400, 320))
    for k in range(20):
        frame = cv2.copyMakeBorder(img, 0, 0, 4 * k, 80 - 4 * k, cv2.BORDER_CONSTANT, value=(90, 90, 90))
        vw.write(frame)
    vw.release()
    data = top / "shared" / "fer2013"
    for emo in sorted(p.name for p in (fer_root / "train").iterdir() if p.is_dir()):
        for split, prefix, n in (("train", "", 3), ("test", "PublicTest_", 2), ("test", "PrivateTest_", 2)):
            for f in sorted(f for f in (fer_root / split / emo).iterdir() if f.name.startswith(prefix))[:n]:
                (data / split / emo).mkdir(parents=True, exist_ok=True)
                shutil.copy(f, data / split / emo / f.name)
    # `ferkit` is this checkout's CLI, whatever is installed
    bin_dir = top / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "ferkit"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m ferkit.cli \"$@\"\n")
    shim.chmod(0o755)
    return work


def _runnable(cmd: str) -> str:
    """The command without its environment-setup steps (a venv, pip): CI has already done them."""
    parts = [p.strip() for p in cmd.split("&&")]
    return " && ".join(p for p in parts if not p.startswith(SETUP))


def _outputs(cmd: str) -> list[str]:
    words = shlex.split(cmd)
    return [words[i + 1] for i, w in enumerate(words[:-1])
            if w in OUTPUT_FLAGS and not words[i + 1].startswith("-")]


RUN = [(doc, [c for c in cmds if _runnable(c)])
       for doc in DOCS for mode, _r, cmds in readme_blocks(doc) if mode == "run"]


@pytest.mark.slow
@pytest.mark.parametrize("doc, cmds", RUN, ids=[f"{doc}:{cmds[0][:50]}" for doc, cmds in RUN])
def test_readme_block_runs(doc, cmds, scratch):
    env = dict(os.environ, PATH=f"{scratch.parent / 'bin'}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(REPO / "src"), COLUMNS="120")
    for cmd in cmds:
        run = _runnable(cmd)
        r = subprocess.run(["bash", "-c", run], cwd=scratch, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{doc}: {run}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-3000:]}"
        outputs = _outputs(run)
        assert r.stdout.strip() or outputs, f"{doc}: {run}: printed nothing and wrote nothing"
        for out in outputs:
            path = scratch / out
            assert path.exists() and (path.is_file() and path.stat().st_size > 0 or path.is_dir() and any(
                path.iterdir())), f"{doc}: {run}: {out} not written"
