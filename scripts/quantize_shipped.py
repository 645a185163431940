"""Rebuild the v1 int8 files (FER2013 labels) from the float-arithmetic files they replaced: ``ferkit-fer2013.onnx``
(the v1 `default`, shipped as `fer2013`) and v1's `fast` (written to ``--fast-out``: it no longer ships; it is
where today's `fast` starts from, scripts/rebuild_shipped.sh).

    python scripts/quantize_shipped.py --data ../shared/fer2013 [--pareto results/quant-pareto.json]
    # as run for the shipped files (fast's network: scripts/thin_fast.py, see MODEL_CARD.md)
    python scripts/quantize_shipped.py --data ../shared/fer2013 --pareto results/quant-pareto.json \
        --fast-from runs/thin/fernet_mt-best.pt

1. The float files (git revision ``--source-rev``, the last one whose shipped files computed in float32)
   are read back into torch members (ferkit.onnx_members: exact, checked below to 1e-4).
2. ``default``: the point chosen by scripts/quant_pareto.py (members and views from ``--pareto``; without
   it the old file's members and views), exported with ``ferkit export ... --temperature auto --quantize int8
   --float-first-conv``: each member's first conv (the one reading the pixels) stays float32, chosen by a
   label-free rule (closest to the float32 graph on PublicTest; MODEL_CARD.md).
3. ``fast``: one network, no views, ``--quantize int8`` (all convs: the same rule kept it so): the float
   file's network, or ``--fast-from CKPT`` (the shipped one: fernet_mt, scripts/thin_fast.py).
Each export refuses (and leaves the shipped file alone) when int8 loses more than ``--max-drop`` PublicTest
points against float32. The commands are printed; ``--work`` keeps the rebuilt checkpoints.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = "src/ferkit/weights"
SOURCE_REV = "5117c1d"  # last commit whose shipped files compute in float32 (int8/float16 weight storage)


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def ferkit(args: list[str]) -> None:
    from ferkit.cli import main

    print("$ ferkit " + " ".join(args), flush=True)
    if main(args) != 0:
        raise SystemExit(f"ferkit {args[0]} failed")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--source-rev", default=SOURCE_REV)
    ap.add_argument("--pareto", help="results/quant-pareto.json: its choice sets the default's members and views")
    ap.add_argument("--work", help="folder for the source files and rebuilt checkpoints (default: a temp dir)")
    ap.add_argument("--only", choices=["default", "fast"])
    ap.add_argument("--fast-from", help="checkpoint exported as `fast` (default: the float file's own network)")
    ap.add_argument("--fast-out", default="runs/v1/ferkit-fast.onnx", help="where v1's fast goes (it no longer ships)")
    ap.add_argument("--calib-n", default="512")
    ap.add_argument("--max-drop", default="0.5")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(a.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        py = sys.executable
        for name, runs in (("default", None), ("fast", ["fast"])):
            src = work / f"float-{name}.onnx"
            blob = subprocess.run(["git", "show", f"{a.source_rev}:{WEIGHTS}/ferkit-{name}.onnx"], cwd=REPO,
                                  check=True, capture_output=True).stdout
            src.write_bytes(blob)
            run([py, "scripts/onnx_members.py", str(src), "--out", str(work / "members"), "--check", a.data,
                 "--check-n", "64"] + (["--names", *runs] if runs else []))
        common = ["--temperature", "auto", "--calib-data", a.data, "--parity-data", a.data, "--quantize", "int8",
                  "--quant-data", a.data, "--calib-n", a.calib_n, "--max-drop", a.max_drop]
        if a.only in (None, "default"):
            if a.pareto:
                ch = json.loads(Path(a.pareto).read_text())["choice"]
                members, tta = ch["members"], ch["views"]
            else:
                members, tta = ["kin5", "fm5", "kin5c"], "scale-rot"
            ferkit(["export", *[str(work / "members" / m / "best.pt") for m in members],
                 "--out", f"{WEIGHTS}/ferkit-fer2013.onnx", "--tta", tta, "--float-first-conv", *common])
        if a.only in (None, "fast"):
            ferkit(["export", a.fast_from or str(work / "members" / "fast" / "best.pt"),
                 "--out", a.fast_out, "--tta", "none", *common])
    return 0


if __name__ == "__main__":
    sys.exit(main())
