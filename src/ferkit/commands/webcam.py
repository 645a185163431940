"""``ferkit webcam``: live window (Tk) with boxes, labels, bars and FPS; headless recording with --out / --csv.

The window is plain Tk (Python's tkinter + Pillow's ImageTk): it works with opencv-python-headless, needs
no extra pip package, and runs under Xvfb. Without a display, ``webcam`` says so and records with --out.
Analysis options are shared with ``ferkit video`` (:mod:`ferkit.commands.video`).
"""

from __future__ import annotations

import os
import queue
import sys
import time
from datetime import datetime
from pathlib import Path

from .options import describe_default
from .video import _common, _engine, _tracker


def add_webcam_parser(sub) -> None:
    p = sub.add_parser("webcam", help="live window: boxes, labels, probability bars, FPS (q/Esc quit, space "
                                      "pause, s snapshot)",
                       description="Live emotion recognition in a window (Tk). Keys: q or Esc quit, space "
                                   "pause, s save a snapshot PNG. Without a display, record with --out.")
    p.add_argument("--camera", default="0",
                   help="camera index, or a video file / stream URL standing in for a camera")
    p.add_argument("--out", help="also record the annotated video here (works without a display)")
    p.add_argument("--csv", help="also write the timeline CSV")
    p.add_argument("--no-window", dest="window", action="store_false",
                   help="record only (needs --out or --csv)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    describe_default(p.add_argument("--snapshot-dir", default=".", help="where the s key saves PNGs"),
                     "the current folder")
    p.add_argument("--scale", type=float, default=1.0, help="window zoom factor")
    _common(p)
    p.set_defaults(func=cmd_webcam)


NO_DISPLAY = ("no display available{why}: cannot open the webcam window. Record instead with "
              "--out FILE (annotated video) and/or --csv FILE, "
              "e.g. `ferkit webcam --out webcam.mp4 --duration 30`")


def _open_window():
    """A Tk root, or a message saying why none can be opened."""
    try:
        import tkinter as tk
    except ImportError:
        return None, ("Python has no tkinter here (Debian/Ubuntu: apt install python3-tk); "
                      "record instead with --out FILE")
    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not has_display:
        return None, NO_DISPLAY.format(why=" ($DISPLAY is not set)")
    try:
        root = tk.Tk()
    except tk.TclError as e:
        return None, NO_DISPLAY.format(why=f" ({e})")
    return root, ""


def _save_png(img, folder: Path, n: int) -> Path:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    stamp = f"ferkit-snapshot-{datetime.now():%Y%m%d-%H%M%S}-{n}"
    path, k = folder / f"{stamp}.png", 1
    while path.exists():  # an earlier session's snapshot of the same second keeps its file
        k += 1
        path = folder / f"{stamp}-{k}.png"
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves no half file
    return path


class _Session:
    """Consumes the pipeline: records every frame, shows the newest; shared by window and headless modes.
    The recording and the CSV are written beside their paths and replace older files together, by
    ``close(ok=True)``, only if both were written completely."""

    def __init__(self, args, pipe, source):
        from ..video import RateMeter, TimelineCSV
        from ..video.writers import RunOutputs

        self.args, self.pipe, self.source = args, pipe, source
        self.outs = RunOutputs()
        self.writer = None
        self.table = self.outs.add(TimelineCSV(args.csv)) if args.csv else None
        self.rate = RateMeter()
        self.fps: float | None = None
        self.frames = 0
        self.snapshots = 0
        self.last = None  # newest FrameResult
        self.shown = None  # annotated image on screen
        self.t0 = time.monotonic()
        self.ended = ""  # why it ended
        self.written = self.repeated = self.skipped = 0  # recording on the capture clock (see take)
        self._clock0: float | None = None

    def take(self, fr) -> None:
        from ..video import VideoOut, annotate

        self.frames += 1
        if fr.processed:
            self.fps = self.rate.tick()
            if self.table:
                self.table.write(fr)
        if self.args.out:
            if self.writer is None:
                size = (fr.image.shape[1], fr.image.shape[0])
                self.writer = self.outs.add(VideoOut(self.args.out, self.source.fps, size))
                self._clock0 = fr.time
            # Real timestamps: frame k of the file shows what the camera delivered at k / fps. A frame that
            # arrives after dropped ones is repeated to fill their time; one that arrives early is left out.
            # So the recording lasts as long as the capture, however slow the analysis.
            due = int((fr.time - self._clock0) * self.source.fps + 0.5) + 1
            n = due - self.writer.frames
            if n > 0:
                img = annotate(fr.image, fr.faces, fps=self.fps, bars=self.args.bars)
                for _ in range(n):
                    self.writer.write(img)
                self.written += 1
                self.repeated += n - 1
            else:
                self.skipped += 1
        self.last = fr

    def drain(self, block: bool) -> bool:
        """Take every result waiting; False once the stream is over."""
        while True:
            try:
                fr = self.pipe.get(timeout=0.1 if block else 0)
            except queue.Empty:
                return True
            if fr is None:
                self.ended = f"end of {self.source.name}"
                return False
            self.take(fr)
            block = False
            if self.args.duration and time.monotonic() - self.t0 >= self.args.duration:
                self.ended = f"stopped after {self.args.duration:g}s"
                return False

    def close(self, ok: bool = True) -> None:
        """``ok``: rename the outputs into place (OutputError, and nothing replaced, if one is incomplete);
        otherwise remove them."""
        self.pipe.stop()
        if ok:
            self.outs.commit()
        else:
            self.outs.discard()


def _faces_text(fr) -> str:
    return "; ".join(f"#{f.track_id} {f.label} {f.confidence:.2f} at {','.join(map(str, f.box))}"
                     for f in fr.faces) or "no faces"


def cmd_webcam(args) -> int:
    from ..outputs import check_outputs
    from ..video import Pipeline, SourceLost, open_source, source_files
    from ..video.writers import check_writable

    root, why = (None, "") if not args.window else _open_window()
    if root is None:
        if args.window:
            if not (args.out or args.csv):
                print(f"ferkit webcam: {why}", file=sys.stderr)
                return 2
            print(f"ferkit webcam: {why.split(':')[0]}; recording without a window", file=sys.stderr)
        elif not (args.out or args.csv):
            raise ValueError("--no-window needs --out FILE and/or --csv FILE")
    try:
        source = open_source(args.camera)
        try:
            files = {"--out": args.out, "--csv": args.csv}
            check_outputs(files, source_files(source))
            check_writable(files)  # an output folder that cannot be written to fails before the camera runs
            engine = _engine(args)
        except BaseException:
            source.close()
            raise
    except BaseException:
        if root is not None:
            root.destroy()
        raise
    pipe = Pipeline(source, engine, _tracker(args), every=args.every, keep_all=True, max_faces=args.max_faces,
                    drop_late=source.live, realtime=not source.live, detect_every=args.detect_every)
    try:
        sess = _Session(args, pipe, source)
    except BaseException:
        source.close()
        if root is not None:
            root.destroy()
        raise
    pipe.start()
    ok = False
    try:
        try:
            if root is None:
                print(f"recording {source.name}; Ctrl-C stops", file=sys.stderr)
                while sess.drain(block=True):
                    pass
            else:
                _run_window(root, sess)
        except KeyboardInterrupt:  # the way to stop a headless recording: what was recorded is kept
            sess.ended = "stopped (Ctrl-C)"
        ok = True
    except SourceLost as e:
        ok = True  # keep what was recorded before the camera went away
        print(f"ferkit webcam: {e}", file=sys.stderr)
        return 1
    finally:
        sess.close(ok)
    rec = ""
    if args.out and sess.writer is not None:
        rec = (f"; video: {args.out}, {sess.writer.frames} frames at {source.fps:g} fps timed by the capture clock "
               f"({sess.repeated} repeated for frames dropped while analysing, {sess.skipped} left out)")
    print(f"{sess.ended or 'closed'}: {sess.frames} frames, {sess.snapshots} snapshot(s)"
          + rec + (f"; csv: {args.csv}" if args.csv else ""))
    return 0


def _run_window(root, sess: _Session) -> None:
    import tkinter as tk

    from PIL import Image, ImageTk

    from ..video import annotate

    args, pipe = sess.args, sess.pipe
    root.title(f"ferkit webcam - {sess.source.name}  (q quit, space pause, s snapshot)")
    view = tk.Label(root, bd=0, bg="black")
    view.pack()
    state = {"paused": False, "photo": None, "error": None, "done": False}

    def show():
        fr = sess.last
        if fr is None:
            return
        status = "PAUSED" if state["paused"] else ""
        img = annotate(fr.image, fr.faces, fps=sess.fps, bars=args.bars, status=status)
        sess.shown = (fr, img)
        rgb = img[:, :, ::-1]
        pil = Image.fromarray(rgb)
        if args.scale != 1.0:
            pil = pil.resize((max(1, int(pil.width * args.scale)), max(1, int(pil.height * args.scale))))
        state["photo"] = ImageTk.PhotoImage(pil)  # keep a reference or Tk drops it
        view.configure(image=state["photo"])
        if not state.get("announced"):
            state["announced"] = True
            print(f"window open: {sess.source.name}", flush=True)

    def finish():
        state["done"] = True
        root.quit()

    def tick():
        if state["done"]:
            return
        try:
            before = sess.last
            more = sess.drain(block=False)
        except BaseException as e:  # noqa: BLE001 - re-raised after the Tk loop ends
            state["error"] = e
            finish()
            return
        if not state["paused"] and sess.last is not before:
            show()
        if not more:
            finish()
            return
        root.after(5, tick)

    def on_key(ev):
        k = (ev.keysym or "").lower()
        if k in ("q", "escape"):
            sess.ended = "quit"
            finish()
        elif k == "space":
            state["paused"] = not state["paused"]
            if not sess.source.live:  # a file stops reading; a camera keeps running (and recording)
                (pipe.pause_event.set if state["paused"] else pipe.pause_event.clear)()
            show()
            print("paused" if state["paused"] else "resumed", flush=True)
        elif k == "s" and sess.shown is not None:
            fr, img = sess.shown
            sess.snapshots += 1
            try:
                path = _save_png(img, Path(args.snapshot_dir), sess.snapshots)
            except (OSError, ValueError) as e:  # a full disk: say so, keep the session running
                sess.snapshots -= 1
                print(f"ferkit webcam: snapshot not saved in {args.snapshot_dir}: {getattr(e, 'strerror', None) or e}",
                      file=sys.stderr, flush=True)
                return
            print(f"snapshot {path} frame {fr.index}: {_faces_text(fr)}", flush=True)

    root.bind("<Key>", on_key)
    root.protocol("WM_DELETE_WINDOW", lambda: (setattr(sess, "ended", "window closed"), finish()))
    root.after(1, tick)
    try:
        root.mainloop()
    finally:
        try:
            root.destroy()
        except tk.TclError:
            pass
    if state["error"] is not None:
        raise state["error"]
