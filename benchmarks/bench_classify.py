"""Crop classification throughput (crops/s): shipped ONNX models in onnxruntime vs the same network in torch
vs the `seed` CNN, at batch 1 and 64 with 1 and 2 threads. Prints a markdown table.

    .venv/bin/python benchmarks/bench_classify.py [--seconds 2] [--baseline-rev 5117c1d ...] [--repeats 3]

``--baseline-rev``: also time the shipped files of those git revisions (5117c1d: float32 arithmetic) in the
same run, so the int8 files and their predecessors are measured side by side on the same machine state.
``--repeats``: every row measured that many times, rows interleaved, best kept (a shared machine's noise).
``--opt-levels``: time the shipped files under each onnxruntime graph optimisation level (2 threads).
``--profile``: onnxruntime's profiler on each shipped file (batch 64, 2 threads): share of time per operator
type, i.e. what stays in float32 (GridSample views, normalisation, softmax, mean) and what it costs.

Inputs are real FER2013 test crops (../shared/fer2013) when present, else random pixels (same cost).
The torch rows need torch (`pip install 'ferkit[train]'`); they are skipped without it. The torch
fernet_m has random weights: its cost is the same as the trained network's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FER = REPO.parent / "shared" / "fer2013"


def crops(n=256):
    files = sorted((FER / "test").glob("*/PrivateTest_*.jpg"))[:n]
    if len(files) == n:
        from PIL import Image

        return np.stack([np.asarray(Image.open(f).convert("L")) for f in files]).astype(np.float32)
    return (np.random.default_rng(0).random((n, 48, 48)) * 255).astype(np.float32)


def rate(fn, batch, x, seconds):
    xb = x[:batch]
    fn(xb)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(xb)
        n += batch
    return n / (time.perf_counter() - t0)


def onnx_runner(path, threads, level=None):
    import onnxruntime as ort

    from ferkit.session import session_options

    so = session_options(threads)
    if level is not None:
        so.graph_optimization_level = level
    return session_fn(ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]))


def session_fn(sess):
    """The function ``rate`` times: (N, 48, 48) crops -> the session's outputs."""
    return lambda xb: sess.run(None, {"pixels": xb[:, None]})


def torch_runner(name, threads):
    import torch

    from ferkit.models import create_model

    torch.set_num_threads(threads)
    m = create_model(name).eval()

    def run(xb):
        with torch.inference_mode():
            return m(torch.from_numpy(xb[:, None]))

    return run


def profile(path, x, runs=5):
    """Share of kernel time per operator type, and the costliest nodes, batch 64, 2 threads."""
    import onnxruntime as ort

    from ferkit.session import session_options

    so = session_options(2)
    so.enable_profiling = True
    so.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "prof")
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):
        s.run(None, {"pixels": x[:64, None]})
    events = json.loads(Path(s.end_profiling()).read_text())
    per: dict[str, float] = {}
    nodes: dict[tuple[str, str], float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "?")
            per[op] = per.get(op, 0.0) + e["dur"]
            key = (op, e["name"].removesuffix("_kernel_time"))
            nodes[key] = nodes.get(key, 0.0) + e["dur"]
    total = sum(per.values())
    top = sorted(((op, name, us / (runs + 1) / 1000) for (op, name), us in nodes.items()), key=lambda t: -t[2])[:6]
    return (sorted(((op, us / total) for op, us in per.items()), key=lambda t: -t[1]), total / (runs + 1) / 1000,
            top)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--baseline-rev", nargs="+", default=[],
                    help="git revisions whose shipped files are timed too, in the same run (e.g. 5117c1d: float32)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="measure every row this many times, the rows interleaved, and keep the best of each cell")
    ap.add_argument("--opt-levels", action="store_true", help="also time each graph optimisation level")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--profile", action="store_true", help="per-operator time shares of the shipped files")
    args = ap.parse_args()
    from ferkit.weights import list_shipped

    x = crops()
    if args.profile:
        for name, path in list_shipped().items():
            shares, ms, top = profile(path, x)
            print(f"\n{name} ({path.name}), batch 64, 2 threads: {ms:.1f} ms of kernel time per call\n")
            print("| operator | share of kernel time |\n|---|---:|")
            for op, f in shares:
                if f >= 0.001:
                    print(f"| {op} | {f:.1%} |")
            print("\n| costliest nodes | operator | ms per call |\n|---|---|---:|")
            for op, node, t in top:
                print(f"| {node} | {op} | {t:.2f} |")
        return
    rows = []
    files = list(list_shipped().items())
    tmp = tempfile.TemporaryDirectory()
    for rev in args.baseline_rev:
        for name, path in list_shipped().items():
            old = Path(tmp.name) / f"{rev}-{path.name}"
            rel = path.relative_to(REPO).as_posix()
            got = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=REPO, capture_output=True)
            if got.returncode != 0:
                print(f"({name}: no {rel} at {rev}; not timed there)")
                continue
            old.write_bytes(got.stdout)
            files.append((f"{name} @ {rev}", old))
    for name, path in files:
        meta = __import__("onnxruntime").InferenceSession(str(path)).get_modelmeta().custom_metadata_map
        members = ", ".join(json.loads(meta.get("members", "[]")))
        arith = "int8" if meta.get("arithmetic", "float32").startswith("int8") else "float32"
        label = f"onnxruntime {name} ({members}, tta {meta.get('tta')}, {arith})"
        rows.append((label, lambda t, p=path: onnx_runner(p, t)))
        if args.opt_levels:
            import onnxruntime as ort

            for lv in ("ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED"):
                rows.append((f"{label}, {lv}", lambda t, p=path, lv=lv: onnx_runner(
                    p, t, getattr(ort.GraphOptimizationLevel, lv))))
    try:
        if args.no_torch:
            raise ImportError
        import torch  # noqa: F401

        rows.append(("torch fernet_m (same network, eager)", lambda t: torch_runner("fernet_m", t)))
        rows.append(("torch seed CNN (baseline)", lambda t: torch_runner("seed", t)))
    except ImportError:
        print("(torch not installed: torch rows skipped)")
    cols = [(1, 1), (1, 2), (64, 1), (64, 2)]
    print("crops/s (and ms per call at batch 1, 2 threads)\n")
    print("| model | " + " | ".join(f"batch {b}, {t} thr" for b, t in cols) + " | ms, batch 1, 2 thr |")
    print("|---|" + "---:|" * (len(cols) + 1))
    best = [[0.0] * len(cols) for _ in rows]
    for _ in range(args.repeats):
        for i, (_label, make) in enumerate(rows):
            for j, (b, t) in enumerate(cols):
                best[i][j] = max(best[i][j], rate(make(t), b, x, args.seconds))
    for (label, _make), vals in zip(rows, best):
        print(f"| {label} | " + " | ".join(f"{v:,.0f}" for v in vals) + f" | {1000 / vals[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
