"""docs/cli.md is what the parsers say, and every option of every command has help (issue 15)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_option_has_help_and_every_command_a_description():
    from ferkit.cli import build_parser
    from ferkit.commands.options import subparsers_of

    missing = []
    for prog, p in subparsers_of(build_parser()):
        if prog != "ferkit" and not p.description:
            missing.append(f"{prog}: no description")
        for a in p._actions:
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)) \
                    or a.help is argparse.SUPPRESS:
                continue
            if not (a.help or "").strip():
                missing.append(f"{prog} {'/'.join(a.option_strings) or a.dest}: no help")
    assert not missing, "\n".join(missing)


def test_cli_reference_is_up_to_date():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "cli_reference.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    text = (REPO / "docs" / "cli.md").read_text()
    for cmd in ("train", "evaluate", "export", "data info", "data audit", "predict", "video", "webcam", "models"):
        assert f"`ferkit {cmd}`" in text


def test_docs_links_resolve():
    import re

    for page in ("README.md", "docs/cli.md", "docs/python-api.md", "docs/training.md", "scripts/explore/README.md"):
        text = (REPO / page).read_text()
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if "://" not in target:
                assert (REPO / page).parent.joinpath(target).exists(), f"{page}: broken link {target}"


def test_python_api_examples_run():
    import re

    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "python-api.md").read_text(), re.S)
    assert len(blocks) >= 3
    code = "\n\n".join(blocks) + "\nimport sys\nassert 'torch' not in sys.modules, 'the runtime imported torch'\n"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src")})
    assert r.returncode == 0, r.stderr[-3000:]
