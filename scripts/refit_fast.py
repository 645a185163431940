"""Shared by the scripts that rebuild `fast`'s network from its own weights on a CPU (thin_fast.py, which makes
today's `fast`, and the explorations explore/prune_fast.py and explore/shrink_fast.py): the source network back
from its float file, least-squares conv refits in the folded form, batch-norm re-statistics, teacher targets.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCE_REV = "5117c1d"  # last commit whose shipped files compute in float32


def source_network(rev: str, work: Path):
    from ferkit.onnx_members import load_members

    src = work / "float-fast.onnx"
    src.write_bytes(subprocess.run(["git", "show", f"{rev}:src/ferkit/weights/ferkit-fast.onnx"], cwd=REPO,
                                   check=True, capture_output=True).stdout)
    members, _ = load_members(src)
    return members[0]


def restat_batchnorm(model, images: np.ndarray, batch: int = 256) -> None:
    """Unfold batch norm: measure each BN input's per-channel mean/var over ``images`` (eval mode, so the
    function is the folded one) and set the layer so that train mode (batch statistics) and eval mode
    (running statistics) both compute what it computed before."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    sums = {id(m): [0.0, 0.0, 0] for m in bns}

    def hook(m, inp, _out):
        x = inp[0].double()
        s = sums[id(m)]
        s[0] = s[0] + x.sum((0, 2, 3))
        s[1] = s[1] + (x * x).sum((0, 2, 3))
        s[2] += x.numel() // x.shape[1]

    handles = [m.register_forward_hook(hook) for m in bns]
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            model(torch.from_numpy(images[i:i + batch, None].astype(np.float32)))
    for h in handles:
        h.remove()
    with torch.no_grad():
        for m in bns:
            s0, s1, n = sums[id(m)]
            mean = s0 / n
            var = (s1 / n - mean * mean).clamp_min(0)
            scale = m.weight.double() / (m.running_var.double() + m.eps).sqrt()  # y = scale * x + shift
            shift = m.bias.double() - scale * m.running_mean.double()
            m.running_mean.copy_(mean.float())
            m.running_var.copy_(var.float())
            m.weight.copy_((scale * (var + m.eps).sqrt()).float())
            m.bias.copy_((shift + scale * mean).float())


def teacher_targets(teacher: Path, data: str, out: Path) -> Path:
    import onnxruntime as ort

    from ferkit.data import load_split
    from ferkit.data.softlabels import image_keys, save_soft_labels
    from ferkit.session import session_options

    sha = hashlib.sha256(teacher.read_bytes()).hexdigest()
    if out.exists():
        with np.load(out) as z:
            if sha in str(z["meta"]):
                return out
    train = load_split(data, "train")
    s = ort.InferenceSession(str(teacher), session_options(), providers=["CPUExecutionProvider"])
    probs = np.concatenate([s.run(["probs"], {"pixels": train.images[i:i + 256, None].astype(np.float32)})[0]
                            for i in range(0, len(train), 256)])
    print(f"teacher {teacher.name}: Training accuracy {(probs.argmax(1) == train.labels).mean():.4f}, "
          f"mean top probability {probs.max(1).mean():.3f}", flush=True)
    save_soft_labels(out, image_keys(train.images), probs, teacher=f"{teacher.name} sha256 {sha}")
    return out


def affine(seq):
    """(conv weight, scale, shift) of a Conv-BN(-ReLU) block: y = scale * conv(x) + shift, per channel."""
    conv, bn = seq[0], seq[1]
    scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach()
    return conv.weight.detach(), scale, (bn.bias - bn.running_mean * scale).detach()


def fit_conv(x, target, ridge: float = 1e-3, share: float = 0.25, chunk: int = 100, seed: int = 0):
    """Least-squares 3x3 conv (padding 1) + bias from inputs ``x`` (N, C, H, W) to ``target`` (N, K, H, W),
    over a random ``share`` of the positions (normal equations accumulated chunk by chunk: memory stays small)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    d, k = x.shape[1] * 9 + 1, target.shape[1]
    xtx, xty = torch.zeros(d, d, dtype=torch.float64), torch.zeros(d, k, dtype=torch.float64)
    for i in range(0, len(x), chunk):
        cols = F.unfold(x[i:i + chunk], 3, padding=1).permute(0, 2, 1).reshape(-1, d - 1)
        ys = target[i:i + chunk].flatten(2).permute(0, 2, 1).reshape(-1, k)
        pick = torch.rand(len(cols), generator=g) < share
        xs = torch.cat([cols[pick], torch.ones(int(pick.sum()), 1)], 1).double()
        xtx += xs.T @ xs
        xty += xs.T @ ys[pick].double()
    xtx += ridge * xtx.diagonal().mean() * torch.eye(d, dtype=xtx.dtype)
    sol = torch.linalg.solve(xtx, xty)  # (d, K)
    return sol[:-1].T.reshape(k, x.shape[1], 3, 3).float().contiguous(), sol[-1].float()


def public_accuracy(model, data: str) -> float:
    import torch

    from ferkit.data import load_split

    pub = load_split(data, "public")
    model.eval()
    with torch.inference_mode():
        pred = np.concatenate([model(torch.from_numpy(pub.images[i:i + 512, None].astype(np.float32))).argmax(1)
                               for i in range(0, len(pub), 512)])
    return float((pred == pub.labels).mean())


def put_folded(state: dict, i: int, w, bias, eps: float) -> None:
    """Write conv ``features.i`` into ``state`` in the folded form: its weight, and an identity batch norm
    that carries the bias (running_var = 1 - eps, so BN divides by exactly 1)."""
    import torch

    state[f"features.{i}.0.weight"] = w
    state[f"features.{i}.1.weight"] = torch.ones(len(bias))
    state[f"features.{i}.1.bias"] = bias
    state[f"features.{i}.1.running_mean"] = torch.zeros(len(bias))
    state[f"features.{i}.1.running_var"] = torch.full((len(bias),), 1 - eps)


def top_channels(acts, scale, w_next, keep: int):
    """Indices (sorted) of the ``keep`` input channels of the next conv with the largest weight norm x RMS."""
    import torch

    score = (scale[:, None, None, None] * w_next).pow(2).sum((0, 2, 3)).sqrt() * acts.pow(2).mean((0, 2, 3)).sqrt()
    return torch.argsort(score, descending=True)[:keep].sort()[0]


def add_refit_args(ap, out: str, images: int) -> None:
    """The options shared by the scripts that rebuild `fast`'s network from its weights (prune, thin)."""
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default=out)
    ap.add_argument("--source-rev", default=SOURCE_REV)
    ap.add_argument("--images", type=int, default=images, help="Training images the refits see")
    ap.add_argument("--finetune-epochs", type=int, default=0)
    ap.add_argument("--lr", default="0.002")
    ap.add_argument("--kd-alpha", default="0.5")
    ap.add_argument("--teacher", help="ONNX teacher for distillation (default: the shipped default)")
