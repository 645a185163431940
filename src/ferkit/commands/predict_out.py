"""What ``ferkit predict`` writes: the terminal table, ``--csv`` rows, ``--json`` lines and ``--out`` annotated
copies, one image at a time as its batch is classified (:class:`Writers`).

``--csv FILE`` and ``--json FILE`` are written beside FILE (``.FILE.<pid>.tmp``, flushed after every batch) and
renamed into place when the run ends: at its end, or at a Ctrl-C, which keeps every image done so far in every
output. A run that fails (a full disk: an error naming the file) leaves FILE as it was. Annotated copies are
written one by one, each atomically. Rows, lines and copies of one image are written together: a Ctrl-C never
leaves an image in one output and not in another.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np

from ..emotions import EMOTIONS
from .options import STDOUT

# landmarks: "x,y" pairs separated by spaces, in ferkit.faces.LANDMARK_NAMES order (empty if none)
CSV_COLUMNS = ["file", "face", "x", "y", "w", "h", "score", "label", "confidence", *EMOTIONS, "detector",
               "landmarks", "status"]
JSON_SCHEMA = "ferkit.predict/1"  # one object per image: {"schema", "file", "faces": [face...], "error"}
_EMPTY = len(CSV_COLUMNS) - 2  # cells between "file" and "status"


def atomic_write_image(path: Path, bgr: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    if ext not in (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"):
        path = path.with_suffix(".png")
        ext = ".png"
    ok, buf = cv2.imencode(ext, bgr)
    if not ok:
        raise OSError(f"{path}: cannot encode image")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class StagedText:
    """A text output written beside ``path`` and renamed into place by ``close(keep=True)``; a failed write
    is an :class:`~ferkit.outputs.OutputError` naming the file (``path`` itself is left as it was)."""

    def __init__(self, option: str, path: str | os.PathLike, newline: str | None = None):
        self.option, self.path = option, Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.lines = 0  # lines written, the header included
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.f = open(self.tmp, "w", encoding="utf-8", newline=newline)  # noqa: SIM115
        except OSError as e:
            raise self._failed(e) from e

    def _failed(self, e: OSError):
        from ..outputs import OutputError, safe_text

        return OutputError(f"{self.option} {safe_text(os.fspath(self.path))}: cannot write ({e.strerror or e}); "
                           "the file was left as it was")

    def guard(self, fn, *a) -> None:
        try:
            fn(*a)
        except OSError as e:
            raise self._failed(e) from e

    def flush(self) -> None:
        self.guard(self.f.flush)

    def close(self, keep: bool) -> None:
        """Rename the file into place (``keep``), else remove it."""
        try:
            if keep:
                self.guard(self.f.close)
                self.guard(os.replace, self.tmp, self.path)
        finally:
            if not self.f.closed:
                try:
                    self.f.close()
                except OSError:
                    pass
            self.tmp.unlink(missing_ok=True)


class _CsvRows(StagedText):
    def __init__(self, path):
        super().__init__("--csv", path, newline="")
        self._w = csv.writer(self.f)
        self.row(CSV_COLUMNS)

    def row(self, cells) -> None:
        self.guard(self._w.writerow, cells)
        self.lines += 1


class Writers:
    def __init__(self, args):
        self.args = args
        self.csv = _CsvRows(args.csv) if args.csv else None
        self.json_file = None
        try:
            if args.json and args.json != STDOUT:  # JSON lines to a file, renamed into place at the end
                self.json_file = StagedText("--json", args.json)
        except BaseException:
            if self.csv:
                self.csv.close(keep=False)
            raise
        self.table = args.json != STDOUT and not args.quiet
        self.header_done = False
        self.n_images = self.n_faces = self.n_errors = self.n_noface = self.n_annotated = 0
        self.n_done = 0  # files of the run with their result written (read or not)
        self.last_error: str | None = None

    def _print_table_row(self, file, face, box, label, conf, probs, status=""):
        if not self.header_done:
            short = "".join(f"{e:>9}" for e in EMOTIONS)  # full names: "surprise" is 8 characters
            print(f"{'file':<40} {'face':>4} {'box (x,y,w,h)':<22} {'label':<9}{'conf':>6}{short}")
            self.header_done = True
        name = file if len(file) <= 40 else "…" + file[-39:]
        if status:
            print(f"{name:<40} {'-':>4} {'':<22} {status}")
            return
        b = ",".join(str(v) for v in box)
        ps = "".join(f"{float(p):>9.3f}" for p in probs)
        print(f"{name:<40} {face:>4} {b:<22} {label:<9}{conf:>6.2f}{ps}")

    def error(self, name: str, message: str) -> None:
        """A file or input that gave no result: stderr, and a row in --csv / --json so they stay complete."""
        from ..outputs import safe_text

        name, message = safe_text(name), safe_text(message)
        self.n_errors += 1
        self.last_error = message
        print(f"ferkit predict: skipped {message}", file=sys.stderr)
        if self.csv:
            self.csv.row([name, *[""] * _EMPTY, f"error: {message}"])
        self._json(name, [], message)

    def _json(self, name: str, faces: list, error: str | None = None) -> None:
        if self.args.json:
            line = json.dumps({"schema": JSON_SCHEMA, "file": name, "faces": faces, "error": error})
            if self.json_file:
                self.json_file.guard(self.json_file.f.write, line + "\n")
                self.json_file.lines += 1
            else:
                print(line)

    def emit(self, item, rec) -> None:
        """Every output's share of one image (a ``predict._Item`` whose batch was classified)."""
        self.n_done += 1
        args = self.args
        if item.error:
            self.error(item.rel, item.error)
            return
        self.n_images += 1
        if item.note:
            print(f"ferkit predict: note: {item.note}; boxes are in the original pixels", file=sys.stderr)
        if not item.dets:
            self.n_noface += 1
            if self.csv:
                self.csv.row([item.rel, *[""] * _EMPTY, "no face"])
            if self.table:
                self._print_table_row(item.rel, None, None, None, None, None, status="(no face found)")
        from ..outputs import safe_text
        from ..recognizer import Face, NonFiniteOutput

        probs = item.probs if item.probs is not None else []
        json_faces, faces, bad = [], [], []
        for i, (d, p) in enumerate(zip(item.dets, probs, strict=False)):
            try:
                f = Face.build(d, p, item.detector)
            except NonFiniteOutput as e:  # one face without a label: an error row, the others go on
                self.n_errors += 1
                msg = safe_text(f"{item.rel}: face {i}: {e}")
                self.last_error = msg
                bad.append(msg)
                print(f"ferkit predict: {msg}", file=sys.stderr)
                if self.csv:
                    self.csv.row([item.rel, i, *d.box, f"{d.score:.4f}", *[""] * (2 + len(EMOTIONS)),
                                  item.detector or "", "", f"error: {msg}"])
                if self.table:
                    self._print_table_row(item.rel, i, None, None, None, None, status=f"(error: {e})")
                continue
            faces.append(f)
            self.n_faces += 1
            x, y, w, h = f.box
            if self.csv:
                marks = " ".join(f"{px:.1f},{py:.1f}" for px, py in f.landmarks) if f.landmarks else ""
                self.csv.row([item.rel, i, x, y, w, h, f"{f.score:.4f}", f.label, f"{f.confidence:.6f}",
                              *[f"{float(v):.6f}" for v in f.probs], f.detector or "", marks, "ok"])
            if args.json:  # a face in JSON has one shape everywhere: Face.as_dict() (API, serve)
                json_faces.append({"face": i} | f.as_dict())
            if self.table:
                self._print_table_row(item.rel, i, f.box, f.label, f.confidence, f.probs)
        self._json(item.rel, json_faces, "; ".join(bad) or None)
        if args.annotate and item.bgr is not None:
            from ..render import annotate_image

            img = annotate_image(item.bgr, faces, bars=args.bars, scale=item.scale)
            try:
                atomic_write_image(item.out, img)
                self.n_annotated += 1
            except OSError as e:
                self.n_errors += 1
                print(f"ferkit predict: cannot write annotated {item.rel}: {e}", file=sys.stderr)
            item.bgr = None

    def flush(self):
        for f in (self.csv, self.json_file):
            if f:
                f.flush()
        sys.stdout.flush()

    def close(self, keep: bool = True):
        """Put --csv and --json in place (``keep``: the run ended or was interrupted), else remove them."""
        try:
            if self.csv:
                self.csv.close(keep)
        finally:
            if self.json_file:
                self.json_file.close(keep)

    def kept(self) -> str:
        """What the outputs hold, for the message after a Ctrl-C."""
        a = self.args
        parts = [f"{a.csv}: {self.csv.lines - 1} row(s)" if self.csv else "",
                 f"{a.json}: {self.json_file.lines} line(s)" if self.json_file else "",
                 f"{a.annotate}: {self.n_annotated} annotated copie(s)" if a.annotate else ""]
        return "; ".join(p for p in parts if p)


class WriteInterrupts:
    """Ctrl-C during a batch's writes waits for them to end (an image is in every output or in none); at any
    other moment it raises KeyboardInterrupt at once. Installed only in the main thread (signals go there).
    Shared by local and ``--ray`` runs."""

    def __init__(self):
        self.writing = False
        self.pending = False

    def _handler(self, signum, frame):
        if self.writing:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, old)

    @contextlib.contextmanager
    def writes(self):
        self.writing = True
        try:
            yield
        finally:
            self.writing = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt
