"""``ferkit video`` (annotated video, CSV timeline, plot, per-track summary) and the analysis options it
shares with ``ferkit webcam`` (:mod:`ferkit.commands.webcam`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import STDOUT, add_json, add_progress, add_quiet, describe_default, progress_enabled, say_model

# Video defaults: faces are detected on the frame scaled to DETECT_SIZE px (longer side); faces smaller
# than MIN_FACE px in the original frame are ignored. Together they keep detection near 30 fps on 2 cores.
DETECT_SIZE = 320
MIN_FACE = 80


def _fraction(s: str) -> float:
    v = float(s)
    if not 0.0 < v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {s}")
    return v


def _margin(s: str) -> float:
    v = float(s)
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {s}")
    return v


def _positive(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {s}")
    return v


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("analysis")
    g.add_argument("--model", default="fast",
                   help="shipped model name (fast: one network, for frame rates; 'default': two networks x 2 "
                        "views; 'ferplus' learned the crowd's labels alone; 'fer2013' is v1's ensemble), .onnx "
                        "path, or a Keras model (emotiondetector.h5, .keras, .json)")
    g.add_argument("--detector", default="auto",
                   help="face detector: auto, centerface, dlib, haar, full; auto = centerface")
    g.add_argument("--max-faces", type=_positive, help="analyse at most N faces per frame (the largest)")
    g.add_argument("--min-face", type=_positive, default=MIN_FACE,
                   help="smallest face in frame pixels, as in predict; larger than predict's 24 to keep up with "
                        "the frame rate (lower: smaller faces, slower)")
    g.add_argument("--max-side", "--detect-size", dest="detect_size", type=_positive, default=DETECT_SIZE, metavar="PX",
                   help="detect on the frame scaled so its longer side is at most this, as in predict; smaller "
                        "than predict's 640 to keep up with the frame rate (--detect-size: old name)")
    g.add_argument("--smooth", type=_fraction, default=0.3, metavar="ALPHA",
                   help="EMA weight of the newest frame's probabilities; 1 = no smoothing")
    g.add_argument("--hysteresis", type=_margin, default=0.1,
                   help="a track's label changes only when the new emotion leads by this much")
    g.add_argument("--every", type=_positive, default=1, metavar="N",
                   help="analyse every Nth frame")
    g.add_argument("--detect-every", type=_positive, default=1, metavar="K",
                   help="detect faces on every Kth analysed frame, reuse the boxes in between")
    describe_default(g.add_argument("--threads", type=_positive, help="onnxruntime threads"), "all cores")
    g.add_argument("--no-bars", dest="bars", action="store_false", help="no probability bars in the drawing")


def _engine(args):
    from ..recognizer import Recognizer

    # no max_faces here: the detector would keep the best-scoring faces; the pipeline keeps the largest
    rec = Recognizer(model=args.model, detector=args.detector, min_face=args.min_face,
                     threads=args.threads, max_side=args.detect_size)
    say_model(args.command, rec.metadata)
    return rec


def _tracker(args):
    from ..video import Tracker

    return Tracker(alpha=args.smooth, hysteresis=args.hysteresis)


# =========================================================================== video

def add_video_parser(sub) -> None:
    p = sub.add_parser("video", help="emotions in a video: annotated video, CSV timeline, plot, summary",
                       description="Analyse a video file, stream URL or folder of frames. Faces keep an id "
                                   "across frames; each track's probabilities are smoothed (EMA) and its "
                                   "label changes only past a hysteresis margin.")
    p.add_argument("input", help="video file, stream URL (rtsp://, http://), folder of frames, camera index")
    p.add_argument("--out", help="annotated video (.mp4, .avi, .mov, .mkv, .m4v)")
    p.add_argument("--csv", help="timeline CSV: one row per face per analysed frame")
    p.add_argument("--plot", help="timeline PNG: smoothed emotions of each track over time")
    add_json(p, "the per-track summary")
    describe_default(p.add_argument("--fps", type=float, help="frame rate of a folder of frames, or an override"),
                     "the file's own; 25 for a folder of frames")
    p.add_argument("--max-frames", type=_positive, help="stop after N frames (useful for streams)")
    add_quiet(p, "summary table")
    add_progress(p)
    _common(p)
    p.set_defaults(func=cmd_video)


PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")


def _check_suffixes(args) -> None:
    from ..video.writers import _FOURCC

    if args.out and Path(args.out).suffix.lower() not in _FOURCC:
        raise ValueError(f"--out {args.out}: unsupported video extension; use one of {', '.join(sorted(_FOURCC))}")
    if args.plot and Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
        raise ValueError(f"--plot {args.plot}: unsupported image extension; use one of {', '.join(PLOT_SUFFIXES)}")


def _frames_list(indices: list[int]) -> str:
    return ", ".join(str(i) for i in indices[:10]) + (" ..." if len(indices) > 10 else "")


def cmd_video(args) -> int:
    from tqdm import tqdm

    from ..outputs import check_outputs
    from ..plots import _plt
    from ..video import open_source, process_video, source_files
    from ..video.writers import RunOutputs, check_writable

    json_file = args.json if args.json not in (None, STDOUT) else None
    quiet = args.quiet or args.json == STDOUT  # stdout carries the JSON alone
    files = {"--out": args.out, "--csv": args.csv, "--plot": args.plot, "--json": json_file}

    source = open_source(args.input, fps=args.fps)  # bad input fails before the model loads
    try:
        check_outputs(files, source_files(source))
        _check_suffixes(args)  # a wrong extension fails now, not after the whole video was analysed
        check_writable(files)  # so does a folder that cannot be written to
        engine = _engine(args)
    except BaseException:
        source.close()
        raise
    total = source.frame_count
    if args.max_frames and total:
        total = min(total, args.max_frames)
    bar = tqdm(total=total, unit="frame", disable=not progress_enabled(args), file=sys.stderr)
    outs = RunOutputs()  # every file of the run replaces its old version only if all were written completely
    try:
        rep = process_video(source, engine, _tracker(args), out=args.out, csv_path=args.csv, every=args.every,
                            max_faces=args.max_faces, bars=args.bars, on_frame=lambda fr: bar.update(1),
                            max_frames=args.max_frames, detect_every=args.detect_every, outputs=outs,
                            stop_on_interrupt=True)
    except KeyboardInterrupt:
        print("interrupted before the first frame: nothing written", file=sys.stderr)
        return 130
    finally:
        bar.close()
    tl = rep.timeline
    meta = {"input": str(args.input), "frames": rep.frames, "analysed_frames": rep.processed,
            "frames_declared": rep.declared, "interrupted": rep.interrupted,
            "fps_source": round(source.fps, 3), "fps_processing": round(rep.fps, 2),
            "smooth": args.smooth, "hysteresis": args.hysteresis, "every": args.every,
            "unreadable_frames": [i for i, _ in rep.bad_frames], "scene_cuts": rep.cuts}
    try:
        if args.plot:
            fig = tl.figure(title=Path(str(args.input)).name)
            try:
                outs.file(args.plot).save_figure(fig)
            finally:
                _plt().close(fig)
        if json_file:
            outs.file(json_file).write_text(tl.to_json(meta))
        outs.commit()
    except BaseException:
        outs.discard()
        raise
    if rep.bad_frames:
        print(f"ferkit video: {len(rep.bad_frames)} unreadable frame(s) kept their place and time (the previous "
              f"frame stands in, not analysed): frame {_frames_list([i for i, _ in rep.bad_frames])}",
              file=sys.stderr)
    if rep.missing:
        print(f"ferkit video: {source.name} declares {rep.declared} frames but only {rep.frames} could be read; "
              f"the last {rep.missing} are damaged or missing, and the results cover the first {rep.frames}",
              file=sys.stderr)
    if args.json == STDOUT:
        print(tl.to_json(meta))
    written = [(name, path) for name, path in (("video", args.out), ("csv", args.csv), ("plot", args.plot),
                                               ("json", json_file)) if path]
    if rep.interrupted:
        print(f"interrupted at frame {rep.frames}: the outputs keep what was done up to there"
              + "".join(f"; {name}: {path}" for name, path in written), file=sys.stderr)
        return 130
    if not quiet:
        print(f"{source.name}: {rep.frames} frames ({rep.processed} analysed) in {rep.seconds:.1f}s, "
              f"{rep.fps:.1f} fps; {len(tl.tracks)} track(s); {rep.rows} CSV row(s)")
        if rep.cuts:
            print(f"{len(rep.cuts)} scene cut(s), where every face starts a new track: frame "
                  f"{_frames_list(rep.cuts)}")
        print("share of analysed frames per smoothed emotion:")
        print(tl.format_summary())
        if not tl.tracks:
            print(f"hint: faces smaller than --min-face {args.min_face} px are ignored (a speed default for "
                  f"webcams); for small faces try --min-face 40", file=sys.stderr)
        for name, path in written:
            print(f"{name}: {path}")
    return 0
