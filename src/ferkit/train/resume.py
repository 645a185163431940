"""What a resumed run is: the checkpoint's run, continued. Its saved config wins; a value given
explicitly (a command-line flag; for the Python API, a field that differs from the default) overrides it,
and both what changed and what was kept are said."""

from __future__ import annotations

import dataclasses

from .config import TrainConfig, field_names

# how this invocation runs, not what the run is: always taken from the command at hand
INVOCATION = {"name", "out_dir", "device", "threads", "progress", "max_steps", "dist_timeout"}
# a saved run cannot continue with another network or optimizer (its weights/state would not load), nor start
# again from other weights (--init only acts when a run begins)
FIXED = {"model", "model_kwargs", "optimizer", "init"}


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def resumed_config(saved: dict, given: TrainConfig, explicit: set[str] | None,
                   source: str = "the checkpoint") -> tuple[TrainConfig, list[str]]:
    """(config of the resumed run, lines that say what was overridden and what was kept)."""
    known = field_names()
    base = TrainConfig().updated({k: v for k, v in saved.items() if k in known})
    if explicit is None:  # Python API: what the caller set differently from the defaults
        default = TrainConfig()
        explicit = {k for k in known if getattr(given, k) != getattr(default, k)}
    changed, kept, updates = [], [], {}
    for f in dataclasses.fields(TrainConfig):
        k = f.name
        new, old = getattr(given, k), getattr(base, k)
        if k in INVOCATION:
            updates[k] = new
            continue
        if new == old:
            continue
        if k in explicit:
            if k in FIXED:
                raise ValueError(f"{_flag(k)} {new!r}: the run in {source} was trained with {k} {old!r}, and a "
                                 f"resumed run keeps it; start a new run (another --name) to change it")
            updates[k] = new
            changed.append(f"{k} {old!r} -> {new!r}")
        else:
            kept.append(f"{k} {old!r} (not {new!r})")
    notes = []
    if changed:
        notes.append("resume: changed by flags: " + ", ".join(changed))
    if kept:
        notes.append("resume: kept from the checkpoint (pass the flag to change one): " + ", ".join(kept))
    if not changed and not kept:
        notes.append("resume: the checkpoint's config, unchanged")
    return base.updated(updates), notes
