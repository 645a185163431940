"""Video and webcam runtime: frame sources, per-face tracking, smoothing, a threaded pipeline and writers.
May import numpy, cv2, Pillow, ferkit.plots and the runtime (recognizer, render, images); never torch or a door.

Everything streams: a frame is read, analysed, drawn, written and dropped; nothing grows with the length
of the video except a per-track summary (a few numbers) and a timeline whose resolution halves whenever
it would exceed a fixed number of points. Reading, face detection, classification and writing run in
their own threads joined by small bounded queues, so the slowest stage sets the pace and memory is flat.

The analysis engine is anything with ``detect_boxes(bgr) -> [(box, score)]`` and
``classify_boxes(bgr, boxes) -> [Prediction]`` (:class:`ferkit.recognizer.Recognizer`). No torch here.

One concern per module: :mod:`.sources` (cameras, files, streams, frame folders), :mod:`.tracking` (ids and
smoothing), :mod:`.pipeline` (the threads), :mod:`.drawing`, :mod:`.writers` (video, CSV), :mod:`.timeline`
(summary and plot) and :mod:`.process` (one call for a whole source).
"""

from .drawing import RateMeter, annotate
from .pipeline import FrameResult, Pipeline
from .process import VideoReport, process_video
from .sources import URL_RE, CaptureSource, FolderSource, FrameSource, SourceLost, open_source, source_files
from .timeline import Timeline, TrackSummary
from .tracking import Box, LabelSmoother, TrackedFace, Tracker, iou
from .writers import CSV_COLUMNS, TimelineCSV, VideoOut

__all__ = ["CSV_COLUMNS", "URL_RE", "Box", "CaptureSource", "FolderSource", "FrameResult", "FrameSource",
           "LabelSmoother", "Pipeline", "RateMeter", "SourceLost", "Timeline", "TimelineCSV", "TrackSummary",
           "TrackedFace", "Tracker", "VideoOut", "VideoReport", "annotate", "iou", "open_source", "process_video",
           "source_files"]
