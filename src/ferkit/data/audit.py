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
    """Audit several named splits (e.g. train, public, private); returns a JSON-able report."""
    where: dict[str, list[tuple[str, int]]] = defaultdict(list)
    per_split = {}
    for name, s in splits.items():
        hs = content_hashes(s.images)
        for i, h in enumerate(hs):
            where[h].append((name, i))
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
    cross = {}
    for a_i, a in enumerate(names):
        for b in names[a_i + 1:]:
            n = sum(1 for locs in where.values() if {x[0] for x in locs} >= {a, b})
            cross[f"{a}&{b}"] = n
    conflicts = []
    for locs in where.values():
        labs = {int(splits[n].labels[i]) for n, i in locs}
        if len(labs) > 1:
            conflicts.append({"sources": [f"{n}:{splits[n].sources[i]}" for n, i in locs],
                              "labels": sorted(EMOTIONS[x] for x in labs)})
    groups = [locs for locs in where.values() if len(locs) > 1]
    return {
        "splits": per_split,
        "shared_between_splits": cross,
        "duplicate_groups": len(groups),
        "largest_group": max((len(g) for g in groups), default=1),
        "label_conflicts": len(conflicts),
        "label_conflict_examples": conflicts[:10],
    }


def format_audit(rep: dict) -> str:
    lines = [f"{'split':<10}{'images':>8}{'unique':>8}{'dups':>7}{'blank':>7}   per class"]
    for n, s in rep["splits"].items():
        cls = " ".join(f"{k[:3]}={v}" for k, v in s["counts"].items())
        lines.append(f"{n:<10}{s['images']:>8}{s['unique']:>8}{s['duplicates_within']:>7}{s['blank']:>7}   {cls}")
    lines.append("")
    for pair, n in rep["shared_between_splits"].items():
        lines.append(f"identical images shared by {pair.replace('&', ' and ')}: {n}")
    lines.append(f"duplicate groups: {rep['duplicate_groups']} (largest {rep['largest_group']}); "
                 f"groups with conflicting labels: {rep['label_conflicts']}")
    for s in rep["splits"].values():
        if s["blank_examples"]:
            lines.append(f"blank examples: {', '.join(s['blank_examples'][:5])}")
    return "\n".join(lines)
