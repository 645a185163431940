"""``ferkit export``: checkpoint(s) to one ONNX file, views and temperature inside, checked (torch)."""

from __future__ import annotations

import argparse
import json
import sys

from .export_keras import add_keras_options, run_keras
from .options import TTA_CHOICES, add_quiet, describe_default, need_torch


def add_parser(sub):
    p = sub.add_parser(
        "export", help="export checkpoint(s) to ONNX (an ensemble if several), with parity check",
        description="Write one ONNX file from one or more training checkpoints (several = an ensemble, "
                    "probabilities averaged). Test-time views (--tta) and the softmax temperature go inside "
                    "the graph, so the file takes raw 48x48 gray pixels and returns 7 probabilities; "
                    "`ferkit predict --model FILE.onnx` and `ferkit evaluate FILE.onnx` use it without torch. "
                    "With --parity-data the ONNX output is checked against torch on real images. A Keras model "
                    "(the notebook's emotiondetector.h5, .keras, .json) is converted to ONNX without torch; a "
                    "'seed' checkpoint can be written as the notebook's Keras .h5 + .json (--format keras).")
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                   help="training checkpoints (runs/<name>/best.pt); several make an ensemble")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="output .onnx file (written atomically); with --format keras NAME.h5, and NAME.json beside it")
    p.add_argument("--tta", default="none", choices=TTA_CHOICES, help="views averaged inside the graph")
    p.add_argument("--temperature", default="1.0", type=_temperature,
                   help="softmax temperature baked into the graph: a number, or 'auto' to fit it on the public "
                        "split of --calib-data")
    p.add_argument("--calib-data", help="dataset for temperature fitting (split public)")
    p.add_argument("--class-prior", metavar="EMOTION=B", action="append", type=_prior, default=[],
                   help="multiply one class's averaged probability by e^B and renormalise, inside the graph (a "
                        "decision prior chosen on development data, e.g. neutral=-0.25; repeatable)")
    p.add_argument("--parity-data", help="dataset whose private split is used for the torch/ONNX parity check")
    p.add_argument("--opset", type=int, default=17,
                   help="ONNX operator-set version of the graph; onnxruntime >= 1.16 reads 17 (lower it only for "
                        "an older runtime)")
    p.add_argument("--weights", choices=["float32", "float16", "int8"], default="float32",
                   help="how weights are stored in the file: float16 halves the size, int8 (per-channel) "
                        "quarters it; inference runs in float32 either way")
    p.add_argument("--half-weights", action="store_true", help="same as --weights float16")
    q = p.add_argument_group("int8 arithmetic (onnxruntime static quantisation, QDQ, per-channel)")
    q.add_argument("--quantize", choices=["int8"],
                   help="compute in int8 (weights stored in int8 too; leave --weights at float32)")
    q.add_argument("--quant-data", help="dataset: its train split calibrates, its public split checks accuracy")
    q.add_argument("--calib-n", type=int, default=512, help="calibration images, stratified by class")
    q.add_argument("--calib-seed", type=int, default=0, help="seed of the stratified draw of calibration images")
    describe_default(q.add_argument("--quant-check-n", type=int, help="PublicTest images for the float32/int8 check"),
                     "all")
    q.add_argument("--max-drop", type=float, default=0.5,
                   help="refuse when int8 loses more PublicTest accuracy points than this")
    q.add_argument("--float-first-conv", action="store_true",
                   help="keep the convolution that reads the pixels (each member's first) in float32: closer to "
                        "the float32 graph, some speed and memory spent (the shipped default uses it; MODEL_CARD.md, "
                        "benchmarks/RESULTS.md section 6)")
    add_keras_options(p)
    add_quiet(p, "progress lines and JSON summary; errors still go to stderr")
    p.set_defaults(func=cmd_export)


def _temperature(s: str) -> float | str:
    if s == "auto":
        return s
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is neither a number nor 'auto'") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{s!r}: must be > 0")
    return v


def _prior(s: str) -> tuple[str, float]:
    from ..emotions import EMOTIONS

    name, eq, val = s.partition("=")
    if not eq or name not in EMOTIONS:
        raise argparse.ArgumentTypeError(f"{s!r}: give EMOTION=B with EMOTION one of {', '.join(EMOTIONS)}")
    try:
        b = float(val)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r}: B must be a number (a log offset, e.g. -0.25)") from None
    if not -10 <= b <= 10:
        raise argparse.ArgumentTypeError(f"{s!r}: B must lie between -10 and 10")
    return name, b


def check_export_outputs(args) -> None:
    """The output rules (:mod:`ferkit.outputs`) for ``--out``: an .onnx name (the suffix is how predict,
    evaluate and serve tell an ONNX model from a checkpoint), never a checkpoint or dataset of this run."""
    from ..outputs import OutputError, check_outputs, safe_text

    if not str(args.out).lower().endswith(".onnx"):
        raise OutputError(f"--out {safe_text(str(args.out))}: not a .onnx file name; the file is ONNX and "
                          "predict, evaluate and serve know it by that suffix (e.g. --out model.onnx)")
    inputs = {c: "CHECKPOINT" for c in args.checkpoints}
    for opt in ("calib_data", "parity_data", "quant_data"):
        if getattr(args, opt):
            inputs.setdefault(getattr(args, opt), "--" + opt.replace("_", "-"))
    check_outputs({"--out": args.out}, inputs)


def cmd_export(args) -> int:
    if args.quiet:  # nothing on stdout (-q): the summary and the progress lines both go there
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            return _export(args)
    return _export(args)


def _export(args) -> int:
    done = run_keras(args)  # a Keras file in, or --format keras out (commands/export_keras.py)
    if done is not None:
        return done
    check_export_outputs(args)  # before torch: a wrong --out is said at once
    need_torch("export")
    from ..export import ExportCheckFailed, export_onnx

    t = args.temperature
    try:
        res = export_onnx(args.checkpoints, args.out, tta=args.tta, temperature=t, calib_data=args.calib_data,
                          parity_data=args.parity_data, opset=args.opset, half_weights=args.half_weights,
                          weights=args.weights, quantize=args.quantize, quant_data=args.quant_data,
                          calib_n=args.calib_n, calib_seed=args.calib_seed, quant_check_n=args.quant_check_n,
                          max_drop=args.max_drop, float_first_conv=args.float_first_conv,
                          class_prior=dict(args.class_prior))
    except ExportCheckFailed as e:
        print(f"ferkit export: error: {e}; the previous file (if any) is unchanged", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in res.items() if k != "fitted"} | {"fitted": res["fitted"]}, indent=2))
    return 0
