"""Local ``ferkit predict`` against ``ferkit predict --ray`` (a local Ray instance, 1 and 2 workers) on the same
images, side by side: images/s, peak memory of the whole process tree, and the Ray overhead per image.

    .venv/bin/python benchmarks/bench_ray.py [--n 2000] [--photos DIR] [--crops DIR] [--model default]
        [--json results.json]

The images: every web photo of ``--photos`` (default ../shared/webphotos-dev: faces to detect) and FER2013 crops of
``--crops`` (default ../shared/fer2013/test: taken whole) up to ``--n`` in all, as symlinks in a temp folder (read
where they are). Each run is a separate process (``--parquet`` output, ``-q``); its memory is the sum of the
proportional set size (PSS: shared pages split between the processes that share them) of the process and every
descendant (Ray's GCS, raylet, agents and workers are children of the run), sampled every 0.2 s. Wall time
counts everything a user waits for, Ray's start-up included; "in-run" is the time ferkit itself reports (from the
first image listed to the last row written; with Ray it includes starting the workers). Overhead per image:
(Ray wall time - local wall time) / images, at the same number of cores (2 workers x 1 thread vs a local run on 2
cores); the rows of every run are checked to be the local run's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def tree_pss_mib(root: int) -> float:
    """PSS of ``root`` and all its descendants, MiB."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        try:
            m = re.search(r"^Pss:\s+(\d+) kB", Path(f"/proc/{p}/smaps_rollup").read_text(), re.M)
            total += int(m[1]) if m else 0
        except OSError:
            pass
    return total / 1024


def run(cmd: list[str]) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0.0]

    def sample():
        while p.poll() is None:
            peak[0] = max(peak[0], tree_pss_mib(p.pid))
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    err = p.communicate()[1]
    wall = time.perf_counter() - t0
    t.join()
    m = re.search(r"(\d+) image\(s\), (\d+) face\(s\).* in ([\d.]+)s", err)
    if p.returncode not in (0, 1) or not m:
        raise SystemExit(f"{' '.join(cmd[:3])}... failed ({p.returncode}):\n{err[-3000:]}")
    return {"wall_s": wall, "in_run_s": float(m[3]), "images": int(m[1]), "faces": int(m[2]), "peak_pss_mib": peak[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--photos", type=Path, default=SHARED / "webphotos-dev")
    ap.add_argument("--crops", type=Path, default=SHARED / "fer2013" / "test")
    ap.add_argument("--model", default="default")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    photos = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:args.n]
    crops = sorted(args.crops.rglob("*.jpg"))[:args.n - len(photos)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    imgs = tmp / "images"
    imgs.mkdir()
    for i, f in enumerate([*photos, *crops]):
        os.symlink(f.resolve(), imgs / f"{i:05d}{f.suffix.lower()}")
    n = len(photos) + len(crops)
    ferkit = [sys.executable, "-m", "ferkit", "predict", str(imgs), "--model", args.model, "-q", "--no-progress"]
    env_note = f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    runs = {}
    for name, extra in (("local", []),
                        ("--ray, 1 worker x 1 thread", ["--ray", "--num-workers", "1", "--threads", "1"]),
                        ("--ray, 2 workers x 1 thread", ["--ray", "--num-workers", "2", "--threads", "1"])):
        out = tmp / f"{len(runs)}.parquet"
        runs[name] = run([*ferkit, "--parquet", str(out)] + extra) | {"parquet": str(out)}
        print(f"{name}: {runs[name]}", file=sys.stderr)
    import pyarrow.parquet as pq

    ref = pq.read_table(runs["local"]["parquet"]).select(["file", "face", "x", "y", "w", "h", "label"])
    for r in runs.values():
        r["same_rows"] = pq.read_table(r["parquet"]).select(ref.column_names).equals(ref)
    local = runs["local"]
    print(f"{n} images ({len(photos)} web photos, {len(crops)} FER2013 crops), model {args.model}; {env_note}\n")
    print("| run | wall s | images/s (wall) | in-run s | images/s (in-run) | peak PSS MiB | rows = local |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, r in runs.items():
        print(f"| {name} | {r['wall_s']:.1f} | {n / r['wall_s']:.1f} | {r['in_run_s']:.1f} | "
              f"{n / r['in_run_s']:.1f} | {r['peak_pss_mib']:.0f} | {r['same_rows']} |")
    two = runs["--ray, 2 workers x 1 thread"]
    one = runs["--ray, 1 worker x 1 thread"]
    per_image = 1000 * (two["wall_s"] - local["wall_s"]) / n
    print(f"\nRay overhead per image (2 workers vs local, wall): {per_image:.2f} ms; "
          f"fixed start-up (wall - in-run, 2 workers): {two['wall_s'] - two['in_run_s']:.1f} s; "
          f"1 -> 2 workers: x{one['in_run_s'] / two['in_run_s']:.2f} in-run")
    if args.json:
        args.json.write_text(json.dumps({"n": n, "photos": len(photos), "crops": len(crops), "model": args.model,
                                         "machine": env_note, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
