"""`ferkit predict` on awkward inputs (issue 14, defects 13, 14 and the "Also" paragraph): real crops, the real
CLI in a subprocess where the shell behaviour matters."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ferkit.cli import main

FER = Path(__file__).parents[1].parent / "shared" / "fer2013"
pytestmark = pytest.mark.skipif(not (FER / "test").is_dir(), reason=f"FER2013 not found at {FER}")
FAST = ["--model", "fast", "--crop", "--no-progress"]


def _crops(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in sorted((FER / "test" / "happy").glob("PrivateTest_*.jpg"))[:n]:
        shutil.copy(f, folder / f.name)
    return folder


def test_undecodable_file_name_does_not_stop_the_run(tmp_path, capsys):
    """A name with a byte that is not UTF-8 used to abort --csv at that file (rc 2, no summary)."""
    d = _crops(tmp_path / "c", 3)
    odd = os.fsencode(d) + b"/odd\xff.jpg"
    shutil.copy(next(d.iterdir()), odd)
    out = tmp_path / "r.csv"
    assert main(["predict", str(d), "--csv", str(out), "--json", *FAST]) == 0
    cap = capsys.readouterr()
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    assert "c/odd\\xff.jpg" in {r["file"] for r in rows}
    lines = [json.loads(s) for s in cap.out.splitlines()]
    assert {r["file"] for r in lines} == {r["file"] for r in rows}
    assert "4 image(s), 4 face(s)" in cap.err


def test_closed_pipe_ends_quietly(tmp_path):
    """`ferkit predict DIR | head -2` used to end with a BrokenPipeError traceback."""
    d = _crops(tmp_path / "c", 40)
    p = subprocess.Popen([sys.executable, "-m", "ferkit.cli", "predict", str(d), *FAST, "--batch-size", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = [p.stdout.readline() for _ in range(2)]
    p.stdout.close()  # what `head -2` does after two lines
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert first[0].startswith(b"file") and first[1].strip()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert p.returncode == 141


def test_missing_inputs_are_rows_in_json_and_csv(tmp_path, capsys):
    """An input that does not exist used to appear on stderr only; now it is a row with the error too."""
    d = _crops(tmp_path / "c", 2)
    out = tmp_path / "r.csv"
    rc = main(["predict", str(d), str(tmp_path / "gone.jpg"), "--csv", str(out), "--json", *FAST])
    cap = capsys.readouterr()
    assert rc == 1
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 3
    (bad,) = [r for r in rows if r["status"] != "ok"]
    assert bad["file"].endswith("gone.jpg") and "no such file" in bad["status"]
    lines = [json.loads(s) for s in cap.out.splitlines()]
    (err,) = [r for r in lines if r["error"]]
    assert err["file"].endswith("gone.jpg") and err["faces"] == [] and err["schema"] == "ferkit.predict/1"
    assert "gone.jpg" in cap.err and "1 error(s)" in cap.err


def test_progress_bar_stays_out_of_logs(tmp_path):
    """With stdout and stderr in a log file, no carriage-return progress noise is written."""
    d = _crops(tmp_path / "c", 3)
    log = tmp_path / "log"
    with log.open("wb") as f:
        rc = subprocess.run([sys.executable, "-m", "ferkit.cli", "predict", str(d), "--model", "fast", "--crop"],
                            stdout=f, stderr=subprocess.STDOUT, timeout=60).returncode
    assert rc == 0 and b"\r" not in log.read_bytes() and b"happy" in log.read_bytes()
