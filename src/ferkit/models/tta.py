"""Test-time augmentation and temperature as torch modules, so that an exported ONNX graph contains
exactly what a published number used: raw pixels in, averaged calibrated probabilities out."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..emotions import EMOTIONS

# A view: (scale, rotation in degrees, dx px, dy px, mirror) -- one affine warp of the raw pixels, the same
# family of warps the training augmentation draws from (border padding, bilinear).
View = tuple[float, float, float, float, bool]
VIEWS: dict[str, View] = {}
for _m in (False, True):
    _f = "m" if _m else ""
    VIEWS[f"id{_f}"] = (1.0, 0.0, 0.0, 0.0, _m)
    for _dx, _dy in ((-2, -2), (-2, 2), (2, -2), (2, 2)):
        VIEWS[f"sh{_dx:+d}{_dy:+d}{_f}"] = (1.0, 0.0, _dx, _dy, _m)
    for _s in (0.85, 0.9, 0.95, 1.05, 1.1, 1.15):
        VIEWS[f"sc{_s}{_f}"] = (_s, 0.0, 0.0, 0.0, _m)
    for _r in (-10.0, -5.0, 5.0, 10.0):
        VIEWS[f"rot{_r:+.0f}{_f}"] = (1.0, _r, 0.0, 0.0, _m)



def mirrored(*views: str) -> list[str]:
    """Each named view followed by its mirror: mirrored("id", "sc0.9") -> [id, idm, sc0.9, sc0.9m]."""
    return [f"{v}{m}" for v in views for m in ("", "m")]


TTA_SETS: dict[str, list[str]] = {
    "none": ["id"],
    "flip": mirrored("id"),
    # four diagonal 2-px shifts: a ten-crop that does not shrink the face
    "shift": mirrored("id", "sh-2-2", "sh-2+2", "sh+2-2", "sh+2+2"),
    # parts of scale-rot (6 views each): cheaper points of the cost/accuracy table (scripts/quant_pareto.py)
    "scale": mirrored("id", "sc0.9", "sc1.1"),
    "rot": mirrored("id", "rot-10", "rot+10"),
    # zoom 0.9/1.1 and rotation -10/+10 degrees (10 views)
    "scale-rot": mirrored("id", "sc0.9", "sc1.1", "rot-10", "rot+10"),
    # zoom 0.85-1.15 in 0.05 steps and rotation -10/-5/+5/+10 degrees (22 views)
    "scale-rot-wide": mirrored("id", "sc0.85", "sc0.9", "sc0.95", "sc1.05", "sc1.1", "sc1.15",
                               "rot-10", "rot-5", "rot+5", "rot+10"),
}
TTA_MODES = tuple(TTA_SETS)
TTA_VIEW_COUNT = {k: len(v) for k, v in TTA_SETS.items()}
_GRIDS: dict[tuple, torch.Tensor] = {}


def _grid(view: View, h: int, w: int) -> torch.Tensor:
    """The sampling grid of one view for an h x w image, (1, h, w, 2), cached; a constant in an ONNX graph."""
    key = (view, h, w)
    if key not in _GRIDS:
        scale, rot, dx, dy, _ = view
        a = math.radians(rot)
        c, s = math.cos(a) / scale, math.sin(a) / scale
        theta = torch.tensor([[[c, -s, -dx * 2 / w], [s, c, -dy * 2 / h]]], dtype=torch.float32)
        _GRIDS[key] = F.affine_grid(theta, [1, 1, h, w], align_corners=False)
    return _GRIDS[key]


def warp(x: torch.Tensor, view: View) -> torch.Tensor:
    """(N,1,H,W) raw pixels seen through one view."""
    scale, rot, dx, dy, mirror = view
    if mirror:
        x = torch.flip(x, dims=[3])
    if scale == 1.0 and rot == 0.0 and dx == 0.0 and dy == 0.0:
        return x
    if scale == 1.0 and rot == 0.0 and float(dx).is_integer() and float(dy).is_integer():
        # whole-pixel shift: replicate-pad and crop (exactly what bilinear sampling with border padding gives)
        p = int(max(abs(dx), abs(dy)))
        h, w = x.shape[2], x.shape[3]
        pad = F.pad(x, (p, p, p, p), mode="replicate")
        return pad[:, :, p - int(dy):p - int(dy) + h, p - int(dx):p - int(dx) + w]
    g = _grid(view, int(x.shape[2]), int(x.shape[3])).to(x.device, x.dtype)
    return F.grid_sample(x, g.expand(x.shape[0], -1, -1, -1), mode="bilinear", padding_mode="border",
                         align_corners=False)


def tta_views(x: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """Views of a (N,1,H,W) batch for a TTA mode (see TTA_SETS): none -> [x]; flip -> [x, mirror];
    shift -> those two plus four diagonal 2-px shifts and their mirrors (10 views); scale -> x, mirror and
    the zoomed (0.9, 1.1) views with mirrors (6); rot -> the same with rotations -10, +10 degrees (6);
    scale-rot -> x, mirror and the zoomed (0.9, 1.1) and rotated (-10, +10 degrees) views with their mirrors (10 views);
    scale-rot-wide -> six zooms and four rotations, mirrored (22 views)."""
    if mode not in TTA_SETS:
        raise ValueError(f"unknown TTA mode {mode!r}; choose one of {', '.join(TTA_MODES)}")
    return [warp(x, VIEWS[v]) for v in TTA_SETS[mode]]


class Predictor(nn.Module):
    """Raw 0..255 pixels (N,1,48,48) -> probabilities (N,7): members x TTA views, softmax(logits / T), mean."""

    def __init__(self, members: list[nn.Module] | nn.Module, tta: str = "none", temperature: float = 1.0,
                 with_uncalibrated: bool = False, class_prior: dict[str, float] | None = None):
        """``class_prior``: log offsets by emotion name (e.g. ``{"neutral": -0.5}``) applied to the averaged
        probabilities, p_k x e^b_k renormalised: a decision prior, not a calibration (both outputs get it)."""
        super().__init__()
        self.with_uncalibrated = with_uncalibrated  # also return the T=1 probabilities (for the model card)
        if isinstance(members, nn.Module):
            members = [members]
        self.members = nn.ModuleList(members)
        self.tta = tta
        tta_views(torch.zeros(1, 1, 4, 4), tta)  # validate the mode early
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.class_prior = check_class_prior(class_prior)
        self.register_buffer("prior", torch.tensor([self.class_prior.get(e, 0.0) for e in EMOTIONS]).exp())

    def forward(self, x: torch.Tensor):
        views = tta_views(x, self.tta)
        n = x.shape[0]
        batch = torch.cat(views, 0) if len(views) > 1 else x
        probs, raw = None, None
        for m in self.members:
            logits = m(batch)
            p = F.softmax(logits / self.temperature, dim=1).reshape(len(views), n, -1).mean(0)
            probs = p if probs is None else probs + p
            if self.with_uncalibrated:
                r = F.softmax(logits, dim=1).reshape(len(views), n, -1).mean(0)
                raw = r if raw is None else raw + r
        probs = self._prior(probs / len(self.members))
        if self.with_uncalibrated:
            return probs, self._prior(raw / len(self.members))
        return probs

    def _prior(self, p: torch.Tensor) -> torch.Tensor:
        if not self.class_prior:
            return p  # the graph of a model without a prior is unchanged
        p = p * self.prior
        return p / p.sum(dim=1, keepdim=True)


def check_class_prior(prior: dict[str, float] | None) -> dict[str, float]:
    """The non-zero offsets of ``prior`` by emotion name; ValueError naming an unknown emotion or a bad value."""
    out = {}
    for k, v in (prior or {}).items():
        if k not in EMOTIONS:
            raise ValueError(f"class prior {k!r}: not one of {', '.join(EMOTIONS)}")
        if not math.isfinite(float(v)) or abs(float(v)) > 10:
            raise ValueError(f"class prior {k}={v}: give a log offset between -10 and 10")
        if float(v) != 0.0:
            out[k] = float(v)
    return out
