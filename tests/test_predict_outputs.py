"""Issue 20 items 4 and 19 (predict): a Ctrl-C keeps every image done in every output and says so; a run with
no readable input still writes its error rows; --csv and --json replace their files only at the end of a run.
The real CLI in a subprocess, a real SIGINT, real photos and FER2013 crops, a real full file system (tmpfs)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ferkit.cli import main

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "tests" / "assets" / "astronaut.jpg"  # one face


def _photos(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        os.link(PHOTO, folder / f"p{i:04d}.jpg")
    return folder


def _rows_so_far(folder: Path, name: str) -> int:
    """Data rows in the CSV being written (its temporary file beside it, or the file itself before the fix)."""
    files = [folder / name, *folder.glob(f".{name}.*.tmp")]
    return max((max(0, len(f.read_text(encoding="utf-8").splitlines()) - 1) for f in files if f.exists()), default=0)


def test_ctrl_c_keeps_every_image_done_in_every_output(tmp_path):
    """Item 4: the CSV used to keep the rows of finished batches only (a header when Ctrl-C came before the
    first batch of 64 faces), the JSON lines file was never written, and the message was only "interrupted".
    Now the images already read are classified and written, and every output holds the same images."""
    photos = _photos(tmp_path / "big", 600)
    c, j = tmp_path / "c.csv", tmp_path / "j.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "ferkit", "predict", str(photos), "--csv", str(c), "--json",
                             str(j), "-q", "--model", "fast", "--batch-size", "4", "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and _rows_so_far(tmp_path, "c.csv") < 1:
        time.sleep(0.02)  # the first batch is written: the run is under way
    seen = _rows_so_far(tmp_path, "c.csv")
    assert proc.poll() is None and seen >= 1, "the run ended (or never started) before the signal"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and out == ""
    assert j.exists(), f"no JSON lines file after the Ctrl-C: {err}"
    rows = list(csv.DictReader(c.open(encoding="utf-8")))
    lines = [json.loads(ln) for ln in j.read_text(encoding="utf-8").splitlines()]
    assert seen <= len(rows) < 600 and len(lines) == len(rows)  # one face per photo: one row, one line each
    assert [r["file"] for r in rows] == [d["file"] for d in lines]
    assert all(r["status"] == "ok" for r in rows) and all(len(d["faces"]) == 1 for d in lines)
    n = len(rows)
    assert (f"interrupted: {n} of 600 image(s) done, kept in every output ({c}: {n} row(s); {j}: {n} line(s)); "
            f"{600 - n} not processed") in err
    assert not list(tmp_path.glob(".*.tmp"))


def test_no_readable_input_still_writes_its_error_rows(tmp_path):
    """Item 19: `ferkit predict nosuch.jpg --csv c.csv` wrote no CSV, though a missing input gets an error row."""
    c, j = tmp_path / "c.csv", tmp_path / "j.jsonl"
    assert main(["predict", str(tmp_path / "nosuch.jpg"), "--csv", str(c), "--json", str(j)]) == 2
    rows = list(csv.DictReader(c.open(encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["file"] == str(tmp_path / "nosuch.jpg")
    assert rows[0]["status"] == f"error: {tmp_path / 'nosuch.jpg'}: no such file or folder"
    doc = json.loads(j.read_text(encoding="utf-8"))
    assert doc["faces"] == [] and doc["error"] == rows[0]["status"].removeprefix("error: ")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 16 KiB tmpfs (root only): where a CSV of a few hundred rows cannot fit."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_a_full_disk_leaves_the_old_csv_as_it_was(tiny_disk, tmp_path, fer_root, capsys):
    """The class of item 3 in predict: --csv opened its file at once, so a run that failed (or a Ctrl-C before
    the first batch) left an existing CSV emptied. Now rows go beside it and replace it only at the end."""
    crops = tmp_path / "crops"
    crops.mkdir()
    for f in sorted((fer_root / "test" / "happy").iterdir())[:300]:
        os.link(f, crops / f.name)
    old = tiny_disk / "keep.csv"
    old.write_text("file,label\nearlier.jpg,happy\n")
    rc = main(["predict", str(crops), "--csv", str(old), "--model", "fast", "--crop", "-q", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and f"--csv {old}: cannot write (No space left on device)" in err
    assert old.read_text() == "file,label\nearlier.jpg,happy\n"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["keep.csv"]
    shutil.rmtree(crops)
