"""Issue 20 item 19: every command's help spells a default one way, `(default: X)` at the end of the option's
help, from the option itself (no help text states its own); `-q` where docs/cli.md says; `train --help` shows
TrainConfig's defaults without torch, as its description promises."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from ferkit.cli import build_parser, main
from ferkit.commands.options import HelpFormatter, subparsers_of

PARSERS = [(prog, p) for prog, p in subparsers_of(build_parser())
           if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)]
OPTIONS = [(prog, a) for prog, p in PARSERS for a in p._actions
           if a.option_strings and not isinstance(a, argparse._HelpAction) and a.help is not argparse.SUPPRESS]


def test_the_help_of_every_command_is_read():
    assert {"ferkit train", "ferkit evaluate", "ferkit export", "ferkit data info", "ferkit data audit",
            "ferkit predict", "ferkit video", "ferkit webcam", "ferkit serve", "ferkit models"} <= dict(PARSERS).keys()
    assert len(OPTIONS) > 100


def test_a_default_is_spelled_one_way():
    """(default 24), (default: 512), (512), 'Default: ...' were all in use; now only the formatter writes it,
    as ``(default: X)`` at the end, X the option's own default (or the text it carries for a None default)."""
    from ferkit.commands.options import shown_default

    wrong = []
    for prog, action in OPTIONS:
        raw = action.help or ""
        if re.search(r"\(default\b|\bdefault:|Default:", raw):
            wrong.append(f"{prog} {action.option_strings[0]}: states its default: {raw!r}")
            continue
        shown, want = HelpFormatter(prog)._expand_help(action), shown_default(action)
        if want is None:
            if "(default" in shown:
                wrong.append(f"{prog} {action.option_strings[0]}: {shown!r}")
            continue
        if not shown.endswith(f"(default: {want})") or shown.count("(default") != 1:
            wrong.append(f"{prog} {action.option_strings[0]}: {shown!r}")
        own = " ".join(map(str, action.default)) if isinstance(action.default, list) else str(action.default)
        if not hasattr(action, "shown_default") and not isinstance(action.default, bool) and want != own:
            wrong.append(f"{prog} {action.option_strings[0]}: shows {want!r}, its default is {own!r}")
    assert not wrong, "\n".join(wrong)


def test_every_command_that_prints_a_result_takes_q(capsys):
    """evaluate rejected -q, which docs/cli.md calls a convention; the docs now list where it applies."""
    have = {prog.removeprefix("ferkit ") for prog, p in PARSERS if any("-q" in a.option_strings for a in p._actions)}
    assert {"evaluate", "predict", "video", "data audit", "models", "train", "export"} <= have
    from pathlib import Path

    conventions = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text().split("## `ferkit")[0]
    line = next(ln for ln in conventions.splitlines() if ln.startswith("- `-q/--quiet`"))
    assert all(f"`{c}`" in line for c in have), line
    assert main(["models", "-q"]) == 0 and capsys.readouterr().out == ""


def test_train_help_shows_its_defaults_without_torch():
    """`train --help` promised defaults "shown below" and, without torch, showed none."""
    code = ("import sys; sys.modules['torch'] = None; from ferkit.cli import main; main(['train', '--help'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    from ferkit.train.config import TrainConfig

    cfg, text = TrainConfig(), " ".join(r.stdout.split())
    assert "the default shown below" in text
    for said in (f"passes over the training images (default: {cfg.epochs})",
                 f"peak learning rate (default: {cfg.lr})", f"model name (see `ferkit models`) (default: {cfg.model})",
                 "<out-dir>/<name> (default: <model>-s<seed>)", "bf16 autocast (default: off)",
                 f"sgd is SGD with Nesterov momentum (default: {cfg.optimizer})"):
        assert said in text, said
