"""The package's layout holds (issue 21): no import cycles between ferkit's modules, the runtime rooms never
reach torch or a door, and the light packages import without torch. Read from the source with ``ast``: every
``import`` counts, at module level or inside a function (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "ferkit"
# the runtime: onnxruntime only (README, "Layout"); the doors (cli, commands, serve) sit above it
RUNTIME = ("ferkit.faces", "ferkit.images", "ferkit.recognizer", "ferkit.render", "ferkit.video", "ferkit.session",
           "ferkit.emotions", "ferkit.weights", "ferkit.outputs",
           "ferkit.ray")  # ferkit.ray: Ray Data around the runtime (issue 25), below the doors all the same
DOORS = ("ferkit.cli", "ferkit.commands", "ferkit.serve")


def _name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(mod: str) -> set[str]:
    """Modules ``mod`` imports: ferkit modules by their full name, others by their top-level name."""
    path = MODULES[mod]
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name if a.name.startswith("ferkit") else a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("ferkit"):
                out.add(base.split(".")[0])
                continue
            for a in node.names:  # `from pkg import sub` imports the submodule pkg.sub when there is one
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {m for m in out if m and (not m.startswith("ferkit") or m in MODULES)}


GRAPH = {m: imports_of(m) for m in MODULES}


def test_the_graph_sees_the_package():
    assert {"ferkit.faces", "ferkit.faces.base", "ferkit.faces.centerface", "ferkit.export.export",
            "ferkit.commands.train"} <= set(GRAPH)
    assert "ferkit.faces.base" in GRAPH["ferkit.faces.haar"] and "torch" in GRAPH["ferkit.export.export"]
    assert "ferkit.faces.crop" in GRAPH["ferkit.faces"]  # relative `from .crop import ...` resolved


def test_no_import_cycles():
    """Tarjan's strongly connected components over ferkit's modules: every one of them a single module."""
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in (w for w in GRAPH[v] if w in GRAPH):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in GRAPH[v]:
                cycles.append(sorted(comp))

    for m in sorted(GRAPH):
        if m not in index:
            visit(m)
    assert not cycles, f"modules that import each other (directly or through others): {cycles}"


def _reach(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        for n in GRAPH.get(m, ()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def test_runtime_rooms_never_reach_torch_or_a_door():
    bad = {}
    for m in GRAPH:
        if m.startswith(RUNTIME):
            reached = _reach(m)
            wrong = sorted(n for n in reached if n in ("torch", "torchvision") or n.startswith(DOORS)
                           or n.startswith(("ferkit.models", "ferkit.train", "ferkit.export")))
            if wrong:
                bad[m] = wrong
    assert not bad, f"runtime modules that import torch, training or the doors: {bad}"


def test_light_packages_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import ferkit, ferkit.faces, ferkit.export, ferkit.cli, ferkit.faces_cnn, ferkit.align, ferkit.quantize\n"
            "from ferkit.faces import create_detector, list_detectors\n"
            "assert ferkit.faces_cnn.CenterFaceDetector is ferkit.faces.CenterFaceDetector\n"
            "assert ferkit.quantize is ferkit.export.quantize\n"
            "assert 'ferkit.export.export' not in sys.modules\n"
            "print(sorted(list_detectors()))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "centerface" in r.stdout
