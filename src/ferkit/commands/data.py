"""``ferkit data info | audit``: images per class and split, or duplicates, leaks, conflicts and blank images
(no torch)."""

from __future__ import annotations

from .options import STDOUT, add_json, add_quiet, write_json


def add_parser(sub):
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
    a.add_argument("--splits", default="auto",
                   help="comma list of splits; auto: every split of the dataset but none that is part of another "
                        "(train + public + private for FER2013, else train + test)")
    add_json(a, "the audit")
    add_quiet(a, "report")
    a.add_argument("--skip-unknown", action="store_true", help="ignore folders that are not emotion names")
    a.set_defaults(func=cmd_data_audit)


def cmd_data_info(args) -> int:
    from ..data import load_split
    from ..data.splits import PARTS, dataset_splits
    from ..emotions import EMOTIONS

    splits = dataset_splits(args.path)  # the one resolver: "no dataset found; expected ..." when none
    print(f"{'split':<10}{'total':>8}" + "".join(f"{e:>10}" for e in EMOTIONS))
    for s in splits:
        ds = load_split(args.path, s, skip_unknown=args.skip_unknown)
        c = ds.counts()
        part = "  (part of test)" if s in PARTS and "test" in splits else ""
        print(f"{s:<10}{len(ds):>8}" + "".join(f"{c[e]:>10}" for e in EMOTIONS) + part)
        if ds.skipped:
            print(f"  {len(ds.skipped)} unreadable file(s) skipped, e.g. {ds.skipped[0][1]}")
    return 0


def cmd_data_audit(args) -> int:
    from ..data import load_split
    from ..data.audit import audit, format_audit
    from ..data.splits import disjoint_splits
    from ..outputs import check_outputs

    if args.json not in (None, STDOUT):
        check_outputs({"--json": args.json}, [args.path])
    # auto: no split that is part of another (public and private are parts of test)
    names = disjoint_splits(args.path) if args.splits == "auto" else args.splits.split(",")
    rep = audit({s: load_split(args.path, s, skip_unknown=args.skip_unknown) for s in names})
    if args.json != STDOUT and not args.quiet:
        print(format_audit(rep))
    if args.json:
        write_json(rep, args.json)  # atomic for a file
    return 0
