"""Command line ``ferkit COMMAND``: the top parser, built from :mod:`ferkit.commands` (one module per command).

Heavy imports (torch, onnx, matplotlib) happen inside the command that needs them, so
``ferkit --help`` and the runtime commands start fast and never import torch.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .commands import BUILDERS
from .commands.options import TTA_CHOICES, use_help_formatter

__all__ = ["TTA_CHOICES", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="ferkit", description="Facial emotion recognition toolkit.")
    parser.add_argument("--version", action="version", version=f"ferkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log what ferkit does (INFO level: data loading, cache, model and detector choice)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    for add in BUILDERS:
        add(sub)
    use_help_formatter(parser)
    return parser


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
    except KeyboardInterrupt:  # commands that keep partial outputs (predict, video, train) say so themselves
        print(f"ferkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as e:
        print(f"ferkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
