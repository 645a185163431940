"""Dataset audit: exact duplicates (by content hash of the decoded 48x48 pixels), test images leaked
into training, duplicates with conflicting labels, and blank / near-constant images."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from ..emotions import EMOTIONS
from .readers import Split

BLANK_STD = 2.0  # a pixel standard deviation below this is a blank (constant) image


def content_hashes(images: np.ndarray) -> list[str]:
    return [hashlib.blake2b(im.tobytes(), digest_size=12).hexdigest() for im in images]


def leaked_mask(test: Split, train: Split) -> np.ndarray:
    """Boolean mask over `test`: True where an identical image (same pixels) is in `train`."""
    train_hashes = set(content_hashes(train.images))
    return np.array([h in train_hashes for h in content_hashes(test.images)], bool)


def audit(splits: dict[str, Split]) -> dict:
    """Audit several named splits (e.g. train, public, private); returns a JSON-able report.

    A file is known by its source (its path in the dataset, or its csv row): a file that two splits both hold
    (``private`` is part of ``test``) is one file, reported under ``same_files``, never a duplicate or a leak
    of itself. Duplicates and leaks are *different* files with identical pixels."""
    # content hash -> {source: [(split, index), ...]}: one entry per file, however many splits hold it
    where: dict[str, dict[str, list[tuple[str, int]]]] = defaultdict(lambda: defaultdict(list))
    per_split = {}
    for name, s in splits.items():
        hs = content_hashes(s.images)
        for i, h in enumerate(hs):
            where[h][s.sources[i]].append((name, i))
        std = s.images.reshape(len(s), -1).std(1)
        blank = np.flatnonzero(std < BLANK_STD)
        per_split[name] = {
            "images": len(s),
            "counts": s.counts(),
            "unique": len(set(hs)),
            "duplicates_within": len(hs) - len(set(hs)),
            "blank": len(blank),
            "blank_examples": [s.sources[i] for i in blank[:10]],
        }
    names = list(splits)
    cross, cross_files, same = {}, {}, {}
    for a_i, a in enumerate(names):
        for b in names[a_i + 1:]:
            n_same = len(set(splits[a].sources) & set(splits[b].sources))
            if n_same:
                same[f"{a}&{b}"] = n_same  # one split holds files of the other: not compared file by file
            shared = [files for files in where.values() if _in_both(files, a, b)]
            cross[f"{a}&{b}"] = len(shared)  # distinct images (groups of identical pixels)
            cross_files[f"{a}&{b}"] = {x: sum(1 for files in shared for locs in files.values()
                                               if any(n == x for n, _i in locs)) for x in (a, b)}
    conflicts = []
    for files in where.values():
        labs = {int(splits[n].labels[i]) for locs in files.values() for n, i in locs}
        if len(labs) > 1:
            conflicts.append({"sources": [f"{locs[0][0]}:{src}" for src, locs in files.items()],
                              "labels": sorted(EMOTIONS[x] for x in labs)})
    groups = [files for files in where.values() if len(files) > 1]
    return {
        "splits": per_split,
        "shared_between_splits": cross,  # distinct images present in both splits (as different files)
        "shared_files": cross_files,  # {pair: {split: files of that split with a copy in the other}}
        "same_files": same,  # {pair: files both splits hold (a split and a part of it)}
        "duplicate_groups": len(groups),
        "largest_group": max((len(g) for g in groups), default=1),
        "label_conflicts": len(conflicts),
        "label_conflict_examples": conflicts[:10],
    }


def _in_both(files: dict[str, list[tuple[str, int]]], a: str, b: str) -> bool:
    """Whether a file of split ``a`` and a *different* file of split ``b`` are in this group of identical
    pixels."""
    in_a = {src for src, locs in files.items() if any(n == a for n, _ in locs)}
    in_b = {src for src, locs in files.items() if any(n == b for n, _ in locs)}
    return bool(in_a and in_b) and len(in_a | in_b) > 1


def format_audit(rep: dict) -> str:
    lines = ["counts are files unless they say 'distinct images' (a group of files with identical pixels)",
             f"{'split':<10}{'files':>8}{'distinct':>9}{'dups':>7}{'blank':>7}   files per class"]
    for n, s in rep["splits"].items():
        cls = " ".join(f"{k[:3]}={v}" for k, v in s["counts"].items())
        lines.append(f"{n:<10}{s['images']:>8}{s['unique']:>9}{s['duplicates_within']:>7}{s['blank']:>7}   {cls}")
    lines.append("")
    for pair, n in rep.get("same_files", {}).items():
        a, b = pair.split("&")
        lines.append(f"{a} and {b} hold the same {n} files (one split is part of the other): each counted once "
                     "below, neither a duplicate nor a leak")
    for pair, n in rep["shared_between_splits"].items():
        a, b = pair.split("&")
        files = rep.get("shared_files", {}).get(pair, {})
        detail = f" ({files[a]} files in {a}, {files[b]} in {b})" if files else ""
        lines.append(f"identical images shared by {a} and {b}: {n} distinct images{detail}")
    lines.append(f"duplicate groups (distinct images with 2+ files): {rep['duplicate_groups']} (largest "
                 f"{rep['largest_group']} files); "
                 f"groups with conflicting labels: {rep['label_conflicts']}")
    for s in rep["splits"].values():
        if s["blank_examples"]:
            lines.append(f"blank examples: {', '.join(s['blank_examples'][:5])}")
    return "\n".join(lines)
