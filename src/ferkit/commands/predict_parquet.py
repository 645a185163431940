"""``ferkit predict --parquet FILE``: the rows of ``--csv`` with real types (ints, float32 probabilities exactly as
the model gave them, nulls for cells that do not apply), in a Parquet file, for large runs and for dataframe tools
(pandas, polars, DuckDB, Spark, Ray Data). Rows: :mod:`ferkit.ray.rows`, the same for a local run and a ``--ray``
run. Written beside FILE (``.FILE.<pid>.tmp``, row groups of ``ROWS_PER_GROUP`` rows) and renamed into place when
the run ends, as ``--csv`` is; a run that fails leaves FILE as it was. Needs pyarrow (``pip install 'ferkit[parquet]'``,
or ``'ferkit[ray]'`` which has it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .options import STDOUT
from .predict_out import Writers

PARQUET_SUFFIX = ".parquet"
ROWS_PER_GROUP = 16384


def parquet_dest(value: str) -> str:
    """argparse type of ``--parquet FILE``: a name ending in .parquet (so an input can never be taken for it)."""
    if value.lower().endswith(PARQUET_SUFFIX):
        return value
    raise argparse.ArgumentTypeError(f"{value!r} is not a {PARQUET_SUFFIX} file name")


def add_parquet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--parquet", metavar="FILE", type=parquet_dest, default=None,
                   help="write the rows of --csv, typed, to FILE (.parquet; probabilities as the model gave them): "
                        "for large runs (needs pyarrow: pip install 'ferkit[parquet]')")


class ParquetRows:
    """Rows of :mod:`ferkit.ray.rows` into ``path``, atomically (``close(keep=True)`` renames them into place)."""

    def __init__(self, path: str | os.PathLike):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("--parquet needs pyarrow: pip install 'ferkit[parquet]' (or 'ferkit[ray]')") from None
        from ..ray.rows import schema

        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.lines = 0
        self._pa, self._schema, self._rows = pa, schema(), []
        self._writer = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.tmp, self._schema)
        except OSError as e:
            raise self._failed(e) from e

    def _failed(self, e: OSError):
        from ..outputs import OutputError, safe_text

        return OutputError(f"--parquet {safe_text(os.fspath(self.path))}: cannot write ({e.strerror or e}); "
                           "the file was left as it was")

    def add(self, rows: list[dict]) -> None:
        self._rows += rows
        self.lines += len(rows)
        if len(self._rows) >= ROWS_PER_GROUP:
            self._write()

    def _write(self) -> None:
        if self._rows:
            try:
                self._writer.write_table(self._pa.Table.from_pylist(self._rows, schema=self._schema))
            except OSError as e:
                raise self._failed(e) from e
            self._rows = []

    def close(self, keep: bool) -> None:
        """Put the file in place (``keep``), else remove it."""
        try:
            if keep:
                self._write()
                try:
                    self._writer.close()
                    os.replace(self.tmp, self.path)
                except OSError as e:
                    raise self._failed(e) from e
        finally:
            if self._writer is not None and self._writer.is_open:
                try:
                    self._writer.close()
                except OSError:
                    pass
            self.tmp.unlink(missing_ok=True)


class ParquetWriters(Writers):
    """predict's :class:`~ferkit.commands.predict_out.Writers` plus ``--parquet``: the same images, the same rows."""

    def __init__(self, args):
        self.parquet = ParquetRows(args.parquet)
        try:
            super().__init__(args)
        except BaseException:
            self.parquet.close(keep=False)
            raise

    def error(self, name: str, message: str) -> None:
        from ..ray.rows import image_rows

        super().error(name, message)
        self.parquet.add(image_rows(name, [], None, None, message))

    def emit(self, item, rec) -> None:
        from ..ray.rows import image_rows

        super().emit(item, rec)  # an item with an error comes back through error()
        if not item.error:
            self.parquet.add(image_rows(item.rel, item.dets, item.probs, item.detector))

    def close(self, keep: bool = True) -> None:
        try:
            super().close(keep)
        finally:
            self.parquet.close(keep)

    def kept(self) -> str:
        return "; ".join(p for p in (super().kept(), f"{self.args.parquet}: {self.parquet.lines} row(s)") if p)


def open_writers(args) -> Writers:
    """predict's writers for ``args``, with ``--parquet`` when it is given."""
    return ParquetWriters(args) if getattr(args, "parquet", None) else Writers(args)


def no_images(args, problems) -> int:
    """Nothing to read (local or --ray run): each problem on stderr and (as for any input) an error row in
    --csv and --json."""
    from ..outputs import check_outputs, safe_text

    json_file = args.json if args.json not in (None, STDOUT) else None
    check_outputs({"--csv": args.csv, "--json": json_file, "--parquet": args.parquet}, [])
    writers = open_writers(args)
    ok = False
    try:
        for item, why in problems:
            writers.error(item, f"{item}: {why}")
        ok = True
    finally:
        writers.close(keep=ok)
    for name, path in (("rows", args.csv), ("JSON lines", json_file), ("Parquet rows", args.parquet)):
        if path:
            print(f"ferkit predict: {name} written to {safe_text(path)}", file=sys.stderr)
    print("ferkit predict: error: no images to process", file=sys.stderr)
    return 2
