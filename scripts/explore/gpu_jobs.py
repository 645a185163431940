"""Train several runs side by side on one GPU (used on the lent H100; see scripts/explore/gpu_session.sh).

    python scripts/explore/gpu_jobs.py --data /tmp/fer2013.npz --out runs --deadline 470 \
        seed:configs/seed.yaml fm0:configs/default.yaml:model=fernet_m,seed=0,epochs=80 ...

Each job is NAME:CONFIG[:key=value,...] (values 'true'/'false' become --flag/--no-flag). All jobs start
at once; --deadline sends SIGINT to every run after that many seconds, which makes `ferkit train` save
and exit cleanly. Prints one JSON line per job with its exit code.
"""

import argparse
import json
import os
import subprocess
import sys


def parse_job(spec):
    parts = spec.split(":")
    over = dict(kv.split("=", 1) for kv in parts[2].split(",")) if len(parts) > 2 and parts[2] else {}
    return parts[0], parts[1], over


def cmd(name, cfg, over, data, out):
    c = [sys.executable, "-m", "ferkit.cli", "train", "--config", cfg, "--data", data, "--name", name,
         "--out-dir", out, "--no-progress", "--threads", "2"]
    for k, v in over.items():
        flag = k.replace("_", "-")
        c += [f"--{flag}"] if v == "true" else [f"--no-{flag}"] if v == "false" else [f"--{flag}", v]
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default="runs")
    ap.add_argument("--deadline", type=int, default=0, help="SIGINT each run after this many seconds")
    ap.add_argument("jobs", nargs="+")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    pre = ["timeout", "-s", "INT", str(a.deadline)] if a.deadline else []
    procs = []
    for n, c, o in map(parse_job, a.jobs):
        log = open(os.path.join(a.out, f"{n}.log"), "w")
        procs.append((n, subprocess.Popen(pre + cmd(n, c, o, a.data, a.out), stdout=log, stderr=subprocess.STDOUT)))
    for n, p in procs:
        print(json.dumps({"job": n, "rc": p.wait()}), flush=True)


if __name__ == "__main__":
    main()
