"""ONNX export of one checkpoint or an ensemble, with TTA and temperature inside the graph.

Contract of every exported file (also written into the ONNX metadata):
input ``pixels`` N x 1 x 48 x 48 float32, raw grayscale values 0..255; output ``probs`` N x 7
probabilities in the order angry, disgust, fear, happy, neutral, sad, surprise.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint, model_from_checkpoint
from ..emotions import EMOTIONS
from ..models.tta import TTA_VIEW_COUNT, Predictor, tta_views

# The TTA views read the input's 48x48 size as Python numbers while tracing: constant by the ONNX contract
# (N x 1 x 48 x 48), so torch's TracerWarnings about it are noise a user cannot act on.
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"ferkit\.models\.tta")

CONTRACT = ("input 'pixels' N x 1 x 48 x 48 float32 raw grayscale 0..255 (normalisation inside the graph); "
            "output 'probs' N x 7 probabilities in the order " + ", ".join(EMOTIONS))


class ExportCheckFailed(RuntimeError):
    """A check of the new file failed (parity with torch, or the int8 accuracy limit); the target file
    was left as it was."""


@torch.no_grad()
def member_view_logits(members, images: np.ndarray, tta: str, batch_size: int = 512) -> torch.Tensor:
    """Logits (M, V, N, 7) of every member on every TTA view, for temperature fitting."""
    out = []
    for m in members:
        m.eval()
        per = []
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(images[i:i + batch_size]).unsqueeze(1).float()
            per.append(torch.stack([m(v) for v in tta_views(x, tta)]))
        out.append(torch.cat(per, 1))
    return torch.stack(out)


def fit_ensemble_temperature(logits: torch.Tensor, labels: np.ndarray) -> tuple[float, float, float]:
    """Temperature T minimising NLL of mean_{members,views} softmax(logits / T); returns (T, nll@1, nll@T)."""
    y = torch.from_numpy(labels).long()
    lg = logits.double()

    def nll(t: float) -> float:
        p = torch.softmax(lg / t, -1).mean((0, 1))
        return float(-torch.log(p[torch.arange(len(y)), y].clamp_min(1e-12)).mean())

    grid = np.exp(np.linspace(np.log(0.3), np.log(4.0), 200))
    vals = [nll(t) for t in grid]
    i = int(np.argmin(vals))
    return float(grid[i]), nll(1.0), float(vals[i])


def compress_weights(model, mode: str, min_elements: int = 1024):
    """Store large float32 initializers compactly, each followed by nodes that rebuild the float32 tensor
    under its original name; onnxruntime folds those nodes at load time, so inference runs in float32.

    - ``float16``: float16 + Cast (half the size).
    - ``int8``: conv (O, I, kh, kw) and Gemm weights as int8 with one float32 scale per output channel
      (symmetric, scale = max|w| / 127) + Cast + Mul: a quarter of the size, at most half a quantisation
      step of error per weight; other large tensors as float16.
    """
    import onnx
    from onnx import helper, numpy_helper

    def as_half(init, arr):
        half = numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16")
        return [half], [helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT)]

    def as_int8(init, arr):
        flat = arr.reshape(arr.shape[0], -1)
        scale = np.abs(flat).max(1) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.round(flat / scale[:, None]), -127, 127).astype(np.int8).reshape(arr.shape)
        qi = numpy_helper.from_array(q, init.name + "_int8")
        si = numpy_helper.from_array(scale.astype(np.float32).reshape((arr.shape[0],) + (1,) * (arr.ndim - 1)),
                                     init.name + "_scale")
        return [qi, si], [helper.make_node("Cast", [qi.name], [init.name + "_f"], to=onnx.TensorProto.FLOAT),
                          helper.make_node("Mul", [init.name + "_f", si.name], [init.name])]

    graph = model.graph
    new_inits, nodes_in = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32 or arr.size < min_elements:
            new_inits.append(init)
            continue
        inits, nodes = (as_int8 if mode == "int8" and arr.ndim in (2, 4) else as_half)(init, arr)
        new_inits += inits
        nodes_in += nodes
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes_in + nodes)
    return model


WEIGHT_STORAGE = {
    "float32": "float32",
    "float16": "float16 (computed in float32)",
    "int8": "int8 per-channel symmetric for conv/linear weights, float16 otherwise (computed in float32)",
}



def _labels_of(ckpt: dict) -> str:
    cfg = ckpt.get("config") or {}
    labels = str(cfg.get("labels") or "fer2013")
    soft, alpha = cfg.get("soft_labels"), float(cfg.get("kd_alpha") or 0)
    if labels == "fer2013" and soft and alpha > 0:
        source = ""
        try:  # the soft-label file says what it holds (FER+ votes, or a teacher's probabilities)
            with np.load(soft) as z:
                source = json.loads(str(z["meta"])).get("source", "") if "meta" in z else ""
        except (OSError, ValueError, KeyError):
            pass
        kind = "FER+ votes" if "FER+" in source else "teacher targets"
        plausible = re.search(r"plausible:([0-9.]+)", source)
        if plausible and alpha >= 1:
            return f"plausible:{plausible.group(1)} (FER+ votes + each FER2013 label a worker also gave)"
        if alpha >= 1:
            return "ferplus (FER+ votes)" if kind == "FER+ votes" else f"fer2013 ({kind} only)"
        return f"mix:{alpha:g} (FER2013 labels x {1 - alpha:g} + {kind} x {alpha:g})"
    return labels


def trained_labels(ckpts: list[dict]) -> str:
    """What the members learned from, for the file's metadata (``ferkit models``, ``GET /v1/model``):
    ``fer2013`` (the dataset's labels), ``ferplus`` (FER+ votes), ``mix:W ...``; members that differ are listed."""
    got = list(dict.fromkeys(_labels_of(c) for c in ckpts))
    return got[0] if len(got) == 1 else "; ".join(got)


def export_onnx(
    checkpoints: list[str | os.PathLike],
    out: str | os.PathLike,
    *,
    tta: str = "none",
    temperature: float | str = 1.0,
    calib_data: str | os.PathLike | None = None,
    calib_split: str = "public",
    parity_data: str | os.PathLike | None = None,
    parity_split: str = "private",
    parity_n: int = 512,
    use_ema: bool = True,
    opset: int = 17,
    half_weights: bool = False,
    weights: str = "float32",
    quantize: str | None = None,
    quant_data: str | os.PathLike | None = None,
    calib_n: int = 512,
    calib_seed: int = 0,
    quant_check_n: int | None = None,
    max_drop: float = 0.5,
    float_first_conv: bool = False,
    class_prior: dict[str, float] | None = None,
    extra_metadata: dict | None = None,
    log=print,
) -> dict:
    """Export checkpoints (one, or several as an averaged ensemble) to ONNX and check parity.

    ``quantize="int8"``: int8 arithmetic (static QDQ, per-channel; :mod:`ferkit.export.quantize`) calibrated on
    ``calib_n`` Training images of ``quant_data`` (stratified by class, ``calib_seed``), then compared with
    the float32 graph on its PublicTest split (``quant_check_n`` images, default all); refused with
    :class:`ExportCheckFailed` when the accuracy drop exceeds ``max_drop`` points. ``float_first_conv``: the
    convolution that reads the pixels (each member's first) stays float32. ``class_prior``: log offsets by
    emotion applied to the averaged probabilities (:class:`ferkit.models.tta.Predictor`), kept in the metadata.

    Every check runs on a temporary file next to ``out``; only a file that passed replaces ``out``.
    """
    import onnx

    from ..data import load_split

    if half_weights:
        weights = "float16"
    if weights not in WEIGHT_STORAGE:
        raise ValueError(f"weights {weights!r}: choose one of {', '.join(WEIGHT_STORAGE)}")
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize {quantize!r}: the only choice is int8")
    if quantize and weights != "float32":
        raise ValueError("--quantize int8 stores int8 weights itself: leave --weights at float32")
    if quantize and quant_data is None:
        raise ValueError("--quantize int8 needs --quant-data DIR (its train split calibrates, its public split "
                         "checks the accuracy)")
    ckpts = [load_checkpoint(c) for c in checkpoints]
    members = [model_from_checkpoint(c, use_ema=use_ema) for c in ckpts]
    fitted = None
    if temperature == "auto":
        if calib_data is None:
            raise ValueError("temperature 'auto' needs calibration data (--calib-data DIR, split public)")
        cal = load_split(calib_data, calib_split)
        t, nll1, nllt = fit_ensemble_temperature(member_view_logits(members, cal.images, tta), cal.labels)
        fitted = {"temperature": t, "nll_at_1": nll1, "nll_at_t": nllt, "split": calib_split, "n": len(cal)}
        log(f"temperature fitted on {calib_split} ({len(cal)} images): T={t:.3f}, NLL {nll1:.4f} -> {nllt:.4f}")
        temperature = t
    pred = Predictor(members, tta, float(temperature), with_uncalibrated=True, class_prior=class_prior).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    qtmp = out.with_name(f".{out.name}.{os.getpid()}.int8.tmp")
    try:
        dummy = torch.full((2, 1, 48, 48), 128.0)
        torch.onnx.export(pred, (dummy,), str(tmp), input_names=["pixels"],
                          output_names=["probs", "probs_uncalibrated"],
                          dynamic_axes={name: {0: "batch"} for name in ("pixels", "probs", "probs_uncalibrated")},
                          opset_version=opset, dynamo=False)
        model = onnx.load(str(tmp))
        if weights != "float32":
            model = compress_weights(model, weights)
        meta = {
            "ferkit_contract": CONTRACT,
            "labels": json.dumps(list(EMOTIONS)),
            "members": json.dumps([c["model"] for c in ckpts]),
            "checkpoints": json.dumps([f"{Path(c).parent.name}/{Path(c).name}" for c in checkpoints]),  # run/file
            "tta": tta,
            "views": str(TTA_VIEW_COUNT[tta]),
            "temperature": f"{float(temperature):.6f}",
            **({"class_prior": json.dumps(pred.class_prior)} if pred.class_prior else {}),
            "input_scale": "raw 0..255",
            "trained_labels": trained_labels(ckpts),
            "weights_storage": WEIGHT_STORAGE[weights],
            "arithmetic": "float32",
            **({k: str(v) for k, v in (extra_metadata or {}).items()}),
        }
        del model.metadata_props[:]
        for k, v in meta.items():
            p = model.metadata_props.add()
            p.key, p.value = k, v
        model.doc_string = CONTRACT
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        res = _parity(pred, tmp, out, weights, parity_data, parity_split, parity_n, log)
        final = tmp
        if quantize:
            res["quantization"] = _quantize_checked(tmp, qtmp, out, quant_data, calib_n, calib_seed, quant_check_n,
                                                    max_drop, log, float_first_conv)
            final = qtmp
        os.replace(final, out)
    finally:
        for t in (tmp, qtmp):
            t.unlink(missing_ok=True)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return res | {"path": str(out), "temperature": float(temperature), "fitted": fitted, "tta": tta,
                  "size_bytes": out.stat().st_size, "weights": weights, "quantize": quantize}


def _parity(pred, tmp: Path, out: Path, weights: str, parity_data, parity_split: str, parity_n: int, log) -> dict:
    """torch vs onnxruntime on real images when given, else on random pixels; raises ExportCheckFailed."""
    import onnxruntime as ort

    from ..data import load_split

    if parity_data is not None:
        imgs = load_split(parity_data, parity_split).images[:parity_n]
        source = f"{parity_split} split of {parity_data} ({len(imgs)} images)"
    else:
        imgs = np.random.default_rng(0).integers(0, 256, (64, 48, 48), dtype=np.uint8)
        source = "64 random images"
    x = imgs[:, None].astype(np.float32)
    with torch.no_grad():
        ref = pred(torch.from_numpy(x))[0].numpy()
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    t0 = time.perf_counter()
    got = sess.run(["probs"], {"pixels": x})[0]
    dt = time.perf_counter() - t0
    bad_ref, bad_got = int((~np.isfinite(ref).all(1)).sum()), int((~np.isfinite(got).all(1)).sum())
    if bad_ref or bad_got:  # NaN compares False with any limit: checked first, on its own
        raise ExportCheckFailed(f"{out}: not written: the model's output is not finite (NaN or infinity) on {source}: "
                                f"{bad_ref} image(s) in torch, {bad_got} in ONNX; the checkpoint is broken "
                                "(its weights or its normalisation hold NaN or infinity)")
    diff = float(np.abs(ref - got).max())
    agree = float((ref.argmax(1) == got.argmax(1)).mean())
    log(f"parity on {source}: max |torch - onnx| = {diff:.2e}, argmax agreement {agree:.4f}")
    limit = PARITY_LIMIT[weights]
    if diff > limit:
        raise ExportCheckFailed(f"{out}: not written: the ONNX output differs from torch by {diff:.2e} "
                                f"(> {limit:g}, {weights} weights) on {source}")
    return {"max_abs_diff": diff, "argmax_agreement": agree, "parity_source": source, "onnx_seconds": dt}


def _quantize_checked(src: Path, dst: Path, out: Path, quant_data, calib_n: int, calib_seed: int,
                      check_n: int | None, max_drop: float, log, float_first_conv: bool = False) -> dict:
    from ..data import load_split
    from .quantize import compare, first_convs, quantize_int8, stratified_sample

    train = load_split(quant_data, "train")
    idx = stratified_sample(train.labels, calib_n, calib_seed)
    meta = {"arithmetic": "int8 (static QDQ, per-channel int8 weights, uint8 activations)",
            "weights_storage": "int8 per-channel (QDQ)",
            "calibration": f"{len(idx)} Training images, stratified by class, seed {calib_seed}, min/max"}
    float_nodes = first_convs(src) if float_first_conv else []
    if float_nodes:
        meta["float_nodes"] = ", ".join(float_nodes)
    t0 = time.perf_counter()
    quantize_int8(src, dst, train.images[idx], metadata=meta, float_nodes=float_nodes)
    log(f"int8: calibrated on {len(idx)} Training images (stratified, seed {calib_seed}) in "
        f"{time.perf_counter() - t0:.0f} s")
    check = load_split(quant_data, "public")
    n = len(check) if not check_n else min(int(check_n), len(check))
    rep = compare(src, dst, check.images[:n], check.labels[:n], "PublicTest")
    log("int8 vs float32 on " + rep.line())
    info = {"calibration_images": len(idx), "calibration_seed": calib_seed, "float_nodes": float_nodes,
            "check_split": "public", "n": n,
            "float32_accuracy": rep.float_accuracy, "int8_accuracy": rep.int8_accuracy,
            "agreement": rep.agreement, "max_prob_diff": rep.max_prob_diff, "max_drop_points": max_drop}
    if rep.drop * 100 > max_drop:
        raise ExportCheckFailed(f"{out}: not written: int8 loses {rep.drop * 100:.2f} accuracy points on "
                                f"PublicTest ({rep.float_accuracy:.2%} -> {rep.int8_accuracy:.2%}, {n} images), "
                                f"more than the limit of {max_drop:g} (--max-drop)")
    return info


PARITY_LIMIT = {"float32": 1e-3, "float16": 5e-3, "int8": 5e-2}
