"""``ferkit train``: a model on a FER dataset (torch; the parser and --help work without it)."""

from __future__ import annotations

import argparse
import functools
import sys

from .options import TTA_CHOICES, add_quiet, need_torch


def add_parser(sub):
    p = sub.add_parser("train", help="train a model on a FER dataset",
                       description="Train a model. A flag overrides --config; what neither sets takes the default "
                                   "shown below (ferkit.train.TrainConfig). Recipes: configs/default.yaml "
                                   "(ferkit's: fernet_m, SGD + cosine, augmentation, EMA) and configs/seed.yaml "
                                   "(the original design and recipe). Outputs: <out-dir>/<name>/ holds last.pt, "
                                   "best.pt, metrics.csv, curves.png, config.json; a folder that holds a run is "
                                   "continued with --resume, never started over, and no file the run writes may be "
                                   "one of its inputs (--init, --config, ...).")
    p.add_argument("--config", help="YAML or JSON file with TrainConfig keys (configs/default.yaml, configs/seed.yaml)")
    p.add_argument("--data", help="dataset folder (Kaggle layout) or fer2013.csv")
    p.add_argument("--model", help="model name (see `ferkit models`)")
    name = p.add_argument("--name", help="run name: outputs go to <out-dir>/<name>")
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
    p.add_argument("--labels", metavar="SOURCE",
                   help="what the model learns: fer2013 (the dataset's labels) | ferplus (the FER+ crowd's vote "
                        "distributions; best.pt chosen on the FER+ majority) | mix:W ((1-W) x dataset label + W x "
                        "votes) | plausible:W (the votes, plus W on the dataset label where a worker also gave it). "
                        "Images without a vote target are left out (docs/training.md, 'FER+ votes')")
    votes = p.add_argument("--votes", metavar="FILE",
                           help="FER+ votes for --labels ferplus|mix:W|plausible:W: ferplus_votes.csv (folders) or "
                                "FER+'s fer2013new.csv (fer2013.csv)")
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
    add_quiet(p, "line per epoch; errors still go to stderr")
    for action in p._actions:  # defaults shown in --help are TrainConfig's, read only when help is printed
        if action.option_strings and action.default is None and action.const is not False \
                and action.dest not in ("config", "help"):
            action.shown_default = functools.partial(_train_default, action.dest)
    name.shown_default = "<model>-s<seed>"
    votes.shown_default = "$FERKIT_FERPLUS, else a file found beside the dataset"
    p.set_defaults(func=cmd_train)


@functools.lru_cache(maxsize=1)
def _train_defaults() -> dict | None:
    import dataclasses

    from ..train.config import TrainConfig  # no torch: the defaults show without it

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



def _check_run_outputs(cfg, config_file: str | None) -> None:
    """The output rules (:mod:`ferkit.outputs`) for the run folder: no file the run writes there is one of
    its inputs (``--init runs/a/best.pt --name a`` would replace the weights it starts from)."""
    from ..outputs import check_outputs
    from ..train.run import RUN_FILES, run_folder

    folder = run_folder(cfg)
    inputs = {cfg.data: "--data", cfg.init: "--init", cfg.soft_labels: "--soft-labels", config_file: "--config",
              getattr(cfg, "votes", ""): "--votes"}
    check_outputs({f"--out-dir/--name ({f})": folder / f for f in RUN_FILES},
                  {p: opt for p, opt in inputs.items() if p})


def _silent(*args, **kwargs) -> None:
    pass


def cmd_train(args) -> int:
    need_torch("train")
    from ..train import DistributedRunError, TrainConfig, train

    cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    skip = {"config", "resume", "func", "command", "verbose", "model_args", "quiet"}
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
    _check_run_outputs(cfg, args.config)
    try:
        res = train(cfg, resume=args.resume, explicit=set(changes), log=_silent if args.quiet else print)
    except DistributedRunError as e:
        print(f"ferkit train: error: {e}", file=sys.stderr)
        return 1
    if res["rank"] == 0 and not args.quiet:  # a torchrun run: process 0 speaks for all
        labels = " FER+ majority" if res.get("val_labels") == "ferplus-majority" else ""
        print(f"best {res['val_split']}{labels} accuracy {res['best_acc']:.4f}; {res['epochs_done']} epochs; "
              f"{res['wall_seconds']:.0f}s; checkpoints in {res['run_dir']}")
    return 130 if res["interrupted"] else 0
