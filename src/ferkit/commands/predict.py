"""``ferkit predict PATH...``: emotions of every face in images, folders (recursive) and globs.

Streaming pipeline: files are decoded and faces detected in a thread pool (a bounded window of files in
flight, so memory stays flat on folders of any size), crops from several images are classified together
in one ONNX call per ``--batch-size`` crops, and each result is written as soon as its batch is done
(terminal table, JSON lines, CSV flushed per batch, annotated copies: :mod:`ferkit.commands.predict_out`).
A file that cannot be read is reported (path and problem) and skipped. Ctrl-C stops reading new files,
classifies the ones already read, and keeps every image done in every output (a second Ctrl-C stops at once,
keeping what is written). No torch.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .options import STDOUT, add_json, add_progress, add_quiet, describe_default, progress_enabled, say_model
from .predict_out import CSV_COLUMNS, JSON_SCHEMA, WriteInterrupts, Writers
from .predict_parquet import add_parquet, no_images, open_writers
from .predict_ray import add_ray_options

__all__ = ["CSV_COLUMNS", "JSON_SCHEMA", "add_parser", "cmd_predict"]


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
    describe_default(p.add_argument(
        "--model", default=None, help="'default', 'fast', 'ferplus', 'fer2013', a path to a ferkit .onnx, or a Keras "
                                      "model (emotiondetector.h5, .keras, .json; converted once, cached)"), "'default'")
    p.add_argument("--detector", default="auto",
                   help="auto | centerface | dlib | haar | full; auto = centerface, shipped")
    p.add_argument("--crop", action="store_true",
                   help="inputs are face crops already: no detection (images <= 96 px are taken as crops anyway)")
    p.add_argument("--min-face", type=int, default=24, help="smallest face side in pixels")
    describe_default(p.add_argument("--threshold", type=float, default=None,
                                    help="detector score threshold in the detector's units"), "the detector's own")
    p.add_argument("--max-faces", type=int, default=None, help="keep at most N faces per image (best first)")
    p.add_argument("--max-side", type=int, default=640,
                   help="images are scaled so the longer side is at most this for detection (0 = never); boxes "
                        "are always reported in original pixels")
    add_json(p, "one object per image, one per line,")
    add_quiet(p)
    p.add_argument("--csv", metavar="FILE",
                   help="write one row per face to FILE (flushed as it goes beside FILE, which is replaced when the "
                        "run ends, also on Ctrl-C)")
    p.add_argument("--out", "--annotate", dest="annotate", metavar="DIR",
                   help="write annotated copies of the images into DIR (--annotate is the same option)")
    p.add_argument("--no-bars", dest="bars", action="store_false", help="annotate without probability bars")
    p.add_argument("--batch-size", type=int, default=64, help="face crops per inference call")
    describe_default(p.add_argument("--threads", type=int, default=None, help="onnxruntime threads"), "all cores")
    describe_default(p.add_argument("--workers", type=int, default=None, help="decoding/detection threads"),
                     "cores, at most 8")
    add_progress(p)
    add_parquet(p)
    add_ray_options(p)  # --ray [ADDRESS], --num-workers: commands/predict_ray.py
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
    written: bool = False  # its share of every output is written


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


def _classify_pending(pending: list[_Item], rec, writers: Writers, batch_size: int, sig: WriteInterrupts) -> None:
    """Classify the crops of ``pending`` (items read, not yet written) in one go, then write every item."""
    todo = [it for it in pending if not it.written]
    ok = [it for it in todo if not it.error and it.crops is not None and len(it.crops) and it.probs is None]
    if ok:
        probs = rec.predict_arrays(np.concatenate([it.crops for it in ok]), batch_size)
        k = 0
        for it in ok:
            n = len(it.crops)
            it.probs, k = probs[k:k + n], k + n
    with sig.writes():
        for it in todo:
            it.crops = None
            writers.emit(it, rec)
            it.written = True
        writers.flush()


def cmd_predict(args) -> int:
    from ..images import list_images
    from ..outputs import OutputError, check_outputs, output_paths, same_file
    from ..recognizer import Recognizer

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, not {args.batch_size}")
    if args.ray is not None:  # the same rows, computed on a Ray cluster
        from .predict_ray import predict_on_ray

        return predict_on_ray(args)
    if args.num_workers is not None:
        raise ValueError("--num-workers sets the workers of a --ray run; a local run has --workers")
    files, problems = list_images(args.paths)
    if not files:
        return no_images(args, problems)
    # outputs never touch inputs (ferkit.outputs): checked before anything is written
    outs = output_paths(args.annotate, files, args.paths) if args.annotate else [None] * len(files)
    json_file = args.json if args.json not in (None, STDOUT) else None
    check_outputs({"--csv": args.csv, "--json": json_file, "--parquet": args.parquet, "--annotate": args.annotate},
                  files)
    if args.csv and args.annotate and any(same_file(args.csv, o) for o in outs):
        raise OutputError(f"--csv {args.csv}: is also the name of an annotated copy; choose another path")
    detector = "full" if args.crop else args.detector
    rec = Recognizer(model=args.model, detector=detector, min_face=args.min_face, threshold=args.threshold,
                     max_faces=args.max_faces, threads=args.threads, max_side=args.max_side or None)
    say_model("predict", rec.metadata)
    names = _display_names(files, args.paths)
    workers = args.workers or min(8, os.cpu_count() or 2)
    window = max(2 * workers, 2 * args.batch_size)  # files in flight: bounds memory
    bar = None
    if progress_enabled(args) and len(files) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="img", file=sys.stderr, dynamic_ncols=True)
    t0 = time.perf_counter()
    ex = ThreadPoolExecutor(max_workers=workers)
    sig = WriteInterrupts()
    inflight: deque = deque()
    pending: list[_Item] = []
    keep = interrupted = False
    writers = None
    with sig.installed():
        try:
            writers = open_writers(args)
            with sig.writes():
                for item, why in problems:  # inputs that matched nothing: a row each, so --csv/--json stay complete
                    writers.error(item, f"{item}: {why}")
            try:
                todo = iter(zip(files, names, outs, strict=True))
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
                    it = inflight[0].result()
                    inflight.popleft()
                    pending.append(it)
                    pending_crops += 0 if it.crops is None else len(it.crops)
                    if bar is not None:
                        bar.update()
                    if pending_crops >= args.batch_size or len(pending) >= window:
                        _classify_pending(pending, rec, writers, args.batch_size, sig)
                        pending, pending_crops = [], 0
                _classify_pending(pending, rec, writers, args.batch_size, sig)
            except KeyboardInterrupt:
                interrupted = True
                _finish_read(pending, inflight, rec, writers, args.batch_size, sig)
            keep = True
        except KeyboardInterrupt:  # before the first file, or a second Ctrl-C while finishing: keep what is done
            interrupted = keep = writers is not None
            if writers is None:
                raise
        finally:
            ex.shutdown(wait=False, cancel_futures=True)
            if bar is not None:
                bar.close()
            if writers is not None:
                writers.close(keep=keep)
    dt = time.perf_counter() - t0
    print(f"ferkit predict: {writers.n_images} image(s), {writers.n_faces} face(s), "
          f"{writers.n_noface} without a face, {writers.n_errors} error(s) in {dt:.1f}s "
          f"[model {rec.model_path.name}, detector {rec.detector.name}]", file=sys.stderr)
    if interrupted:
        kept = writers.kept()
        print(f"ferkit predict: interrupted: {writers.n_done} of {len(files)} image(s) done"
              + (f", kept in every output ({kept})" if kept else "")
              + f"; {len(files) - writers.n_done} not processed", file=sys.stderr)
        return 130
    if args.csv:
        print(f"ferkit predict: rows written to {args.csv}", file=sys.stderr)
    if json_file:
        print(f"ferkit predict: JSON lines written to {json_file}", file=sys.stderr)
    if args.parquet:
        print(f"ferkit predict: Parquet rows written to {args.parquet}", file=sys.stderr)
    if args.annotate:
        print(f"ferkit predict: annotated images in {args.annotate}", file=sys.stderr)
    return 1 if writers.n_errors or problems else 0


def _finish_read(pending: list[_Item], inflight: deque, rec, writers: Writers, batch_size: int,
                 sig: WriteInterrupts) -> None:
    """After a Ctrl-C: the files already read (pending, and those in flight whose reading is done) are
    classified and written, so that no finished work is lost; nothing new is read."""
    ready = pending + [f.result() for f in inflight if f.done() and not f.cancelled()]
    left = sum(not it.written for it in ready)
    if left:
        print(f"\nferkit predict: interrupted: writing the {left} image(s) already read (Ctrl-C again to stop "
              "now)", file=sys.stderr)
    _classify_pending(ready, rec, writers, batch_size, sig)
