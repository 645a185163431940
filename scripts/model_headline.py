"""Write src/ferkit/weights/headline.json: the model card's headline numbers for each shipped ONNX file,
keyed by the file's sha256, so that `ferkit serve`'s GET /v1/model can report them for the exact file loaded.

Reads results/model-card-measurements.json (written by scripts/model_card.py, which calls this at its end)
and refuses when a shipped file's size differs from the one that was measured.

    python scripts/model_headline.py
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEASURED = REPO / "results" / "model-card-measurements.json"
OUT = REPO / "src" / "ferkit" / "weights" / "headline.json"


def write_headline(measured: dict | None = None, out: Path = OUT) -> dict:
    sys.path.insert(0, str(REPO / "src"))
    from ferkit.weights import list_shipped

    measured = measured if measured is not None else json.loads(MEASURED.read_text())
    models = {}
    for name, path in list_shipped().items():
        m = measured.get(name)
        if m is None:
            raise SystemExit(f"{MEASURED}: no measurements for the shipped model {name!r}; rerun scripts/model_card.py")
        size_mb = path.stat().st_size / 1e6
        if abs(size_mb - float(m["stats"]["size_mb"])) > 1e-5:
            raise SystemExit(f"{path}: {size_mb:.6f} MB but {m['stats']['size_mb']} MB was measured; "
                             "rerun scripts/model_card.py")
        rep = m.get("report", {})
        models[name] = {
            "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "private_test": round(m["private"], 6), "public_test": round(m["public"], 6),
            "private_test_without_train_leaks": round(m["private_clean"], 6),
            "macro_f1_private": round(rep["macro_f1"], 6) if "macro_f1" in rep else None,
            "ferplus_private_test": (round(m["ferplus"]["private"]["majority"]["accuracy"], 6)
                                     if m.get("ferplus") else None),
            "trained_labels": m["stats"]["meta"].get("trained_labels", "fer2013"),
            "ece_private": round(m["ece_private"], 6), "params": m["stats"]["params"], "macs": m["stats"]["macs"],
            "faces_per_second": round(rep["n"] / m["seconds_private"], 1) if rep.get("n") else None,
        }
    table = {"source": "MODEL_CARD.md (scripts/model_card.py -> results/model-card-measurements.json); "
                       "FER2013 official protocol: PrivateTest reported, PublicTest used for selection",
             "speed_note": "faces_per_second: onnxruntime on PrivateTest, 2 threads, batch 256, 48x48 crops (no "
                           "detection), on the machine that wrote MODEL_CARD.md",
             "models": models}
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=1) + "\n")
    os.replace(tmp, out)
    return table


if __name__ == "__main__":
    t = write_headline()
    print(f"{OUT.relative_to(REPO)}: " + ", ".join(f"{k} {v['private_test']:.4f}" for k, v in t["models"].items()))
