"""Test-time views: the warps, the CLI's list of modes, and a scale-rot ensemble exported to ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ferkit.cli import TTA_CHOICES
from ferkit.models import create_model
from ferkit.models.tta import TTA_MODES, TTA_SETS, VIEWS, Predictor, tta_views, warp


def _real_batch(fer_root, n=6) -> torch.Tensor:
    from ferkit.data import load_split

    imgs = load_split(fer_root, "private").images
    idx = np.linspace(0, len(imgs) - 1, n).astype(int)
    return torch.from_numpy(imgs[idx]).unsqueeze(1).float()


def test_cli_offers_exactly_the_tta_modes():
    assert TTA_CHOICES == list(TTA_MODES)
    assert all(v in VIEWS for vs in TTA_SETS.values() for v in vs)


def test_whole_pixel_shift_equals_bilinear_border_warp(fer_root):
    x = _real_batch(fer_root)
    for name in ("sh-2-2", "sh+2-2m", "sh-2+2", "sh+2+2m"):
        scale, rot, dx, dy, mirror = VIEWS[name]
        src = torch.flip(x, dims=[3]) if mirror else x
        theta = torch.tensor([[[1.0, 0, -dx * 2 / 48], [0, 1.0, -dy * 2 / 48]]]).expand(len(x), 2, 3)
        ref = F.grid_sample(src, F.affine_grid(theta, list(x.shape), align_corners=False), mode="bilinear",
                            padding_mode="border", align_corners=False)
        assert torch.allclose(warp(x, VIEWS[name]), ref, atol=1e-3), name
    # a 2-px shift to the right moves the content right: column 10 of the view is column 8 of the image
    assert torch.equal(warp(x, (1.0, 0.0, 2, 0, False))[..., 10], x[..., 8])


def test_scale_rot_views_are_distinct_and_keep_the_pixel_range(fer_root):
    x = _real_batch(fer_root)
    views = tta_views(x, "scale-rot")
    assert len(views) == 10 and torch.equal(views[0], x) and torch.equal(views[1], torch.flip(x, dims=[3]))
    for v in views:
        assert v.shape == x.shape and v.min() >= 0 and v.max() <= 255
    for i in range(len(views)):
        for j in range(i):
            assert (views[i] - views[j]).abs().mean() > 1.0, (TTA_SETS["scale-rot"][i], TTA_SETS["scale-rot"][j])
    with pytest.raises(ValueError, match="unknown TTA mode"):
        tta_views(x, "tenfold")


def test_scale_rot_ensemble_exports_to_onnx_with_any_batch(fer_root, tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    members = [create_model("fernet_s").eval(), create_model("fernet_s").eval()]
    pred = Predictor(members, "scale-rot", 1.3).eval()
    x = _real_batch(fer_root, 5)
    out = tmp_path / "sr.onnx"
    torch.onnx.export(pred, (x[:2],), str(out), input_names=["pixels"], output_names=["probs"],
                      dynamic_axes={"pixels": {0: "n"}, "probs": {0: "n"}}, opset_version=17, dynamo=False)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        for n in (1, 5):
            ref = pred(x[:n]).numpy()
            got = sess.run(None, {"pixels": x[:n].numpy()})[0]
            assert got.shape == (n, 7) and np.abs(got - ref).max() < 1e-4
