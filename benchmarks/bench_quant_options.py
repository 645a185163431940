"""onnxruntime quantisation settings for `fast`'s network, side by side with the shipped setting (QDQ, per-channel
int8 weights, uint8 activations; Conv, Relu and MaxPool quantised): speed and PublicTest accuracy of each.
Prints a markdown table; not a test.

    .venv/bin/python benchmarks/bench_quant_options.py [--source-rev 5117c1d] [--seconds 2.5] [--repeats 3]

The source is the float32 `fast` file of git revision ``--source-rev``; calibration as `ferkit export
--quantize int8` (512 Training images, stratified, seed 0). faces/s at batch 64 and ms at batch 1 on 2
threads, rows interleaved, best of the repeats.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from bench_classify import rate, session_fn  # this folder is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
FER = REPO.parent / "shared" / "fer2013"


def main() -> None:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ferkit.data import load_split
    from ferkit.quantize import QUANT_OPS, _Reader, stratified_sample
    from ferkit.session import session_options

    ap = argparse.ArgumentParser()
    ap.add_argument("--source-rev", default="5117c1d")
    ap.add_argument("--data", default=str(FER))
    ap.add_argument("--seconds", type=float, default=2.5)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    train, pub = load_split(a.data, "train"), load_split(a.data, "public")
    calib = train.images[stratified_sample(train.labels, 512, 0)]
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "float.onnx"
    src.write_bytes(subprocess.run(["git", "show", f"{a.source_rev}:src/ferkit/weights/ferkit-fast.onnx"], cwd=REPO,
                                   check=True, capture_output=True).stdout)
    pre = tmp / "pre.onnx"
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]

    def q(name, fmt=QuantFormat.QDQ, per_channel=True, ops=tuple(QUANT_OPS), exclude=()):
        dst = tmp / f"{name}.onnx"
        quantize_static(str(pre), str(dst), _Reader(calib), quant_format=fmt, per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=list(ops),
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=list(exclude))
        return dst

    files = {
        "shipped setting: QDQ, per-channel, Conv/Relu/MaxPool": q("qdq"),
        "QOperator format": q("qop", fmt=QuantFormat.QOperator),
        "per-tensor weights": q("pt", per_channel=False),
        "+ last layer (Gemm) in int8": q("gemm", ops=(*QUANT_OPS, "Gemm")),
        "+ global average pooling in int8": q("gap", ops=(*QUANT_OPS, "GlobalAveragePool")),
        "first conv left in float32": q("conv1", exclude=convs[:1]),
        "float32 (no quantisation)": src,
    }
    sess = {k: ort.InferenceSession(str(p), session_options(2), providers=["CPUExecutionProvider"])
            for k, p in files.items()}
    x = pub.images[:64].astype(np.float32)

    acc, probs = {}, {}
    for k, s in sess.items():
        probs[k] = np.concatenate([s.run(["probs"], {"pixels": pub.images[i:i + 512, None].astype(np.float32)})[0]
                                   for i in range(0, len(pub), 512)])
        acc[k] = float((probs[k].argmax(1) == pub.labels).mean())
    best = {k: [0.0, float("inf")] for k in sess}
    for _ in range(a.repeats):
        for k, s in sess.items():
            best[k][0] = max(best[k][0], rate(session_fn(s), 64, x, a.seconds))
            best[k][1] = min(best[k][1], 1000 / rate(session_fn(s), 1, x, a.seconds / 2))
    ref = probs["float32 (no quantisation)"].argmax(1)
    print("| setting | PublicTest | label agreement with float32 | faces/s, batch 64 | ms, batch 1 |")
    print("|---|---:|---:|---:|---:|")
    for k in sess:
        print(f"| {k} | {acc[k]:.2%} | {(probs[k].argmax(1) == ref).mean():.2%} | {best[k][0]:,.0f} "
              f"| {best[k][1]:.2f} |")


if __name__ == "__main__":
    main()
