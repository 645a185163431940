"""Options shared by every command, spelled and defaulted in one place (no torch).

The conventions (docs/cli.md states them for users):

* ``--json [FILE]``: JSON output; no value or ``-`` writes to stdout, a name ending in ``.json`` /
  ``.jsonl`` writes that file (atomically). Any other value is refused, so that
  ``--json photo.jpg`` can never overwrite an input.
* ``--out``: where the command's main result goes (a file for ``export``/``video``/``webcam``, a folder
  for ``predict`` annotated copies and ``evaluate`` reports; each help says which).
* ``-q/--quiet``: nothing on stdout but the requested machine output; ``--no-progress``: no progress bar
  (bars are drawn only when stderr is a terminal anyway).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

STDOUT = "-"
JSON_SUFFIXES = (".json", ".jsonl")
# ferkit.models.tta.TTA_MODES, spelled out so that the CLI starts without importing torch (a test checks it)
TTA_CHOICES = ["none", "flip", "shift", "scale", "rot", "scale-rot", "scale-rot-wide"]


def need_torch(what: str) -> None:
    """Exit with an install hint when torch is missing (train, export, evaluate of a checkpoint)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit(f"ferkit {what} needs torch: pip install 'ferkit[train]' "
                 "(on a CPU machine install the CPU build of torch first)")


def say_model(command: str, model) -> None:
    """For a model converted from Keras, say on stderr what was read, the input scale and the label order (and
    whether that order was assumed); nothing for any other model. ``model``: a Recognizer's metadata dict, or
    the path of an ONNX file (read only when it is one of the Keras conversion cache's)."""
    from ..keras.cache import is_converted, notice

    if not isinstance(model, dict):
        if not is_converted(model):
            return  # not a Keras model's conversion: nothing to say, and no file to open
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        model = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"]).get_modelmeta()
        model = dict(model.custom_metadata_map)
    line = notice(model)
    if line:
        print(f"ferkit {command}: {line}", file=sys.stderr)


def json_dest(value: str) -> str:
    """argparse type of ``--json [FILE]``: ``-`` or a .json/.jsonl file name."""
    if value == STDOUT or value.lower().endswith(JSON_SUFFIXES):
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a .json/.jsonl file name or '-' (stdout); to print JSON and read {value!r} as an "
        "input, put --json after the inputs")


def add_json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", nargs="?", const=STDOUT, default=None, type=json_dest, metavar="FILE",
                   help=f"write {what} as JSON to FILE (.json/.jsonl); to stdout when FILE is '-' or omitted")


def add_quiet(p: argparse.ArgumentParser, what: str = "table") -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help=f"print nothing on stdout (no {what}) but JSON asked for with --json")


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (one is drawn only when stderr is a terminal)")


def progress_enabled(args) -> bool:
    return bool(getattr(args, "progress", True)) and not getattr(args, "quiet", False) and sys.stderr.isatty()


@contextlib.contextmanager
def json_stream(dest: str) -> Iterator[TextIO]:
    """A text stream for ``--json``: stdout for ``-``, else FILE written atomically (complete or absent)."""
    if dest == STDOUT:
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    ok = False
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            yield f
        ok = True
    finally:
        if ok:
            os.replace(tmp, path)
        else:
            tmp.unlink(missing_ok=True)


def write_json(obj, dest: str) -> None:
    with json_stream(dest) as f:
        f.write(json.dumps(obj, indent=2) + "\n")


def shown_default(action: argparse.Action) -> str | None:
    """The default ``--help`` and docs/cli.md show for an option, as text; None when there is none to show.

    One rule for every command: an action's ``shown_default`` (a value, or a callable read only when help is
    printed: ``train``'s come from TrainConfig) when it has one, else its argparse default. Nothing for a
    positional argument, a value of None, or an on/off flag whose absence is the default (``--crop``,
    ``--no-bars``); ``on``/``off`` for a ``--x/--no-x`` pair; a list as its items."""
    if not action.option_strings or action.help is argparse.SUPPRESS \
            or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        return None
    shown = getattr(action, "shown_default", None)
    if callable(shown):
        shown = shown()
    if shown is None:
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._CountAction)):
            return None  # the flag's absence is its default
        shown = action.default
    if shown is None or shown is argparse.SUPPRESS:
        return None
    if isinstance(action, argparse.BooleanOptionalAction) or isinstance(shown, bool):
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return None
        return "on" if shown else "off"
    if isinstance(shown, (list, tuple)):
        return " ".join(map(str, shown))
    return str(shown)


def describe_default(action: argparse.Action, shown) -> argparse.Action:
    """Give an option whose argparse default is None the default its help should show (``"all cores"``)."""
    action.shown_default = shown
    return action


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with ``(default: X)`` (:func:`shown_default`), spelled that way in every command
    (help texts never state their default themselves: a test reads every command's help)."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = shown_default(action)
        if shown is None:
            return text
        return f"{text} (default: {shown.replace('%', '%%')})" if text else f"(default: {shown.replace('%', '%%')})"


def subparsers_of(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """[(full command, parser)] for ``parser`` and every sub-command under it, depth first."""
    out = [(parser.prog, parser)]
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for p in dict.fromkeys(a.choices.values()):
                out += subparsers_of(p)
    return out


def use_help_formatter(parser: argparse.ArgumentParser) -> None:
    for _name, p in subparsers_of(parser):
        p.formatter_class = HelpFormatter
