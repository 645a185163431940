"""Thin the shipped `fast` network (fernet_m): fewer channels in the first conv of each stage, on a CPU.

    # PublicTest of several thinnings (float32, no training), a markdown table; --json keeps it
    python scripts/thin_fast.py --data ../shared/fer2013 --scan 32,64,128,384 32,64,128,256 --json runs/thin/scan.json
    # one thinning as a ferkit checkpoint, then N epochs of distilled fine-tuning
    python scripts/thin_fast.py --data ../shared/fer2013 --inner 32,64,128,384 --out runs/thin/init.pt \
        [--finetune-epochs 3 --teacher default.onnx]
    # as run for the shipped `fast` (fernet_mt; the run is runs/thin/fernet_mt/, checkpoint best.pt), with the
    # teacher of the other CPU runs: git show 5546f3b:src/ferkit/weights/ferkit-default.onnx > teacher.onnx
    python scripts/thin_fast.py --data ../shared/fer2013 --images 2000 --json results/thin-scan.json --scan \
        32,64,128,384 32,64,128,256 48,64,128,256 24,64,128,256 32,72,144,288 32,64,192,256
    python scripts/thin_fast.py --data ../shared/fer2013 --inner 32,64,192,256 --out runs/thin/fernet_mt.pt \
        --finetune-epochs 6 --lr 0.002 --teacher teacher.onnx

Each stage of fernet_m is conv A (widening) then conv B; ``--inner`` gives conv A's output channels per stage
(fernet_m: 48,96,192,384). Conv B keeps its width, so every stage still hands on the same features, and the
thinned network is ``fernet_m`` with ``model_kwargs {"inner": [...]}`` (ferkit.models.fernet.VGGNet), or its
registered name (``fernet_mt``: 32,64,192,256, the thinning chosen by the scan; see MODEL_CARD.md).

1. ``fast``'s network back from the float32 file it was exported as (git revision ``--source-rev``; batch norm
   folded, ferkit.onnx_members), as scripts/explore/prune_fast.py and shrink_fast.py do (shared helpers:
   scripts/refit_fast.py).
2. Walk the convs in order over ``--images`` Training images. Conv A keeps the outputs that conv B relies on
   most (weight norm x activation RMS). Every conv, thinned or not, is refitted by least squares so that, fed
   the thinned network's own features, it reproduces the original network's pre-activations (ThiNet-style,
   sequential: an error made early is corrected by the layers after it, not carried on).
3. The head is copied. PublicTest accuracy (float32, torch) is printed before and after.
4. With ``--finetune-epochs N``: batch norm unfolded (refit_fast.restat_batchnorm), then N epochs of
   ``ferkit train --init`` at a small learning rate, distilled from ``--teacher`` (default: the shipped
   ``default``), selected on PublicTest. The run is ``<out folder>/<out stem>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refit_fast import (  # noqa: E402
    REPO,
    add_refit_args,
    affine,
    fit_conv,
    public_accuracy,
    put_folded,
    restat_batchnorm,
    source_network,
    teacher_targets,
    top_channels,
)

ROWS_PER_UNKNOWN = 60  # least-squares rows drawn per unknown of a conv (positions sampled at random)
REGISTERED = {"fernet_mt": [32, 64, 192, 256]}  # thinnings with a name of their own in the model registry


def model_spec(inner: list[int]) -> tuple[str, dict]:
    """(registry name, model_kwargs) of fernet_m thinned to ``inner``: a registered name when there is one."""
    for name, widths in REGISTERED.items():
        if list(inner) == widths:
            return name, {}
    return "fernet_m", {"inner": list(inner)}


def parse_inner(text: str) -> list[int]:
    widths = [int(v) for v in text.replace(" ", "").split(",")]
    if len(widths) != 4 or any(w < 1 for w in widths):
        raise SystemExit(f"--inner {text!r}: expected 4 positive channel counts, one per stage "
                         "(fernet_m: 48,96,192,384)")
    return widths


def thin(m, images: np.ndarray, inner: list[int], verbose: bool = True):
    """fernet_m ``m`` (folded batch norm, eval mode) -> fernet_m(inner=inner), refitted as the module says."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from ferkit.models import create_model

    f = m.features
    convs = [i for i, layer in enumerate(f) if isinstance(layer, nn.Sequential)]
    assert len(convs) == 8, "expects fernet_m: 4 stages of 2 convs"
    thinned = create_model("fernet_m", inner=list(inner))
    state = {k: v.clone() for k, v in thinned.state_dict().items()}
    for k, v in m.state_dict().items():
        if k.startswith("head."):
            state[k] = v.clone()
    eps = thinned.features[convs[0]][1].eps
    with torch.inference_mode():
        x_old = f[0](torch.from_numpy(images[:, None].astype(np.float32)))
    x_new = x_old.clone()
    for i, layer in enumerate(f):
        if i == 0:
            continue
        if isinstance(layer, nn.MaxPool2d):
            x_old, x_new = F.max_pool2d(x_old, 2), F.max_pool2d(x_new, 2)
            continue
        w, s, b = affine(layer)
        with torch.inference_mode():
            z = s[:, None, None] * F.conv2d(x_old, w, padding=1) + b[:, None, None]
            a = torch.relu(z)
        pos = convs.index(i)
        width = inner[pos // 2] if pos % 2 == 0 else len(b)
        if width < len(b):  # conv A of a stage: keep what conv B needs most
            w_next, s_next, _ = affine(f[convs[pos + 1]])
            keep = top_channels(a, s_next, w_next, width)
        else:
            keep = torch.arange(len(b))
        d = x_new.shape[1] * 9 + 1
        share = min(1.0, ROWS_PER_UNKNOWN * d / (len(x_new) * x_new.shape[2] * x_new.shape[3]))
        w_fit, b_fit = fit_conv(x_new, z[:, keep].contiguous(), share=share, seed=i)
        with torch.inference_mode():
            z_new = F.conv2d(x_new, w_fit, padding=1) + b_fit[:, None, None]
            err = float((z_new - z[:, keep]).pow(2).mean() / z[:, keep].var())
        if verbose:
            print(f"  conv {pos + 1}/8: {x_new.shape[1]:>3} -> {len(keep):>3} channels, "
                  f"relative error {err:.4f}", flush=True)
        put_folded(state, i, w_fit, b_fit, eps)
        x_old, x_new = a, torch.relu(z_new)
    thinned.load_state_dict(state)
    return thinned.eval()


def save(model, inner: list[int], out: Path, source: str) -> None:
    from ferkit.checkpoint import FORMAT, VERSION, atomic_torch_save
    from ferkit.emotions import EMOTIONS

    out.parent.mkdir(parents=True, exist_ok=True)
    name, kwargs = model_spec(inner)
    atomic_torch_save({"format": FORMAT, "version": VERSION, "model": name, "model_kwargs": kwargs,
                       "labels": list(EMOTIONS), "state_dict": model.state_dict(), "epoch": 0,
                       "config": {"seed": 0, "source": source}}, out)


def main() -> int:
    import tempfile

    import torch

    from ferkit.data import load_split

    ap = argparse.ArgumentParser()
    ap.add_argument("--inner", help="conv A widths per stage, e.g. 32,64,128,384")
    ap.add_argument("--scan", nargs="+", help="several --inner values: a PublicTest table, no checkpoint")
    ap.add_argument("--json", help="with --scan: also write the table as JSON")
    add_refit_args(ap, out="runs/thin/init.pt", images=3000)
    a = ap.parse_args()
    if bool(a.inner) == bool(a.scan):
        ap.error("give --inner or --scan")
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        m = source_network(a.source_rev, Path(tmp)).eval()
    train = load_split(a.data, "train")
    idx = np.random.default_rng(0).choice(len(train), a.images, replace=False)
    base = public_accuracy(m, a.data)
    print(f"fernet_m (fast, float32): PublicTest {base:.4f}", flush=True)
    if a.scan:
        rows = {}
        for text in a.scan:
            inner = parse_inner(text)
            print(f"inner {inner}:", flush=True)
            rows[text] = public_accuracy(thin(m, train.images[idx], inner), a.data)
            print(f"inner {inner}: PublicTest {rows[text]:.4f}", flush=True)
        print("\n| conv A widths | PublicTest, float32, no training |\n|---|---:|")
        print(f"| 48,96,192,384 (fast) | {100 * base:.2f}% |")
        for text, acc in rows.items():
            print(f"| {text} | {100 * acc:.2f}% |")
        if a.json:
            out = Path(a.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")
            tmp.write_text(json.dumps({"command": " ".join(sys.argv), "fast": base, "thinned": rows}, indent=1))
            tmp.replace(out)
        return 0
    inner = parse_inner(a.inner)
    thinned = thin(m, train.images[idx], inner)
    print(f"fernet_m inner {inner} (refitted): PublicTest {public_accuracy(thinned, a.data):.4f}", flush=True)
    out = Path(a.out)
    source = f"fast @ {a.source_rev}, thin_fast.py --inner {a.inner} --images {a.images}"
    save(thinned, inner, out, source)
    print(f"wrote {out}")
    if not a.finetune_epochs:
        return 0
    from ferkit.cli import main as ferkit
    from ferkit.weights import model_path

    restat_batchnorm(thinned, train.images[np.random.default_rng(1).choice(len(train), 4096, replace=False)])
    ft = out.with_name(out.stem + "-unfolded.pt")
    save(thinned, inner, ft, source + ", batch norm unfolded")
    soft = teacher_targets(Path(a.teacher or model_path("default")), a.data, out.parent / "soft-teacher.npz")
    torch.set_grad_enabled(True)
    name, kwargs = model_spec(inner)
    args = ["train", "--config", str(REPO / "configs/default.yaml"), "--data", a.data, "--model", name,
            *(["--model-arg", f"inner=[{a.inner}]"] if kwargs else []), "--init", str(ft), "--out-dir", str(out.parent),
            "--name", out.stem, "--epochs", str(a.finetune_epochs), "--lr", a.lr, "--warmup-epochs", "0",
            "--soft-labels", str(soft), "--kd-alpha", a.kd_alpha, "--threads", "2", "--no-progress"]
    print("$ ferkit " + " ".join(args), flush=True)
    return ferkit(args)


if __name__ == "__main__":
    sys.exit(main())
