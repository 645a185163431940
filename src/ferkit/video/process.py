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
from .writers import RunOutputs, TimelineCSV, VideoOut

log = logging.getLogger(__name__)


@dataclass
class VideoReport:
    frames: int = 0  # frames of the input passed (analysed, passed through, skipped or unreadable)
    processed: int = 0
    rows: int = 0
    seconds: float = 0.0
    timeline: Timeline = field(default_factory=Timeline)
    lost: str = ""  # why a live source stopped early, if it did
    bad_frames: list = field(default_factory=list)  # (index, problem) of unreadable frames (kept in place)
    cuts: list = field(default_factory=list)  # frame indices where a scene cut restarted the tracks
    declared: int | None = None  # frames the file or folder declares (None: unknown or live)
    interrupted: bool = False  # stopped by Ctrl-C (with stop_on_interrupt)
    stopped_early: bool = False  # stopped by max_frames or Ctrl-C: frames < declared is expected

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def missing(self) -> int:
        """Frames the container declares that could not be read at all (0 if unknown or stopped early)."""
        if self.declared is None or self.stopped_early:
            return 0
        return max(0, self.declared - self.frames)


def process_video(source: FrameSource, engine, tracker: Tracker, out: str | os.PathLike | None = None,
                  csv_path: str | os.PathLike | None = None, every: int = 1, max_faces: int | None = None,
                  bars: bool = True, on_frame: Callable[[FrameResult], None] | None = None,
                  max_frames: int | None = None, detect_every: int = 1, outputs: RunOutputs | None = None,
                  stop_on_interrupt: bool = False) -> VideoReport:
    """Run the pipeline over a whole source, writing the annotated video and/or CSV as it goes.

    The files are written beside their paths (:mod:`.writers`). Without ``outputs`` they are renamed into
    place at the end; with it they are added to it, and the caller commits them together with its own
    files. On an error every file of the run is removed and existing files are left as they were.
    ``stop_on_interrupt``: a Ctrl-C ends the run like the end of the input (``interrupted`` set), so that
    what was done is kept; otherwise KeyboardInterrupt propagates (and nothing is kept).
    """
    rep = VideoReport(declared=source.frame_count)
    outs = outputs if outputs is not None else RunOutputs()
    writer = None
    try:
        table = outs.add(TimelineCSV(csv_path)) if csv_path else None
        pipe = Pipeline(source, engine, tracker, every=every, keep_all=out is not None, max_faces=max_faces,
                        detect_every=detect_every)
        t0 = time.perf_counter()
        ended = False
        try:
            for fr in pipe:
                if out is not None:
                    if writer is None:
                        writer = outs.add(VideoOut(out, source.fps, (fr.image.shape[1], fr.image.shape[0])))
                    writer.write(annotate(fr.image, fr.faces, bars=bars))
                rep.frames = fr.index + 1
                if fr.cut:
                    rep.cuts.append(fr.index)
                if fr.processed:
                    rep.processed += 1
                    rep.timeline.add(fr)
                    if table:
                        table.write(fr)
                if on_frame:
                    on_frame(fr)
                if max_frames and rep.frames >= max_frames:
                    break
            else:
                ended = True
        except SourceLost as e:  # a stream that ends is the end of the input here, not an error
            log.warning("%s", e)
            rep.lost = str(e)
        except KeyboardInterrupt:
            if not stop_on_interrupt:
                raise
            rep.interrupted = True
        finally:
            pipe.stop()
            rep.seconds = time.perf_counter() - t0
        if ended:  # frames skipped without decoding after the last one passed on still count
            rep.frames = max(rep.frames, source.position)
        rep.stopped_early = not ended
        rep.bad_frames = [b for b in getattr(source, "bad", []) if b[0] < rep.frames]
        rep.rows = table.rows if table else 0
        if rep.frames == 0:
            if rep.interrupted:
                raise KeyboardInterrupt
            raise ValueError(f"{source.name}: no frames could be read")
        if outputs is None:
            outs.commit()
    except BaseException:
        outs.discard()
        raise
    return rep
