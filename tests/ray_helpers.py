"""Helpers of tests/test_ray.py: the inputs (real images read from ../shared and tests/assets, bad files made
here), a real Ray cluster started on 127.0.0.1 with 2 CPUs and stopped by process id, and the comparison of two
runs' outputs (--csv, --json, --parquet)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ferkit.emotions import EMOTIONS

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets"
WEBPHOTOS = Path(os.environ.get("FERKIT_WEBPHOTOS", REPO.parent / "shared" / "webphotos-dev"))
PROB_TOL = 1e-6  # the same model on the same crops, maybe in other batches: float32 rounding at most


def make_inputs(root: Path, fer_root: Path, per_emotion: int = 30, photos_per_folder: int = 20) -> list[str]:
    """PATH arguments of a few hundred real images: FER2013 crops and web photos named one by one (read where
    they are), tests/assets as a folder, a folder of bad files made here, and a path that does not exist."""
    bad = root / "bad"
    bad.mkdir(parents=True)
    (bad / "text.jpg").write_text("not an image")
    (bad / "empty.png").write_bytes(b"")
    (bad / "truncated.jpg").write_bytes((ASSETS / "astronaut.jpg").read_bytes()[:3000])
    args = [str(ASSETS), str(bad), str(root / "missing.jpg")]
    for emo in EMOTIONS:
        files = sorted(p for p in (fer_root / "test" / emo).iterdir() if p.name.startswith("PublicTest_"))
        args += [str(p) for p in files[:per_emotion]]
    if WEBPHOTOS.is_dir():
        for folder in sorted(p for p in WEBPHOTOS.iterdir() if p.is_dir()):
            args += [str(p) for p in sorted(folder.glob("*.jpg"))[:photos_per_folder]]
    return args


def outputs(d: Path) -> list[str]:
    d.mkdir(parents=True, exist_ok=True)
    return ["--csv", str(d / "faces.csv"), "--json", str(d / "faces.jsonl"), "--parquet", str(d / "faces.parquet")]


# --------------------------------------------------------------------------- comparing runs


def _csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _close(a: str, b: str, tol: float) -> bool:
    if a == b:
        return True
    try:
        return abs(float(a) - float(b)) <= tol
    except ValueError:
        return False


def assert_same_outputs(ref: Path, run: Path) -> int:
    """The outputs in ``run`` hold the rows of ``ref``: same files in the same order, boxes, labels, statuses,
    detectors and landmarks; probabilities within PROB_TOL (plus the 6-decimal rounding of CSV and JSON).
    Returns the number of rows."""
    import pyarrow.parquet as pq

    a, b = pq.read_table(ref / "faces.parquet").to_pylist(), pq.read_table(run / "faces.parquet").to_pylist()
    assert [(r["file"], r["face"]) for r in a] == [(r["file"], r["face"]) for r in b]
    for ra, rb in zip(a, b, strict=True):
        for k in ra:
            if k in EMOTIONS or k == "confidence":
                assert (ra[k] is None) == (rb[k] is None), (ra["file"], k)
                if ra[k] is not None:
                    assert abs(ra[k] - rb[k]) <= PROB_TOL, (ra["file"], k, ra[k], rb[k])
            else:
                assert ra[k] == rb[k], (ra["file"], k, ra[k], rb[k])
    ca, cb = _csv(ref / "faces.csv"), _csv(run / "faces.csv")
    assert len(ca) == len(cb) == len(a)
    for ra, rb in zip(ca, cb, strict=True):
        for k in ra:
            tol = PROB_TOL + 1e-6 if k in EMOTIONS or k == "confidence" else 0
            assert _close(ra[k], rb[k], tol), (ra["file"], k, ra[k], rb[k])
    ja = [json.loads(x) for x in (ref / "faces.jsonl").read_text().splitlines()]
    jb = [json.loads(x) for x in (run / "faces.jsonl").read_text().splitlines()]
    assert [(x["file"], x["error"], len(x["faces"])) for x in ja] == [(x["file"], x["error"], len(x["faces"]))
                                                                      for x in jb]
    for xa, xb in zip(ja, jb, strict=True):
        for fa, fb in zip(xa["faces"], xb["faces"], strict=True):
            assert {k: v for k, v in fa.items() if k not in ("probs", "confidence")} == \
                {k: v for k, v in fb.items() if k not in ("probs", "confidence")}
            pa_, pb_ = np.array(list(fa["probs"].values())), np.array(list(fb["probs"].values()))
            assert np.abs(pa_ - pb_).max() <= PROB_TOL + 1e-6
    return len(a)


# --------------------------------------------------------------------------- a real cluster on 127.0.0.1


def clean_env() -> dict:
    """This environment without Ray's variables: a process sees what a user's shell would give it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _procs() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can read."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(d.name)] = (ppid, cmd)
    return out


class Cluster:
    """``ray start --head`` bound to 127.0.0.1 with 2 CPUs in its own temp folder; :meth:`stop` ends exactly
    the processes of that cluster (found by that folder in their command line, and their children)."""

    def __init__(self):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = Path(tempfile.mkdtemp(prefix="fkray", dir="/tmp"))  # short: Ray puts sockets under it
        env = clean_env() | {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
        ray = Path(sys.executable).with_name("ray")
        cmd = [str(ray), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
               "--num-cpus", "2", "--disable-usage-stats", "--include-dashboard=false", "--temp-dir",
               str(self.temp)]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
        if r.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")

    def pids(self) -> set[int]:
        """Every process of this cluster: those started with its temp folder, and all their descendants."""
        procs = _procs()
        mine = {p for p, (_pp, cmd) in procs.items() if str(self.temp) in cmd}
        grew = True
        while grew:
            kids = {p for p, (pp, _c) in procs.items() if pp in mine and p not in mine}
            mine |= kids
            grew = bool(kids)
        return mine

    def workers(self, name: str = "MapWorker") -> set[int]:
        """Actor processes of this cluster whose title names ``name``."""
        procs = _procs()
        return {p for p in self.pids() if p in procs and procs[p][1].startswith("ray::") and name in procs[p][1]}

    def listening(self) -> list[str]:
        """Local addresses this cluster's processes listen on (TCP), from ``ss``."""
        pids = self.pids()
        r = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True)
        return [ln.split()[3] for ln in r.stdout.splitlines() if any(f"pid={p}," in ln for p in pids)]

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            pids = self.pids()
            for p in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p, sig)
            end = time.monotonic() + wait
            while pids and time.monotonic() < end:
                time.sleep(0.2)
                pids = self.pids()
            if not pids:
                break
        shutil.rmtree(self.temp, ignore_errors=True)
