"""``ferkit predict PATHS --ray [ADDRESS]``: the rows of a local run, computed on a Ray cluster.

This process (the driver) lists the inputs as a local run does (:func:`ferkit.ray.list_inputs`), hands Ray Data a
dataset of their paths, and writes what comes back with predict's own writers (table, ``--csv``, ``--json``,
``--parquet``) in input order, image by image: an image is in every output or in none. The workers, an actor
pool of :class:`ferkit.ray.FerkitPredictor` (``--num-workers`` actors of ``--threads`` CPUs, one model each),
read, decode, detect and classify; a bad file is an error row, as at home. A worker that dies is restarted by Ray
and its tasks run again: every image is written once, and the count is checked (images written == images listed,
else the outputs are not put in place). Ctrl-C keeps every image done in every output. Annotated copies
(``--out``) are for local runs.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .options import STDOUT, describe_default, progress_enabled, say_model
from .predict_out import WriteInterrupts
from .predict_parquet import no_images, open_writers

_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")


def ray_address(value: str) -> str:
    """argparse type of ``--ray [ADDRESS]``: ``auto`` or ``HOST:PORT`` (``local``, what ``--ray`` alone means)."""
    if value in ("auto", "local") or _ADDRESS.match(value):
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a Ray address ('auto' or HOST:PORT); to start a local Ray instance and read {value!r} "
        "as an input, put --ray after the inputs")


def add_ray_options(p: argparse.ArgumentParser) -> None:
    from ..ray.cluster import LOCAL

    p.add_argument("--ray", nargs="?", const=LOCAL, default=None, type=ray_address, metavar="ADDRESS",
                   help="run on Ray (pip install 'ferkit[ray]'): without ADDRESS on a local Ray instance started "
                        "for this run; 'auto' or HOST:PORT: an existing cluster. The same rows as a local run; "
                        "--threads counts per worker (1 unless given)")
    describe_default(p.add_argument("--num-workers", type=int, default=None,
                                    help="with --ray: worker actors, one model each"),
                     "the cluster's CPUs / --threads")


@dataclass
class _Item:
    """One image's result as predict's writers take it (what a local run's ``predict._Item`` holds)."""

    rel: str
    dets: list = field(default_factory=list)
    probs: np.ndarray | None = None
    detector: str | None = None
    error: str | None = None
    note: str | None = None
    bgr: None = None
    out: None = None
    scale: float = 1.0


def _item(rows: dict) -> _Item:
    """The rows of one image (keyed by face index; -1 for a no-face or error row) -> an item."""
    from ..emotions import EMOTIONS
    from ..faces import Detection

    first = next(iter(rows.values()))
    it = _Item(first["file"], note=first["note"])
    if first["face"] is None:
        if first["status"].startswith("error: "):
            it.error = first["status"][len("error: "):]
        return it
    faces = [rows[k] for k in sorted(rows)]
    it.detector = first["detector"]
    it.dets = [Detection((r["x"], r["y"], r["w"], r["h"]), r["score"],
                         None if r["landmarks"] is None else tuple(zip(r["landmarks"][::2], r["landmarks"][1::2],
                                                                       strict=True)))
               for r in faces]
    it.probs = np.array([[r[e] for e in EMOTIONS] for r in faces], np.float32)
    return it


def _check(args) -> int:
    if args.annotate:
        raise ValueError("--out/--annotate (annotated copies) is for local runs, not --ray")
    if args.workers:
        raise ValueError("--workers (decoding threads of a local run) does not apply to --ray: --num-workers sets "
                         "the worker actors, --threads the CPUs of each")
    if args.num_workers is not None and args.num_workers < 1:
        raise ValueError(f"--num-workers must be >= 1, not {args.num_workers}")
    threads = 1 if args.threads is None else args.threads
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, not {threads}")
    return threads


def predict_on_ray(args) -> int:
    from pathlib import Path

    from ..faces import resolve_name
    from ..outputs import check_outputs
    from ..ray import block_size, connect, disconnect, list_inputs, paths_dataset, predict_dataset
    from ..ray.cluster import LOCAL, require_ray
    from ..ray.predictor import is_uri
    from ..recognizer import _resolve_model

    threads = _check(args)
    require_ray()
    paths, names, problems = list_inputs(args.paths)
    json_file = args.json if args.json not in (None, STDOUT) else None
    check_outputs({"--csv": args.csv, "--json": json_file, "--parquet": args.parquet},
                  [Path(p) for p in paths if not is_uri(p)])
    if not paths:
        return no_images(args, problems)
    model_path = _resolve_model(args.model)  # a wrong name or file: said here, before any cluster is joined
    detector = resolve_name("full" if args.crop else args.detector)
    say_model("predict", model_path)
    local = args.ray == LOCAL
    conn = connect(args.ray, num_cpus=args.num_workers * threads if local and args.num_workers else None,
                   verbose=bool(getattr(args, "verbose", False)))
    try:
        import ray.data

        workers = args.num_workers or max(1, int(conn.cpus // threads))
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # rows in input order, as a local run writes them
        ctx.enable_progress_bars = False
        block = block_size(len(paths), workers)
        ds = predict_dataset(paths_dataset(paths, names, block), workers, threads, batch_images=None,
                             model=args.model, detector=args.detector, crop=args.crop, min_face=args.min_face,
                             threshold=args.threshold, max_faces=args.max_faces, max_side=args.max_side,
                             batch_size=args.batch_size)
        return _write(args, ds, paths, problems, f"model {model_path.name}, detector {detector}; {conn.address}, "
                      f"{workers} worker(s) x {threads} thread(s)")
    finally:
        disconnect(conn)


def _write(args, ds, paths, problems, how: str) -> int:
    from ..outputs import safe_text

    n = len(paths)
    bar = None
    if progress_enabled(args) and n > 1:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="img", file=sys.stderr, dynamic_ncols=True)
    t0 = time.perf_counter()
    sig = WriteInterrupts()
    pending: dict[int, dict] = {}  # image -> {face: row} while its rows come in
    ready: dict[int, _Item] = {}
    next_image = duplicates = 0
    writers = None
    keep = interrupted = False
    failure = None
    with sig.installed():
        try:
            writers = open_writers(args)
            with sig.writes():
                for item, why in problems:  # inputs that matched nothing: a row each, as in a local run
                    writers.error(item, f"{item}: {why}")
            for table in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
                for row in table.to_pylist():
                    i, face = row["image"], -1 if row["face"] is None else row["face"]
                    if i < next_image or i in ready or face in pending.get(i, {}):
                        duplicates += 1  # a row delivered again: never written twice
                        continue
                    rows = pending.setdefault(i, {})
                    rows[face] = row
                    if len(rows) == row["image_rows"]:
                        ready[i] = _item(pending.pop(i))
                while next_image in ready:
                    with sig.writes():
                        writers.emit(ready.pop(next_image), None)
                        next_image += 1
                        writers.flush()
                    if bar is not None:
                        bar.update()
            keep = next_image == n and not pending and not ready
            if not keep:
                failure = (f"{n - next_image} of the {n} images listed did not come back from the cluster; "
                           "nothing was put in place")
        except KeyboardInterrupt:
            interrupted = keep = writers is not None
            if writers is None:
                raise
        except Exception as e:  # the cluster failed the run (a worker that died more than the retries allow...)
            if writers is None or _is_output_error(e):
                raise
            failure = f"the Ray run failed: {_reason(e)}; nothing was put in place"
        finally:
            if bar is not None:
                bar.close()
            if writers is not None:
                writers.close(keep=keep)
    dt = time.perf_counter() - t0
    print(f"ferkit predict: {writers.n_images} image(s), {writers.n_faces} face(s), {writers.n_noface} without a "
          f"face, {writers.n_errors} error(s) in {dt:.1f}s [{how}]", file=sys.stderr)
    if duplicates:
        print(f"ferkit predict: {duplicates} row(s) delivered twice by retried tasks were written once",
              file=sys.stderr)
    if failure:
        print(f"ferkit predict: error: {failure}", file=sys.stderr)
        return 2
    if interrupted:
        kept = writers.kept()
        print(f"ferkit predict: interrupted: {writers.n_done} of {n} image(s) done"
              + (f", kept in every output ({kept})" if kept else "") + f"; {n - writers.n_done} not processed",
              file=sys.stderr)
        return 130
    json_file = args.json if args.json not in (None, STDOUT) else None
    for name, path in (("rows", args.csv), ("JSON lines", json_file), ("Parquet rows", args.parquet)):
        if path:
            print(f"ferkit predict: {name} written to {safe_text(path)}", file=sys.stderr)
    return 1 if writers.n_errors or problems else 0


def _is_output_error(e: BaseException) -> bool:
    from ..outputs import OutputError

    return isinstance(e, OutputError)


def _reason(e: BaseException) -> str:
    """The last line of a Ray error (its cause), without the remote traceback."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__
