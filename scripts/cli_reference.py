"""Write docs/cli.md, the CLI reference, from the argparse parsers themselves (every command, every option,
its help and its default), so the reference cannot drift from the code.

    python scripts/cli_reference.py           # rewrite docs/cli.md
    python scripts/cli_reference.py --check   # exit 1 if docs/cli.md is not what the parsers say (a test runs this)

Defaults of ``ferkit train`` are TrainConfig's (read with torch installed, as in the dev environment).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "cli.md"
sys.path.insert(0, str(REPO / "src"))

HEADER = """# ferkit command line reference

Generated from the parsers by `python scripts/cli_reference.py` (a test fails when this file is out of date);
`ferkit COMMAND --help` prints the same. The Python API is in [python-api.md](python-api.md); the shipped models
in [MODEL_CARD.md](../MODEL_CARD.md) (or `ferkit models`); speed and detector figures in
[benchmarks/RESULTS.md](../benchmarks/RESULTS.md).

## Conventions (the same in every command)

- `--json [FILE]`: JSON output. Without a value, or with `-`, it goes to stdout (and replaces the table);
  with a name ending in `.json` or `.jsonl` it is written to that file, atomically. Any other value is refused,
  so `--json photo.jpg` can never overwrite an input (put `--json` after the inputs to print JSON).
- `--out`: where the command's main result goes: a file for `export` (the .onnx), `video` and `webcam` (the
  annotated video); a folder for `predict` (annotated copies; `--annotate` is the same option), `evaluate`
  (report.json + confusion.png) and `train` (the run folders; `--out-dir` is the same option).
  Outputs never replace inputs.
- `--model`: in `predict`, `video`, `webcam`, `evaluate` and `serve` a *shipped model* (`default`, `fast`; see
  `ferkit models`) or a `.onnx` file; in `train` an *architecture* (`fernet_m`, `seed`, ...; also in
  `ferkit models`).
- `-q/--quiet` ({quiet}): nothing on stdout but JSON asked for with `--json`. `--no-progress`: no progress
  bar (bars are drawn only when stderr is a terminal anyway).
- Defaults: every option's help ends with `(default: X)` when it has one (the last column below).
- `--max-side`, `--min-face`: detection scale and smallest face, in pixels, with the same meaning in `predict`,
  `video` and `webcam`; video and webcam default to smaller numbers of pixels analysed (`--max-side 320`,
  `--min-face 80`) to keep up with the frame rate, `predict` to photo-friendly ones (640, 24).
- `-v/--verbose` (before the command: `ferkit -v predict ...`): log what ferkit does.
"""


def _fmt_default(action: argparse.Action) -> str:
    """The default column: what --help shows (ferkit.commands.options.shown_default), or off for a flag."""
    from ferkit.commands.options import shown_default

    shown = shown_default(action)
    if shown is not None:
        return f"`{shown}`"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return "off"
    return ""


def _cell(s: str) -> str:
    return " ".join(str(s).split()).replace("|", "\\|")


def _options(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| option | meaning | default |", "|---|---|---|"]
    for a in parser._actions:
        if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) or a.help is argparse.SUPPRESS:
            continue
        if a.option_strings:
            name = ", ".join(a.option_strings)
            if a.nargs != 0:
                meta = a.metavar or (("{" + ",".join(map(str, a.choices)) + "}") if a.choices else a.dest.upper())
                name += f" {'[' + meta + ']' if a.nargs == '?' else meta}"
        else:
            name = a.metavar or a.dest
            if a.nargs in ("+", "*"):
                name += " ..."
        help_text = (a.help or "") % {"default": a.default} if a.help and "%(" in a.help else (a.help or "")
        default = _fmt_default(a)
        if not default:
            default = "required" if a.required else "not set"
        rows.append(f"| `{_cell(name)}` | {_cell(help_text)} | {_cell(default)} |")
    return rows


def render() -> str:
    os.environ["COLUMNS"] = "100"  # usage lines wrap the same on every machine
    from ferkit.cli import build_parser
    from ferkit.commands.options import subparsers_of

    parser = build_parser()
    quiet = [f"`{prog.removeprefix('ferkit ')}`" for prog, p in subparsers_of(parser)
             if any("-q" in a.option_strings for a in p._actions)]
    parts = [HEADER.replace("{quiet}", ", ".join(quiet))]
    for prog, p in subparsers_of(parser):
        if prog == parser.prog:
            continue
        if any(isinstance(a, argparse._SubParsersAction) for a in p._actions) and len(p._actions) <= 2:
            parts.append(f"## `{prog}`\n\n{p.description or ''}\n")
            continue
        usage = p.format_usage().strip().removeprefix("usage: ")
        level = "###" if prog.count(" ") > 1 else "##"
        parts.append(f"{level} `{prog}`\n\n{p.description or ''}\n\n```\n{usage}\n```\n\n" + "\n".join(_options(p))
                     + "\n")
    return "\n".join(parts)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT.relative_to(REPO)} is out of date: run python scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
