"""Where commands write: the rules every output path follows, in one place (no torch, no cv2).

1. An output is never an input of the same run: a path given as an output that is (or links to) an input
   file is refused before anything is read or written (:func:`check_outputs`).
2. Outputs named after inputs (``predict --annotate DIR``) stay inside their folder: the name is built from
   clean parts only (no ``..``, no root, no empty part), so no input name can climb out (:func:`output_names`).
3. No two inputs map to one output: ``x.gif`` and ``x.png`` keep their extensions (``x.gif.png``,
   ``x.png``), two folder arguments with the same name get distinct prefixes (``img``, ``img-2``), and
   any other clash gets a numbered name (``x-2.jpg``).
4. Names that are not valid UTF-8 (bytes a file system allows) are written with the bad bytes escaped
   (``\\xff``) in tables, CSV and JSON (:func:`safe_text`), so one odd name never stops a run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

# what cv2.imencode writes; anything else (gif, pgm, ppm...) gets ".png" appended to its name
WRITABLE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

PathLike = str | os.PathLike


class OutputError(ValueError):
    """An output path breaks a rule above; the message names the option, the path and the clash."""


def safe_text(s: str) -> str:
    """``s`` with undecodable bytes of a file name (surrogate escapes) written as ``\\xNN``: always encodable."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _key(p: PathLike) -> str:
    return os.path.normcase(os.path.realpath(os.fspath(p)))


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name the same file (hard links and symlinks included; missing files by path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _key(a) == _key(b)


def check_outputs(outputs: Mapping[str, PathLike | None],
                  inputs: Iterable[PathLike] | Mapping[PathLike, str | None],
                  folders: Iterable[str] = ("--annotate",)) -> None:
    """Refuse outputs that are an input of the run, the same file as another output, or (for a file
    output, any option not in ``folders``) an existing folder.

    ``outputs`` maps an option name (``"--csv"``) to its path (None = not asked for). ``inputs`` lists the
    input paths, or maps each to the option that gave it (``{"runs/a/best.pt": "--init"}``), which the
    message then names. Every command that writes calls this before it reads or writes anything."""
    given = {opt: p for opt, p in outputs.items() if p}
    if not given:
        return
    for opt, p in given.items():
        if opt not in folders and os.path.isdir(p):
            raise OutputError(f"{opt} {safe_text(os.fspath(p))}: is a folder, give a file name")
    named = dict(inputs) if isinstance(inputs, Mapping) else dict.fromkeys(inputs)
    keys: dict[str, tuple[PathLike, str | None]] = {}
    for p, opt in named.items():
        if p:
            keys.setdefault(_key(p), (p, opt))
    for opt, p in given.items():
        hit = keys.get(_key(p))
        if hit is None and os.path.exists(p):
            hit = next((i for i in keys.values() if os.path.exists(i[0]) and same_file(p, i[0])), None)
        if hit is not None:
            what = safe_text(os.fspath(hit[0]))
            raise OutputError(f"{opt} {safe_text(os.fspath(p))}: is an input of this run "
                              f"({f'{hit[1]} ' if hit[1] else ''}{what}); outputs never replace inputs, "
                              "choose another path")
    seen: dict[str, str] = {}
    for opt, p in given.items():
        k = _key(p)
        if k in seen:
            raise OutputError(f"{seen[k]} and {opt} are the same file ({safe_text(os.fspath(p))}); "
                              "give each output its own path")
        seen[k] = opt


def check_script_outputs(parser, outputs: Mapping[str, PathLike | None],
                         inputs: Iterable[PathLike] | Mapping[PathLike, str | None]) -> None:
    """:func:`check_outputs` for a script of ``scripts/``: a broken rule ends it through ``parser.error`` (the
    usage line and the message, exit status 2), before anything is read or written."""
    try:
        check_outputs(outputs, inputs)
    except OutputError as e:
        parser.error(str(e))


def _clean(part: str) -> str:
    part = safe_text(part).replace("/", "_").replace("\\", "_").replace("\x00", "_")
    return part if part not in ("", ".", "..") else "_"


def _root_label(root: Path) -> str:
    name = root.name if root.name not in ("", ".", "..") else Path(os.path.abspath(root)).name
    return _clean(name or "root")


def _out_name(name: str) -> str:
    return name if Path(name).suffix.lower() in WRITABLE_EXTS else name + ".png"


def _unique(rel: tuple[str, ...], used: set[str]) -> tuple[str, ...]:
    stem, dot, ext = rel[-1].rpartition(".")
    if not dot or not stem:
        stem, ext = rel[-1], ""
    cand, n = rel, 1
    while "/".join(cand).casefold() in used:  # casefold: two names must differ on any file system
        n += 1
        cand = (*rel[:-1], f"{stem}-{n}" + (f".{ext}" if ext else ""))
    used.add("/".join(cand).casefold())
    return cand


def output_names(files: Sequence[PathLike], inputs: Sequence[PathLike]) -> list[tuple[str, ...]]:
    """Relative output names (path parts) for ``files`` found from the command-line ``inputs``.

    A file under a folder argument keeps its path inside that folder, prefixed by the folder's name; a file
    given directly (or through a glob) keeps its name only. The parts are clean (rule 2) and the names
    distinct (rule 3), in the order of ``files``."""
    roots: list[tuple[Path, str]] = []
    labels: set[str] = set()
    for i in inputs:
        r = Path(i)
        if r.is_dir() and all(_key(r) != _key(q) for q, _ in roots):
            label = _unique((_root_label(r),), labels)[0]
            roots.append((r, label))
    used: set[str] = set()
    out = []
    for f in files:
        f = Path(f)
        rel: tuple[str, ...] | None = None
        for r, label in roots:
            try:
                inner = f.relative_to(r)
            except ValueError:
                continue
            rel = (label, *(_clean(p) for p in inner.parts))
            break
        if rel is None:
            rel = (_clean(f.name),)
        rel = (*rel[:-1], _out_name(rel[-1]))
        out.append(_unique(rel, used))
    return out


def output_paths(out_dir: PathLike, files: Sequence[PathLike], inputs: Sequence[PathLike],
                 option: str = "--annotate") -> list[Path]:
    """One path inside ``out_dir`` for each file (see :func:`output_names`); none of them is an input."""
    base = Path(out_dir)
    paths = [base.joinpath(*parts) for parts in output_names(files, inputs)]
    keys = {_key(f): f for f in files}
    for p, f in zip(paths, files, strict=True):
        hit = keys.get(_key(p))
        if hit is not None:
            raise OutputError(f"{option} {safe_text(os.fspath(out_dir))}: the copy of {safe_text(os.fspath(f))} "
                              f"would replace the input {safe_text(os.fspath(hit))}; outputs never replace inputs, "
                              "choose a folder that holds no input")
    return paths


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
