"""Command line: ``ferkit train | evaluate | export | data | models`` (and the runtime commands).

Heavy imports (torch, onnx, matplotlib) happen inside the command that needs them, so
``ferkit --help`` and the runtime commands start fast and never import torch.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from pathlib import Path

from .commands.options import STDOUT, add_json, use_help_formatter, write_json

# ferkit.models.tta.TTA_MODES, spelled out so that the CLI starts without importing torch (a test checks it)
TTA_CHOICES = ["none", "flip", "shift", "scale", "rot", "scale-rot", "scale-rot-wide"]


def _need_torch(what: str):
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit(f"ferkit {what} needs torch: pip install 'ferkit[train]' "
                 "(on a CPU machine install the CPU build of torch first)")


# --------------------------------------------------------------------------- train

def _add_train(sub):
    p = sub.add_parser("train", help="train a model on a FER dataset",
                       description="Train a model. A flag overrides --config; what neither sets takes the default "
                                   "shown below (ferkit.train.TrainConfig). Recipes: configs/default.yaml "
                                   "(ferkit's: fernet_m, SGD + cosine, augmentation, EMA) and configs/seed.yaml "
                                   "(the original design and recipe). Outputs: <out-dir>/<name>/ holds last.pt, "
                                   "best.pt, metrics.csv, curves.png, config.json.")
    p.add_argument("--config", help="YAML or JSON file with TrainConfig keys (configs/default.yaml, configs/seed.yaml)")
    p.add_argument("--data", help="dataset folder (Kaggle layout) or fer2013.csv")
    p.add_argument("--model", help="model name (see `ferkit models`)")
    p.add_argument("--name", help="run name: outputs go to <out-dir>/<name> (default <model>-s<seed>)")
    p.add_argument("--out-dir", "--out", dest="out_dir", metavar="DIR",
                   help="folder that holds the run folders (--out is the same option)")
    p.add_argument("--epochs", type=int, help="passes over the training images")
    p.add_argument("--batch-size", dest="batch_size", type=int,
                   help="global batch: with torchrun, all processes together (each takes batch/N); "
                        "the --lr goes with it, whatever N")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], help="sgd is SGD with Nesterov momentum")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--weight-decay", dest="weight_decay", type=float, help="L2 weight decay (decoupled for adamw)")
    p.add_argument("--schedule", choices=["cosine", "onecycle", "plateau", "none"],
                   help="learning-rate schedule after warm-up; none keeps --lr constant")
    p.add_argument("--warmup-epochs", dest="warmup_epochs", type=float,
                   help="epochs of linear learning-rate warm-up (fractions allowed)")
    p.add_argument("--label-smoothing", dest="label_smoothing", type=float,
                   help="share of each target spread over the other classes; 0 disables")
    p.add_argument("--mixup", type=float, help="mixup Beta(alpha, alpha); 0 disables")
    p.add_argument("--soft-labels", dest="soft_labels",
                   help="teacher targets for distillation (scripts/soft_labels.py)")
    p.add_argument("--kd-alpha", dest="kd_alpha", type=float, help="weight of the teacher targets (0..1)")
    p.add_argument("--folds", type=int, help="split the training images into K folds by content hash ...")
    p.add_argument("--fold", type=int, help="... and train without this one (out-of-fold teachers)")
    p.add_argument("--init", metavar="CKPT",
                   help="start from the weights of this checkpoint (same model; its EMA weights when present): "
                        "fine-tuning. The epoch count, optimizer and schedule start afresh")
    p.add_argument("--model-arg", dest="model_args", action="append", metavar="KEY=VALUE",
                   help="model constructor argument, e.g. --model-arg upsample=64 (repeatable)")
    p.add_argument("--class-weights", dest="class_weights", choices=["none", "balanced", "sqrt"],
                   help="loss weight per class: balanced = inverse frequency, sqrt = its square root")
    p.add_argument("--augment", choices=["strong", "flip", "none"],
                   help="training augmentation: strong = flip, rotation/scale/shift, brightness/contrast, random "
                        "erasing; flip = mirror only")
    p.add_argument("--ema", type=float, help="EMA decay of weights per step; 0 disables")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast")
    p.add_argument("--channels-last", dest="channels_last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory layout (faster convolutions on recent CPUs/GPUs)")
    p.add_argument("--train-split", dest="train_split",
                   help="split trained on: train | all (train + test) | public | private | test")
    p.add_argument("--val-split", dest="val_split",
                   help="selection split (best.pt): public | private | test; auto = public if the dataset has it, "
                        "else test")
    p.add_argument("--eval-tta", dest="eval_tta", choices=TTA_CHOICES,
                   help="test-time views used when scoring the selection split each epoch")
    p.add_argument("--limit", type=int, help="train on a fixed random subset of N images (0 = all)")
    p.add_argument("--val-limit", dest="val_limit", type=int,
                   help="score a fixed random subset of N selection images each epoch (0 = all)")
    p.add_argument("--max-steps", dest="max_steps", type=int,
                   help="stop after N optimizer steps in total (smoke tests; 0 = no limit)")
    p.add_argument("--seed", type=int, help="random seed (weights, shuffling, augmentation)")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--skip-unknown", dest="skip_unknown", action="store_true", default=None,
                   help="ignore folders that are not emotion names")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bars (they are drawn only when stderr is a terminal anyway)")
    p.add_argument("--sync-bn", dest="sync_bn", choices=["auto", "on", "off"],
                   help="torchrun runs: batch-norm statistics over the global batch (auto: on with GPUs)")
    p.add_argument("--dist-timeout", dest="dist_timeout", type=float,
                   help="torchrun runs: seconds to wait for another process before failing")
    p.add_argument("--resume", action="store_true",
                   help="continue runs/<name>/last.pt with its saved config; flags given change it (and are listed)")
    for action in p._actions:  # defaults shown in --help are TrainConfig's, read only when help is printed
        if action.option_strings and action.default is None and action.const is not False \
                and action.dest not in ("config", "help"):
            action.shown_default = functools.partial(_train_default, action.dest)
    p.set_defaults(func=cmd_train)


@functools.lru_cache(maxsize=1)
def _train_defaults() -> dict | None:
    try:
        from .train import TrainConfig
    except ImportError:  # no torch: `ferkit train` cannot run here anyway
        return None
    import dataclasses

    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in dataclasses.fields(TrainConfig)}


def _train_default(dest: str):
    d = _train_defaults()
    if d is None or dest not in d:
        return None
    v = d[dest]
    if v == "" or v is None:
        return "none"
    return v



def cmd_train(args) -> int:
    _need_torch("train")
    from .train import DistributedRunError, TrainConfig, train

    cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    skip = {"config", "resume", "func", "command", "verbose", "model_args"}
    changes = {k: v for k, v in vars(args).items() if k not in skip and v is not None}
    if args.model_args:
        import yaml

        kw = dict(cfg.model_kwargs)
        for item in args.model_args:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise SystemExit(f"--model-arg {item!r}: expected KEY=VALUE")
            kw[key] = yaml.safe_load(value)
        changes["model_kwargs"] = kw
    cfg = cfg.updated(changes)
    try:
        res = train(cfg, resume=args.resume, explicit=set(changes))
    except DistributedRunError as e:
        print(f"ferkit train: error: {e}", file=sys.stderr)
        return 1
    if res["rank"] == 0:  # a torchrun run: process 0 speaks for all
        print(f"best {res['val_split']} accuracy {res['best_acc']:.4f}; {res['epochs_done']} epochs; "
              f"{res['wall_seconds']:.0f}s; checkpoints in {res['run_dir']}")
    return 130 if res["interrupted"] else 0


# --------------------------------------------------------------------------- evaluate

def _add_evaluate(sub):
    p = sub.add_parser(
        "evaluate", help="accuracy, macro-F1, per-class table and confusion PNG of a model on a labelled dataset",
        description="Evaluate a model on a labelled dataset (Kaggle folders, fer2013.csv or .npz): accuracy, "
                    "macro-F1, per-class precision/recall/F1, NLL/ECE, confusion matrix PNG, report.json. MODEL "
                    "is a training checkpoint (.pt, needs torch) or an ONNX model: 'default', 'fast' (the "
                    "shipped ones) or a .onnx file from `ferkit export` (no torch needed; TTA and temperature "
                    "are inside the graph). The images are used as stored: 48x48 face crops, no detection.")
    p.add_argument("checkpoint", metavar="MODEL", help="checkpoint .pt, or default | fast | FILE.onnx")
    p.add_argument("--data", required=True, help="dataset folder (Kaggle layout), fer2013.csv or .npz")
    p.add_argument("--split", default="auto", choices=["auto", "private", "public", "test", "train", "all"],
                   help="private | public | test | train; auto = private when the test/ file names carry "
                        "FER2013's PrivateTest_ prefix, else test (the whole test/ folder)")
    p.add_argument("--tta", default="none", choices=TTA_CHOICES,
                   help="test-time views averaged (checkpoints only; an ONNX model has its own in the graph)")
    p.add_argument("--out", metavar="DIR",
                   help="report folder (default: eval-<split>-<tta>/ next to a checkpoint, "
                        "runs/eval-<model>-<split>/ for an ONNX model)")
    p.add_argument("--batch-size", type=int, default=512, help="images per inference call")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (checkpoints only)")
    p.add_argument("--device", default="cpu", help="cpu | cuda (checkpoints only)")
    p.add_argument("--no-ema", action="store_true",
                   help="use the raw weights, not the EMA weights (checkpoints only)")
    p.add_argument("--threads", type=int, default=None,
                   help="onnxruntime threads, ONNX models only (default: all cores)")
    p.add_argument("--skip-unknown", action="store_true", help="ignore folders that are not emotion names")
    add_json(p, "the report")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from .data import report_split
    from .evaluate_onnx import is_onnx_model

    split = report_split(args.data) if args.split == "auto" else args.split
    if args.split == "auto":
        print(f"ferkit evaluate: split {split}", file=sys.stderr)
    if is_onnx_model(args.checkpoint):
        from .evaluate_onnx import evaluate_onnx

        ignored = [o for o, on in (("--tta", args.tta != "none"), ("--amp", args.amp), ("--no-ema", args.no_ema),
                                   ("--device", args.device != "cpu")) if on]
        if ignored:
            raise ValueError(f"{', '.join(ignored)}: not for an ONNX model (its views and temperature are "
                             "inside the graph; it runs on the CPU with onnxruntime)")
        out = args.out or Path("runs") / f"eval-{Path(str(args.checkpoint)).stem}-{split}"
        rep = evaluate_onnx(args.checkpoint, args.data, split, out_dir=out, batch_size=args.batch_size,
                            threads=args.threads, skip_unknown=args.skip_unknown)
        what = f"{rep['model']} on {split}"
    else:
        _need_torch("evaluate (of a .pt checkpoint; 'default', 'fast' and .onnx models need no torch)")
        from .evaluate import run_evaluation

        rep = run_evaluation(args.checkpoint, args.data, split, out_dir=args.out, tta=args.tta,
                             batch_size=args.batch_size, amp=args.amp, use_ema=not args.no_ema,
                             skip_unknown=args.skip_unknown, device=args.device)
        what = f"{rep['model']} on {split} (tta {args.tta})"
    if args.json:
        write_json({k: v for k, v in rep.items() if k != "text"}, args.json)
    if args.json != STDOUT:
        print(f"{what}, {rep['images_per_second']:.0f} images/s")
        print(rep["text"])
        print(f"report: {rep['out_dir']}/report.json  confusion matrix: {rep['out_dir']}/confusion.png")
    return 0


# --------------------------------------------------------------------------- export

def _add_export(sub):
    p = sub.add_parser(
        "export", help="export checkpoint(s) to ONNX (an ensemble if several), with parity check",
        description="Write one ONNX file from one or more training checkpoints (several = an ensemble, "
                    "probabilities averaged). Test-time views (--tta) and the softmax temperature go inside "
                    "the graph, so the file takes raw 48x48 gray pixels and returns 7 probabilities; "
                    "`ferkit predict --model FILE.onnx` and `ferkit evaluate FILE.onnx` use it without torch. "
                    "With --parity-data the ONNX output is checked against torch on real images.")
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                   help="training checkpoints (runs/<name>/best.pt); several make an ensemble")
    p.add_argument("--out", required=True, metavar="FILE", help="output .onnx file (written atomically)")
    p.add_argument("--tta", default="none", choices=TTA_CHOICES, help="views averaged inside the graph")
    p.add_argument("--temperature", default="1.0", type=_temperature,
                   help="softmax temperature baked into the graph: a number, or 'auto' to fit it on the public "
                        "split of --calib-data")
    p.add_argument("--calib-data", help="dataset for temperature fitting (split public)")
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
    q.add_argument("--calib-n", type=int, default=512, help="calibration images, stratified by class (512)")
    q.add_argument("--calib-seed", type=int, default=0,
                   help="seed of the stratified draw of calibration images (0)")
    q.add_argument("--quant-check-n", type=int, help="PublicTest images for the float32/int8 check (all)")
    q.add_argument("--max-drop", type=float, default=0.5,
                   help="refuse when int8 loses more PublicTest accuracy points than this (0.5)")
    q.add_argument("--float-first-conv", action="store_true",
                   help="keep the convolution that reads the pixels (each member's first) in float32: closer to "
                        "the float32 graph, some speed and memory spent (the shipped default uses it; MODEL_CARD.md, "
                        "benchmarks/RESULTS.md section 6)")
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


def cmd_export(args) -> int:
    _need_torch("export")
    from .export import ExportCheckFailed, export_onnx

    t = args.temperature
    try:
        res = export_onnx(args.checkpoints, args.out, tta=args.tta, temperature=t, calib_data=args.calib_data,
                          parity_data=args.parity_data, opset=args.opset, half_weights=args.half_weights,
                          weights=args.weights, quantize=args.quantize, quant_data=args.quant_data,
                          calib_n=args.calib_n, calib_seed=args.calib_seed, quant_check_n=args.quant_check_n,
                          max_drop=args.max_drop, float_first_conv=args.float_first_conv)
    except ExportCheckFailed as e:
        print(f"ferkit export: error: {e}; the previous file (if any) is unchanged", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in res.items() if k != "fitted"} | {"fitted": res["fitted"]}, indent=2))
    return 0


# --------------------------------------------------------------------------- data

def _add_data(sub):
    p = sub.add_parser("data", help="inspect a dataset: counts per split, or a full audit",
                       description="Inspect a dataset: `ferkit data info PATH` (images per class and split) or "
                                   "`ferkit data audit PATH` (duplicates, leaks, conflicts, blank images).")
    dsub = p.add_subparsers(dest="data_cmd", required=True, metavar="{info,audit}",
                            title="commands", description="ferkit data info PATH | ferkit data audit PATH")
    i = dsub.add_parser("info", help="images per class and split",
                        description="Images per class for each split the dataset has.")
    i.add_argument("path", help="dataset folder (Kaggle layout), fer2013.csv or .npz")
    i.add_argument("--skip-unknown", action="store_true", help="ignore folders that are not emotion names")
    i.set_defaults(func=cmd_data_info)
    a = dsub.add_parser("audit", help="duplicates, train/test leaks, label conflicts, blank images",
                        description="Exact-duplicate pixels within and across splits (test images leaked into "
                                    "train), duplicates with conflicting labels, blank images. Counts say their "
                                    "unit: files, or distinct images (groups of identical pixels).")
    a.add_argument("path", help="dataset folder (Kaggle layout), fer2013.csv or .npz")
    a.add_argument("--splits", default="auto", help="comma list, default: train + public + private (or test)")
    add_json(a, "the audit")
    a.add_argument("--skip-unknown", action="store_true", help="ignore folders that are not emotion names")
    a.set_defaults(func=cmd_data_audit)


def _auto_splits(path) -> list[str]:
    """The splits a dataset path has; an error saying what was expected when it has none."""
    from .data import DatasetError, has_split

    if not Path(path).exists():
        raise DatasetError(f"{path}: no such file or folder")
    found = [s for s in ("train", "test", "public", "private") if has_split(path, s)]
    if "train" in found and "public" in found and "private" in found:
        found.remove("test")  # test = public + private: shown as the two official sets
    if not found:
        raise DatasetError(f"{path}: no dataset found; expected <root>/train/<emotion>/ and "
                           "<root>/test/<emotion>/ (or validation/), one split folder <dir>/<emotion>/, "
                           "a fer2013.csv or a .npz (emotion folders: angry, disgust, fear, happy, neutral, "
                           "sad, surprise or their aliases)")
    return found


def cmd_data_info(args) -> int:
    from .data import load_split
    from .emotions import EMOTIONS

    splits = _auto_splits(args.path)
    print(f"{'split':<10}{'total':>8}" + "".join(f"{e:>10}" for e in EMOTIONS))
    for s in splits:
        ds = load_split(args.path, s, skip_unknown=args.skip_unknown)
        c = ds.counts()
        print(f"{s:<10}{len(ds):>8}" + "".join(f"{c[e]:>10}" for e in EMOTIONS))
        if ds.skipped:
            print(f"  {len(ds.skipped)} unreadable file(s) skipped, e.g. {ds.skipped[0][1]}")
    return 0


def cmd_data_audit(args) -> int:
    from .data import load_split
    from .data.audit import audit, format_audit
    from .outputs import check_outputs

    if args.json not in (None, STDOUT):
        check_outputs({"--json": args.json}, [args.path])
    names = _auto_splits(args.path) if args.splits == "auto" else args.splits.split(",")
    rep = audit({s: load_split(args.path, s, skip_unknown=args.skip_unknown) for s in names})
    if args.json != STDOUT:
        print(format_audit(rep))
    if args.json:
        write_json(rep, args.json)  # atomic for a file
    return 0


# --------------------------------------------------------------------------- main

BUILDERS = [_add_train, _add_evaluate, _add_export, _add_data]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="ferkit", description="Facial emotion recognition toolkit.")
    parser.add_argument("--version", action="version", version=f"ferkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log what ferkit does (INFO level: data loading, cache, model and detector choice)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    for b in BUILDERS:
        b(sub)
    for extra in _runtime_builders():
        extra(sub)
    use_help_formatter(parser)
    return parser


def _runtime_builders():
    """Runtime commands (predict, video, webcam, serve) live in ferkit.commands when installed."""
    import importlib.util

    if importlib.util.find_spec("ferkit.commands") is None:
        return []
    from . import commands

    return list(commands.BUILDERS)


def _broken_pipe() -> int:
    """The reader of stdout went away (``ferkit predict DIR | head``): stop quietly, as Unix tools do.

    Python would still try to flush stdout at exit and print a second error, so stdout is pointed at
    /dev/null first. Exit status 141 = 128 + SIGPIPE, what a shell reports for a tool killed by it."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured): nothing to flush
        pass
    return 141


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return _broken_pipe()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as e:
        print(f"ferkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
