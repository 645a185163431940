"""``ferkit export`` and Keras, both ways (:mod:`ferkit.keras`):

* ``ferkit export emotiondetector.h5 --out model.onnx``: a Keras model (``.h5``, ``.keras``, or the ``.json``
  beside its weights) to ferkit's ONNX contract; no torch. ``--labels`` and ``--input-scale`` say what the
  file cannot.
* ``ferkit export runs/seed/best.pt --out emotiondetector.h5`` (or ``--format keras``): a ``seed`` checkpoint
  as the notebook's ``.h5`` + ``.json`` pair; needs torch.

Errors exit 2 naming the file, and nothing is written (both writers write a temporary file and rename it).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .options import describe_default, need_torch

_MINE = ("format", "labels", "input_scale")
_NOT_OPTIONS = ("help", "checkpoints", "out", "func")


def add_keras_options(p) -> None:
    """Add --format, --labels and --input-scale to the export parser (call it last: it records the defaults of
    the ONNX-export options, which a Keras job refuses when they are changed)."""
    # argparse runs a string default through the option's type, as it does for a given value
    onnx_defaults = {a.dest: a.type(a.default) if isinstance(a.default, str) and a.type else a.default
                     for a in p._actions if a.dest not in _NOT_OPTIONS}
    describe_default(p.add_argument(
        "--format", choices=["onnx", "keras"], default=None,
        help="onnx, or keras: a 'seed' checkpoint as the Keras notebook's two files, --out NAME.h5 and NAME.json "
             "beside it (load_model(NAME.h5), or model_from_json + load_weights; input gray 48x48 / 255)"),
        "onnx; keras when --out ends in .h5")
    k = p.add_argument_group("a Keras model as CHECKPOINT (emotiondetector.h5, .keras, or the .json beside its "
                             ".h5): converted to ONNX without torch or TensorFlow")
    k.add_argument("--labels", metavar="ORDER",
                   help="the model's class order: 'sorted' (the notebook's folder order angry..surprise), "
                        "'fer2013' (fer2013.csv's 0..6), or 7 comma-separated names")
    describe_default(k._group_actions[-1], "the order stored in the file, else 'sorted' (the output says which)")
    k.add_argument("--input-scale", metavar="RANGE",
                   help="what the model was trained on: 0..1 (x / 255, the notebook's), 0..255 (raw), -1..1, or "
                        "a factor such as 1/127.5")
    describe_default(k._group_actions[-1], "0..1; 0..255 when the model starts with its own Rescaling layer")
    p.set_defaults(onnx_defaults=onnx_defaults)


def _changed(args) -> list[str]:
    return ["--" + k.replace("_", "-") for k, v in args.onnx_defaults.items() if getattr(args, k, v) != v]


def run_keras(args) -> int | None:
    """Handle the export if it involves Keras (exit code); None for the plain checkpoint -> ONNX export."""
    from ..keras.cache import is_keras_path

    keras_in = [c for c in args.checkpoints if is_keras_path(c)]
    fmt = args.format or ("keras" if str(args.out).lower().endswith(".h5") else "onnx")
    if keras_in:
        return _keras_to_onnx(args, keras_in, fmt)
    if fmt == "keras":
        return _seed_to_keras(args)
    if args.labels or args.input_scale:
        raise ValueError("--labels / --input-scale: only for a Keras model as input (emotiondetector.h5, .keras, "
                         ".json)")
    return None


def _keras_to_onnx(args, keras_in: list[str], fmt: str) -> int:
    from ..keras.cache import files_sha256, need_extra
    from ..keras.convert import keras_to_onnx
    from ..keras.reader import model_files
    from ..outputs import check_outputs

    src = keras_in[0]
    if len(args.checkpoints) != 1:
        raise ValueError(f"{src}: a Keras model is exported on its own (no ensemble with other files)")
    if fmt != "onnx" or not str(args.out).lower().endswith(".onnx"):
        raise ValueError(f"{src}: a Keras model is exported to ONNX: --out FILE.onnx (it is a Keras file already)")
    changed = _changed(args)
    if changed:
        raise ValueError(f"{', '.join(changed)}: not for a Keras model (it is converted as it is: one network, "
                         "float32; --labels and --input-scale apply)")
    need_extra(src)
    files = model_files(src)
    check_outputs({"--out": args.out}, {f: "MODEL" for f in files})
    t0 = time.perf_counter()
    info = keras_to_onnx(src, args.out, input_scale=args.input_scale, labels=args.labels, sha256=files_sha256(files))
    dt = time.perf_counter() - t0
    out = Path(args.out)
    print(f"ferkit export: {' + '.join(str(f) for f in files)} -> {out}: input {info.input_scale}; labels "
          f"{', '.join(info.labels)} ({info.labels_source})" + "".join(f"; {n}" for n in info.notes), file=sys.stderr)
    print(json.dumps({"path": str(out), "source": [str(f) for f in files], "input_scale": info.input_scale,
                      "labels": list(info.labels), "labels_source": info.labels_source, "notes": info.notes,
                      "seconds": round(dt, 3), "size_bytes": out.stat().st_size}, indent=2))
    return 0


def _seed_to_keras(args) -> int:
    from ..outputs import check_outputs

    if len(args.checkpoints) != 1:
        raise ValueError("--format keras: one 'seed' checkpoint (an ensemble has no Keras twin)")
    out = Path(args.out)
    if out.suffix.lower() != ".h5":
        raise ValueError(f"--out {out}: --format keras writes NAME.h5 and NAME.json beside it; give --out NAME.h5")
    changed = _changed(args)
    if changed or args.labels or args.input_scale:
        raise ValueError(f"{', '.join(changed or ['--labels/--input-scale'])}: not for --format keras (the "
                         "network is written as it is; the notebook's Keras model has no TTA or temperature)")
    json_out = out.with_suffix(".json")
    check_outputs({"--out": out, "--out's .json": json_out}, {args.checkpoints[0]: "CHECKPOINT"})
    need_torch("export --format keras")
    from ..keras.writer import KerasCheckFailed, write_keras

    try:
        res = write_keras(args.checkpoints[0], out, json_out, log=lambda msg: print(msg, file=sys.stderr))
    except KerasCheckFailed as e:
        print(f"ferkit export: error: {e}; the previous files (if any) are unchanged", file=sys.stderr)
        return 1
    print(json.dumps(res, indent=2))
    return 0
