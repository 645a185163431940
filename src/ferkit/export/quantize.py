"""Int8 arithmetic for exported models: onnxruntime static quantisation (QDQ format, int8 per-channel
weights, uint8 activations), calibrated on a stratified, seeded sample of Training images, then checked
against the float32 graph on real images (accuracy on a labelled split, label agreement, largest
probability difference) before the file is accepted.

Only the convolutional part is quantised (Conv, Relu, MaxPool); the last linear layer, the views
(GridSample, flips), softmax, temperature and the ensemble mean stay in float32: they are a small
part of the cost (see benchmarks/RESULTS.md) and their outputs are probabilities, where int8 would lose
resolution for nothing.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Relu must be listed (else every conv ends in DequantizeLinear -> QuantizeLinear float round trips). The last
# layer (Gemm, 384 -> 7) stays float32: its int8 output gave the logits 256 levels, and equal probabilities for
# two classes on 4 of 1,000 PublicTest faces (fast); it costs nothing measurable.
QUANT_OPS = ["Conv", "Relu", "MaxPool"]


class QuantizationRejected(RuntimeError):
    """The int8 graph lost more accuracy than allowed; the message says by how much."""


def stratified_sample(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of about ``n`` items drawn without replacement, each class in proportion to its share of
    ``labels`` (at least one per class present), seeded; sorted."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    n = min(int(n), len(labels))
    quota = np.maximum(1, np.round(counts / counts.sum() * n).astype(int))
    picked = [rng.choice(np.flatnonzero(labels == c), min(q, cnt), replace=False)
              for c, q, cnt in zip(classes, quota, counts, strict=True)]
    return np.sort(np.concatenate(picked))


def first_convs(path: str | os.PathLike) -> list[str]:
    """Names of the convolutions that read the pixels (one input channel): one per ensemble member."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    dims = {i.name: list(i.dims) for i in g.initializer}
    return [n.name for n in g.node if n.op_type == "Conv" and len(dims.get(n.input[1], [])) == 4
            and dims[n.input[1]][1] == 1]


class _Reader:
    """onnxruntime CalibrationDataReader over (N, 48, 48) raw pixels, in batches."""

    def __init__(self, images: np.ndarray, input_name: str = "pixels", batch: int = 32):
        x = np.asarray(images, dtype=np.float32)[:, None]
        self._batches = iter([{input_name: x[i:i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self._batches, None)


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, calib_images: np.ndarray,
                  per_channel: bool = True, metadata: dict | None = None,
                  float_nodes: list[str] | None = None) -> None:
    """Static QDQ quantisation of the float32 ONNX file ``src`` into ``dst``: the source's metadata is
    kept and ``metadata`` added. Calibration ranges: min/max over every one of ``calib_images`` (raw 48x48
    pixels). ``float_nodes``: names of nodes left in float32.

    onnxruntime's ``CalibMaxIntermediateOutputs`` option is not used: in onnxruntime 1.32 it drops the batches
    it clears instead of folding them in (the calibration kept only the last partial batch), and memory is small
    without it (the calibration model outputs one min and one max per tensor and batch)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=Path(dst).parent) as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), _Reader(calib_images), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=QUANT_OPS, calibrate_method=CalibrationMethod.MinMax,
                        nodes_to_exclude=list(float_nodes or []))
    # quant_pre_process keeps the graph's metadata only sometimes: copy it over from the source
    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    model = onnx.load(str(dst))
    del model.metadata_props[:]
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(model, str(dst))


@dataclass
class QuantReport:
    n: int
    split: str
    float_accuracy: float
    int8_accuracy: float
    agreement: float
    max_prob_diff: float
    float_seconds: float
    int8_seconds: float

    @property
    def drop(self) -> float:
        return self.float_accuracy - self.int8_accuracy

    def line(self) -> str:
        return (f"{self.split} ({self.n} images): float32 {self.float_accuracy:.2%}, int8 {self.int8_accuracy:.2%} "
                f"(drop {self.drop * 100:+.2f} points); labels agree on {self.agreement:.2%}, largest probability "
                f"difference {self.max_prob_diff:.3f}; {self.n / self.float_seconds:,.0f} vs "
                f"{self.n / self.int8_seconds:,.0f} faces/s")


def compare(float_path: str | os.PathLike, int8_path: str | os.PathLike, images: np.ndarray, labels: np.ndarray,
            split: str, batch: int = 64) -> QuantReport:
    """Run both files on the same real images and compare them."""
    import onnxruntime as ort

    x = np.asarray(images, dtype=np.float32)[:, None]
    probs, secs = [], []
    for path in (float_path, int8_path):
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        t0 = time.perf_counter()
        probs.append(np.concatenate([s.run(["probs"], {"pixels": x[i:i + batch]})[0]
                                     for i in range(0, len(x), batch)]))
        secs.append(time.perf_counter() - t0)
    pf, pq = probs
    return QuantReport(len(x), split, float((pf.argmax(1) == labels).mean()), float((pq.argmax(1) == labels).mean()),
                       float((pf.argmax(1) == pq.argmax(1)).mean()), float(np.abs(pf - pq).max()), *secs)
