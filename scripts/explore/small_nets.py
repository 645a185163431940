"""int8 accuracy of trained networks smaller than `fast` (the candidates for a faster `fast`), as `fast` would
ship them: one network, no views, `ferkit export --quantize int8` (same calibration as the shipped files).

    python scripts/explore/small_nets.py --data ../shared/fer2013 --json results/small-nets.json runs/*/best-slim.pt
    # and the reference: fast's old network (fernet_m) read back from its float file (scripts/quantize_shipped.py
    # --work W: W/members/fast/best.pt), and today's fast (runs/thin/fernet_mt/best.pt, scripts/thin_fast.py)

The checkpoints come from scripts/explore/gpu_session.sh (their configs, logs and float evaluations are kept in
results/gpu-h200-2026-11-26-s*/; the checkpoints themselves are not committed). For each: the export's own
float32-vs-int8 check on PublicTest, then the int8 file on PrivateTest. Reported, not used to choose.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    import onnxruntime as ort

    from ferkit.checkpoint import load_checkpoint
    from ferkit.data import load_split
    from ferkit.export import export_onnx
    from ferkit.session import session_options

    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    pri = load_split(a.data, "private")
    out = json.loads(Path(a.json).read_text()) if Path(a.json).exists() else {}
    for c in a.checkpoints:
        run = Path(c).parent.name
        ck = load_checkpoint(c)
        with tempfile.TemporaryDirectory() as tmp:
            dst = Path(tmp) / "int8.onnx"
            res = export_onnx([c], dst, tta="none", quantize="int8", quant_data=a.data, max_drop=100.0,
                              log=lambda *_: None)
            s = ort.InferenceSession(str(dst), session_options(), providers=["CPUExecutionProvider"])
            p = np.concatenate([s.run(["probs"], {"pixels": pri.images[i:i + 512, None].astype(np.float32)})[0]
                                for i in range(0, len(pri), 512)])
        q = res["quantization"]
        cfg = ck.get("config", {})  # a network read back from a shipped file has no training config
        out[run] = {"model": ck["model"], "kd_alpha": cfg.get("kd_alpha", 0.0), "seed": cfg.get("seed"),
                    "public_float32": q["float32_accuracy"], "public_int8": q["int8_accuracy"],
                    "private_int8": float((p.argmax(1) == pri.labels).mean())}
        print(run, json.dumps(out[run]), flush=True)
        tmp = Path(a.json).with_name(f".{Path(a.json).name}.tmp")  # the file accumulates runs: never half-written
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(a.json)


if __name__ == "__main__":
    main()
