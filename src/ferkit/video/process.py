"""One call that runs the pipeline over a whole source and writes the outputs as it goes."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .drawing import annotate
from .pipeline import FrameResult, Pipeline
from .sources import FrameSource, SourceLost
from .timeline import Timeline
from .tracking import Tracker
from .writers import TimelineCSV, VideoOut

log = logging.getLogger(__name__)


@dataclass
class VideoReport:
    frames: int = 0
    processed: int = 0
    rows: int = 0
    seconds: float = 0.0
    timeline: Timeline = field(default_factory=Timeline)
    lost: str = ""  # why a live source stopped early, if it did
    bad_frames: list = field(default_factory=list)  # (index, problem) of unreadable frames (kept in place)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def process_video(source: FrameSource, engine, tracker: Tracker, out: str | os.PathLike | None = None,
                  csv_path: str | os.PathLike | None = None, every: int = 1, max_faces: int | None = None,
                  bars: bool = True, on_frame: Callable[[FrameResult], None] | None = None,
                  max_frames: int | None = None, detect_every: int = 1) -> VideoReport:
    """Run the pipeline over a whole source, writing the annotated video and/or CSV as it goes."""
    rep = VideoReport()
    writer = None
    table = TimelineCSV(csv_path) if csv_path else None
    pipe = Pipeline(source, engine, tracker, every=every, keep_all=out is not None, max_faces=max_faces,
                    detect_every=detect_every)
    ok = False
    t0 = time.perf_counter()
    try:
        for fr in pipe:
            if out is not None:
                if writer is None:
                    writer = VideoOut(out, source.fps, (fr.image.shape[1], fr.image.shape[0]))
                writer.write(annotate(fr.image, fr.faces, bars=bars))
            rep.frames += 1
            if fr.processed:
                rep.processed += 1
                rep.timeline.add(fr)
                if table:
                    table.write(fr)
            if on_frame:
                on_frame(fr)
            if max_frames and rep.frames >= max_frames:
                break
        ok = True
    except SourceLost as e:  # a stream that ends is the end of the input here, not an error
        log.warning("%s", e)
        rep.lost = str(e)
        ok = True
    finally:
        rep.seconds = time.perf_counter() - t0
        rep.bad_frames = list(getattr(source, "bad", []))
        if writer is not None:
            writer.close(ok)
        if table:
            table.close()
            rep.rows = table.rows
    if rep.frames == 0:
        raise ValueError(f"{source.name}: no frames could be read")
    return rep
