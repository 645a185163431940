"""``ferkit predict PATH...``: emotions of every face in images, folders (recursive) and globs.

Streaming pipeline: files are decoded and faces detected in a thread pool (a bounded window of files in
flight, so memory stays flat on folders of any size), crops from several images are classified together
in one ONNX call per ``--batch-size`` crops, and each result is written as soon as its batch is done
(terminal table, JSON lines, CSV flushed per batch, annotated copies). A file that cannot be read is
reported (path and problem) and skipped. No torch.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..emotions import EMOTIONS
from .options import STDOUT, add_json, add_progress, add_quiet, progress_enabled, say_model

# landmarks: "x,y" pairs separated by spaces, in ferkit.faces.LANDMARK_NAMES order (empty if none)
CSV_COLUMNS = ["file", "face", "x", "y", "w", "h", "score", "label", "confidence", *EMOTIONS, "detector",
               "landmarks", "status"]
JSON_SCHEMA = "ferkit.predict/1"  # one object per image: {"schema", "file", "faces": [face...], "error"}
_EMPTY = len(CSV_COLUMNS) - 2  # cells between "file" and "status"


def add_parser(sub):
    p = sub.add_parser(
        "predict", help="emotions of the faces in photos, folders and globs (no torch needed)",
        description="Detect faces and classify their emotion. Prints a table; --json writes one JSON object "
                    "per image (JSON lines: {\"schema\": \"ferkit.predict/1\", \"file\", \"faces\": [...], "
                    "\"error\"}; each face as Face.as_dict() plus its index); --csv FILE writes one row per face "
                    "as it goes; --out DIR writes copies with boxes, labels and probability bars. Images without "
                    "a face get an empty faces list (a 'no face' row); unreadable files are reported and skipped.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image files, folders (searched recursively) or globs")
    p.add_argument("--model", default=None,
                   help="'default', 'fast', a path to a ferkit .onnx, or a Keras model (emotiondetector.h5, "
                        ".keras, .json; converted once, cached) (default: default)")
    p.add_argument("--detector", default="auto",
                   help="auto | centerface | dlib | haar | full (default auto: centerface, shipped)")
    p.add_argument("--crop", action="store_true",
                   help="inputs are face crops already: no detection (images <= 96 px are taken as crops anyway)")
    p.add_argument("--min-face", type=int, default=24, help="smallest face side in pixels (default 24)")
    p.add_argument("--threshold", type=float, default=None,
                   help="detector score threshold in the detector's units (default: the detector's own)")
    p.add_argument("--max-faces", type=int, default=None, help="keep at most N faces per image (best first)")
    p.add_argument("--max-side", type=int, default=640,
                   help="images are scaled so the longer side is at most this for detection (default 640; "
                        "0 = never); boxes are always reported in original pixels")
    add_json(p, "one object per image, one per line,")
    add_quiet(p)
    p.add_argument("--csv", metavar="FILE", help="write one row per face to FILE (flushed as it goes)")
    p.add_argument("--out", "--annotate", dest="annotate", metavar="DIR",
                   help="write annotated copies of the images into DIR (--annotate is the same option)")
    p.add_argument("--no-bars", dest="bars", action="store_false", help="annotate without probability bars")
    p.add_argument("--batch-size", type=int, default=64, help="face crops per inference call (default 64)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding/detection threads (default: cores, max 8)")
    add_progress(p)
    p.set_defaults(func=cmd_predict)


# --------------------------------------------------------------------------- pipeline pieces


@dataclass
class _Item:
    path: Path
    rel: str  # name shown (undecodable bytes escaped)
    out: Path | None = None  # annotated copy (--annotate), from ferkit.outputs
    dets: list = field(default_factory=list)
    crops: np.ndarray | None = None
    bgr: np.ndarray | None = None  # kept only for --annotate
    error: str | None = None
    probs: np.ndarray | None = None
    detector: str | None = None
    note: str | None = None  # decoded at reduced size (ferkit.images.load_image): said once on stderr
    scale: float = 1.0  # pixels of bgr per pixel of the file (boxes are in the file's pixels)


def _display_names(files: list[Path], inputs: list[str]) -> list[str]:
    """Relative names: a file under a folder argument keeps its path inside that folder."""
    from ..outputs import safe_text

    roots = [Path(i) for i in inputs if Path(i).is_dir()]
    out = []
    for f in files:
        name = None
        for r in roots:
            try:
                name = str(Path(r.name) / f.relative_to(r))
                break
            except ValueError:
                continue
        out.append(safe_text(name or str(f)))
    return out


def _load(item: _Item, rec, crop_mode: bool, keep_image: bool) -> _Item:
    from ..images import ImageError, load_image
    from ..recognizer import in_file_pixels, to_face48

    try:
        img = load_image(item.path)  # a huge file is decoded at reduced size; boxes stay in the file's pixels
        bgr, item.note, item.scale = img.bgr, img.note, img.bgr.shape[1] / img.size[0]
        if crop_mode:
            w, h = img.size
            from ..faces import Detection

            item.dets = [Detection((0, 0, w, h), 1.0)]
            item.crops = to_face48(bgr)[None]
            item.detector = "crop"
        else:
            dets, item.crops, item.detector = rec.locate(bgr)
            item.dets = in_file_pixels(dets, img)
        if keep_image:
            item.bgr = bgr
    except (ImageError, ValueError, OSError) as e:
        item.error = str(e) if str(item.path) in str(e) else f"{item.path}: {e}"
    except Exception as e:  # noqa: BLE001 - one bad file never kills the batch
        item.error = f"{item.path}: {type(e).__name__}: {e}"
    return item


def _atomic_write_image(path: Path, bgr: np.ndarray) -> None:
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
    with open(tmp, "wb") as f:
        f.write(buf.tobytes())
    os.replace(tmp, path)


class _Writers:
    def __init__(self, args):
        self.args = args
        self.csv_file = None
        self.csv = None
        if args.csv:
            Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
            self.csv_file = open(args.csv, "w", newline="", encoding="utf-8")  # noqa: SIM115
            self.csv = csv.writer(self.csv_file)
            self.csv.writerow(CSV_COLUMNS)
            self.csv_file.flush()
        self.json_file = self.json_tmp = None
        if args.json and args.json != STDOUT:  # JSON lines to a file, renamed into place when complete
            path = Path(args.json)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.json_tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            self.json_file = open(self.json_tmp, "w", encoding="utf-8")  # noqa: SIM115
        self.table = args.json != STDOUT and not args.quiet
        self.header_done = False
        self.n_images = self.n_faces = self.n_errors = self.n_noface = 0
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
            self.csv.writerow([name, *[""] * _EMPTY, f"error: {message}"])
        self._json(name, [], message)

    def _json(self, name: str, faces: list, error: str | None = None) -> None:
        if self.args.json:
            line = json.dumps({"schema": JSON_SCHEMA, "file": name, "faces": faces, "error": error})
            print(line, file=self.json_file or sys.stdout)

    def emit(self, item: _Item, rec) -> None:
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
                self.csv.writerow([item.rel, *[""] * _EMPTY, "no face"])
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
                    self.csv.writerow([item.rel, i, *d.box, f"{d.score:.4f}", *[""] * (2 + len(EMOTIONS)),
                                       item.detector or "", "", f"error: {msg}"])
                if self.table:
                    self._print_table_row(item.rel, i, None, None, None, None, status=f"(error: {e})")
                continue
            faces.append(f)
            self.n_faces += 1
            x, y, w, h = f.box
            if self.csv:
                marks = " ".join(f"{px:.1f},{py:.1f}" for px, py in f.landmarks) if f.landmarks else ""
                self.csv.writerow([item.rel, i, x, y, w, h, f"{f.score:.4f}", f.label, f"{f.confidence:.6f}",
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
                _atomic_write_image(item.out, img)
            except OSError as e:
                self.n_errors += 1
                print(f"ferkit predict: cannot write annotated {item.rel}: {e}", file=sys.stderr)
            item.bgr = None

    def flush(self):
        if self.csv_file:
            self.csv_file.flush()
        sys.stdout.flush()

    def close(self, ok: bool = True):
        if self.csv_file:
            self.csv_file.close()
        if self.json_file:
            self.json_file.close()
            if ok:
                os.replace(self.json_tmp, self.args.json)
            else:
                self.json_tmp.unlink(missing_ok=True)


def _classify_pending(pending: list[_Item], rec, writers: _Writers, batch_size: int) -> None:
    ok = [it for it in pending if not it.error and it.crops is not None and len(it.crops)]
    if ok:
        probs = rec.predict_arrays(np.concatenate([it.crops for it in ok]), batch_size)
        k = 0
        for it in ok:
            n = len(it.crops)
            it.probs, k = probs[k:k + n], k + n
    for it in pending:
        it.crops = None
        writers.emit(it, rec)
    writers.flush()


def cmd_predict(args) -> int:
    from ..images import list_images
    from ..outputs import OutputError, check_outputs, output_paths, safe_text, same_file
    from ..recognizer import Recognizer

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, not {args.batch_size}")
    files, problems = list_images(args.paths)
    if not files:
        for item, why in problems:
            print(f"ferkit predict: {safe_text(item)}: {why}", file=sys.stderr)
        print("ferkit predict: error: no images to process", file=sys.stderr)
        return 2
    # outputs never touch inputs (ferkit.outputs): checked before anything is written
    outs = output_paths(args.annotate, files, args.paths) if args.annotate else [None] * len(files)
    json_file = args.json if args.json not in (None, STDOUT) else None
    check_outputs({"--csv": args.csv, "--json": json_file, "--annotate": args.annotate}, files)
    if args.csv and args.annotate and any(same_file(args.csv, o) for o in outs):
        raise OutputError(f"--csv {args.csv}: is also the name of an annotated copy; choose another path")
    detector = "full" if args.crop else args.detector
    rec = Recognizer(model=args.model, detector=detector, min_face=args.min_face, threshold=args.threshold,
                     max_faces=args.max_faces, threads=args.threads, max_side=args.max_side or None)
    say_model("predict", rec.metadata)
    names = _display_names(files, args.paths)
    workers = args.workers or min(8, os.cpu_count() or 2)
    window = max(2 * workers, 2 * args.batch_size)  # files in flight: bounds memory
    writers = _Writers(args)
    for item, why in problems:  # inputs that matched nothing: a row each, so --csv/--json stay complete
        writers.error(item, f"{item}: {why}")
    bar = None
    if progress_enabled(args) and len(files) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="img", file=sys.stderr, dynamic_ncols=True)
    t0 = time.perf_counter()
    ex = ThreadPoolExecutor(max_workers=workers)
    finished = False
    try:
        inflight: deque = deque()
        todo = iter(zip(files, names, outs, strict=True))
        pending: list[_Item] = []
        pending_crops = 0
        done = False
        while not done or inflight:
            while not done and len(inflight) < window:
                nxt = next(todo, None)
                if nxt is None:
                    done = True
                    break
                inflight.append(ex.submit(_load, _Item(*nxt), rec, args.crop, bool(args.annotate)))
            if not inflight:
                break
            it = inflight.popleft().result()
            pending.append(it)
            pending_crops += 0 if it.crops is None else len(it.crops)
            if bar is not None:
                bar.update()
            if pending_crops >= args.batch_size or len(pending) >= window:
                _classify_pending(pending, rec, writers, args.batch_size)
                pending, pending_crops = [], 0
        _classify_pending(pending, rec, writers, args.batch_size)
        finished = True
    finally:
        ex.shutdown(wait=False, cancel_futures=True)
        if bar is not None:
            bar.close()
        writers.close(ok=finished)
    dt = time.perf_counter() - t0
    print(f"ferkit predict: {writers.n_images} image(s), {writers.n_faces} face(s), "
          f"{writers.n_noface} without a face, {writers.n_errors} error(s) in {dt:.1f}s "
          f"[model {rec.model_path.name}, detector {rec.detector.name}]", file=sys.stderr)
    if args.csv:
        print(f"ferkit predict: rows written to {args.csv}", file=sys.stderr)
    if json_file:
        print(f"ferkit predict: JSON lines written to {json_file}", file=sys.stderr)
    if args.annotate:
        print(f"ferkit predict: annotated images in {args.annotate}", file=sys.stderr)
    return 1 if writers.n_errors or problems else 0
