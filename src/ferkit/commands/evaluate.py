"""``ferkit evaluate``: accuracy, macro-F1, per-class table and confusion PNG of a model on a labelled dataset
(an ONNX model on onnxruntime, or a training checkpoint with torch), under the dataset's labels and, when FER+
votes are found, under the crowd's too."""

from __future__ import annotations

import sys
from pathlib import Path

from .options import STDOUT, TTA_CHOICES, add_json, add_quiet, describe_default, need_torch, say_model, write_json


def add_parser(sub):
    p = sub.add_parser(
        "evaluate", help="accuracy, macro-F1, per-class table and confusion PNG of a model on a labelled dataset",
        description="Evaluate a model on a labelled dataset (Kaggle folders, fer2013.csv or .npz): accuracy, "
                    "macro-F1, per-class precision/recall/F1, NLL/ECE, confusion matrix PNG, report.json. MODEL "
                    "is a training checkpoint (.pt, needs torch) or an ONNX model: 'default', 'fast', 'ferplus', "
                    "'fer2013' (the shipped ones) or a .onnx file from `ferkit export` (no torch needed; TTA and "
                    "temperature are inside the graph). The images are used as stored: 48x48 face crops, no detection. "
                    "With FER+ crowd votes for the images (--votes), every figure is also given under the "
                    "crowd's labels (report.json key 'ferplus', docs/training.md).")
    p.add_argument("checkpoint", metavar="MODEL",
                   help="checkpoint .pt, or default | fast | FILE.onnx | a Keras model (emotiondetector.h5, .keras, "
                        ".json: converted once, cached; no torch)")
    p.add_argument("--data", required=True, help="dataset folder (Kaggle layout), fer2013.csv or .npz")
    p.add_argument("--split", default="auto", choices=["auto", "private", "public", "test", "train", "all"],
                   help="private | public | test | train; auto = private when the test/ file names carry "
                        "FER2013's PrivateTest_ prefix, else test (the whole test/ folder)")
    p.add_argument("--tta", default="none", choices=TTA_CHOICES,
                   help="test-time views averaged (checkpoints only; an ONNX model has its own in the graph)")
    describe_default(p.add_argument("--out", metavar="DIR", help="report folder"),
                     "eval-<checkpoint>-<split>-<tta>/ next to a checkpoint, runs/eval-<model>-<split>/ for an ONNX "
                     "model")
    p.add_argument("--batch-size", type=int, default=512, help="images per inference call")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (checkpoints only)")
    p.add_argument("--device", default="cpu", help="cpu | cuda (checkpoints only)")
    p.add_argument("--no-ema", action="store_true",
                   help="use the raw weights, not the EMA weights (checkpoints only)")
    describe_default(p.add_argument("--threads", type=int, default=None, help="onnxruntime threads, ONNX models only"),
                     "all cores")
    p.add_argument("--skip-unknown", action="store_true", help="ignore folders that are not emotion names")
    p.add_argument("--votes", metavar="FILE",
                   help="FER+ crowd votes for the images: ferplus_votes.csv (folders) or FER+'s fer2013new.csv "
                        "(fer2013.csv). Adds the FER+ majority protocol (7 classes), the vote cross-entropy, "
                        "calibration and the human reference to the report, and confusion-ferplus.png; 'none' "
                        "leaves them out")
    describe_default(p._actions[-1], "$FERKIT_FERPLUS, else a file found beside the dataset (../ferplus/ for "
                                     "../shared/fer2013)")
    add_json(p, "the report")
    add_quiet(p, "report; the line saying which images were scored goes to stderr")
    p.set_defaults(func=cmd_evaluate)


REPORT_FILES = ("report.json", "confusion.png", "confusion-ferplus.png")  # what --out DIR receives


def _check_outputs(args, kind: str, split: str) -> None:
    """The output rules (:mod:`ferkit.outputs`): the report files and --json are never an input of the run."""
    from ..outputs import check_outputs

    stem = Path(str(args.checkpoint)).stem
    out = Path(args.out) if args.out else (Path("runs") / f"eval-{stem}-{split}" if kind == "onnx"
                                           else Path(args.checkpoint).parent / f"eval-{stem}-{split}-{args.tta}")
    json_file = args.json if args.json not in (None, STDOUT) else None
    check_outputs({"--json": json_file} | {f"--out ({f})": out / f for f in REPORT_FILES},
                  {args.checkpoint: "MODEL", args.data: "--data", getattr(args, "votes", None): "--votes"})


def cmd_evaluate(args) -> int:
    from ..data.splits import choose_split, scored_images
    from ..evaluate_onnx import is_onnx_model, model_kind
    from ..keras.cache import cached_onnx, is_keras_path

    kind = model_kind(args.checkpoint)  # an unknown model: predict's message, before torch or data are touched
    choice = choose_split(args.data, args.split)  # the resolver of `ferkit data`: one message for a bad --data
    split = choice.split
    _check_outputs(args, kind, split)
    if is_keras_path(args.checkpoint):
        say_model("evaluate", cached_onnx(args.checkpoint))  # converted here once; evaluate_onnx finds it cached
    if is_onnx_model(args.checkpoint) or is_keras_path(args.checkpoint):
        from ..evaluate_onnx import evaluate_onnx

        ignored = [o for o, on in (("--tta", args.tta != "none"), ("--amp", args.amp), ("--no-ema", args.no_ema),
                                   ("--device", args.device != "cpu")) if on]
        if ignored:
            raise ValueError(f"{', '.join(ignored)}: not for an ONNX model (its views and temperature are "
                             "inside the graph; it runs on the CPU with onnxruntime)")
        out = args.out or Path("runs") / f"eval-{Path(str(args.checkpoint)).stem}-{split}"
        rep = evaluate_onnx(args.checkpoint, args.data, split, out_dir=out, batch_size=args.batch_size,
                            threads=args.threads, skip_unknown=args.skip_unknown, votes=args.votes)
        what = f"{rep['model']} on {split}"
    else:
        need_torch("evaluate (of a .pt checkpoint; 'default', 'fast' and .onnx models need no torch)")
        from ..evaluate import run_evaluation

        rep = run_evaluation(args.checkpoint, args.data, split, out_dir=args.out, tta=args.tta,
                             batch_size=args.batch_size, amp=args.amp, use_ema=not args.no_ema,
                             skip_unknown=args.skip_unknown, device=args.device, votes=args.votes)
        what = f"{rep['model']} on {split} (tta {args.tta})"
    scored = scored_images(args.data, choice, rep["n"], rep.get("skipped", 0))  # which images, and why
    if args.json:
        write_json({"scored": scored} | {k: v for k, v in rep.items() if k != "text"}, args.json)
    if args.json == STDOUT or args.quiet:
        print(f"ferkit evaluate: {scored}", file=sys.stderr)
    else:
        print(scored)
        print(f"{what}, {rep['images_per_second']:.0f} images/s")
        print(rep["text"])
        print(f"report: {rep['out_dir']}/report.json  confusion matrix: {rep['out_dir']}/confusion.png"
              + (f"  FER+: {rep['out_dir']}/confusion-ferplus.png" if "ferplus" in rep else ""))
    return 0
