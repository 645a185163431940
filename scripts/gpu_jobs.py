"""Train several runs side by side on one GPU inside a fixed wall-clock budget (used on the lent H100).

    python scripts/gpu_jobs.py --data /tmp/fer2013.npz --budget 420 --out runs \
        seed:configs/seed.yaml fernet_l:configs/default.yaml:model=fernet_l,seed=1 ...

Each job is NAME:CONFIG[:key=value,...]. First every job runs a probe of 30 steps concurrently to
measure its speed; then each job's epoch count is set so that all finish inside the budget (capped at
the config's epochs), and all run concurrently. Prints a JSON summary line per job.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def parse_job(spec):
    parts = spec.split(":")
    name, cfg = parts[0], parts[1]
    over = {}
    if len(parts) > 2 and parts[2]:
        for kv in parts[2].split(","):
            k, v = kv.split("=")
            over[k] = v
    return name, cfg, over


def cmd(name, cfg, over, data, out, extra):
    c = [sys.executable, "-m", "ferkit.cli", "train", "--config", cfg, "--data", data, "--name", name,
         "--out-dir", out, "--no-progress", "--threads", "2"] + extra
    for k, v in over.items():
        flag = k.replace("_", "-")
        c += [f"--{flag}"] if v == "true" else [f"--no-{flag}"] if v == "false" else [f"--{flag}", v]
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--budget", type=float, required=True, help="seconds for the real runs")
    ap.add_argument("--out", default="runs")
    ap.add_argument("--steps-per-epoch", type=int, default=224)
    ap.add_argument("--max-epochs", type=int, default=0)
    ap.add_argument("--deadline", type=int, default=0, help="SIGINT each run after this many seconds")
    ap.add_argument("--no-probe", action="store_true", help="run each job with its own epochs, no probe")
    ap.add_argument("jobs", nargs="+")
    a = ap.parse_args()
    jobs = [parse_job(j) for j in a.jobs]
    if a.no_probe:
        os.makedirs(a.out, exist_ok=True)
        pre = ["timeout", "-s", "INT", str(a.deadline)] if a.deadline else []
        procs = [(n, subprocess.Popen(pre + cmd(n, c, o, a.data, a.out, []),
                                      stdout=open(os.path.join(a.out, f"{n}.log"), "w"),
                                      stderr=subprocess.STDOUT)) for n, c, o in jobs]
        for n, p in procs:
            print(json.dumps({"job": n, "rc": p.wait()}), flush=True)
        return
    # probe
    t0 = time.time()
    probes = [subprocess.Popen(cmd(n + "-probe", c, o | {"epochs": "1"}, a.data, "/tmp/probe",
                                   ["--max-steps", "60"]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True) for n, c, o in jobs]
    speeds = []
    for p, (n, _, _) in zip(probes, jobs):
        out = p.communicate()[0]
        line = [x for x in out.splitlines() if "img/s" in x and "epoch" in x]
        ips = float(line[-1].split("img/s")[0].split()[-1]) if line else 0.0
        speeds.append(ips)
        print(f"probe {n}: {ips:.0f} img/s concurrent", flush=True)
        if not line:
            print(out[-3000:])
    print(f"probe took {time.time() - t0:.0f}s", flush=True)
    procs = []
    for (n, c, o), ips in zip(jobs, speeds):
        epoch_s = a.steps_per_epoch * 128 / max(ips, 1) * 1.15 + 1.0  # + validation
        import yaml
        want = int(o.get("epochs", yaml.safe_load(open(c)).get("epochs", 100)))
        ep = max(1, min(want, int(a.budget / epoch_s)))
        if a.max_epochs:
            ep = min(ep, a.max_epochs)
        print(f"job {n}: {ep} epochs (wanted {want}, ~{epoch_s:.1f}s/epoch)", flush=True)
        os.makedirs(a.out, exist_ok=True)
        log = open(os.path.join(a.out, f"{n}.log"), "w")
        procs.append((n, subprocess.Popen(cmd(n, c, o | {"epochs": str(ep)}, a.data, a.out, []), stdout=log,
                                          stderr=subprocess.STDOUT)))
    for n, p in procs:
        rc = p.wait()
        print(json.dumps({"job": n, "rc": rc}), flush=True)


if __name__ == "__main__":
    main()
