"""Real test clips for the video tests and benchmark: FER2013 faces, upscaled, moving over a background.

Imported by tests/test_video.py, tests/test_webcam.py and benchmarks/bench_video.py (not a pytest conftest:
nothing here runs on its own).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

FER = Path(__file__).parents[1].parent / "shared" / "fer2013"

FaceFn = Callable[[float], np.ndarray]  # time (0..1 of the clip) -> 48x48 gray face


def fer_files(emotion: str, split: str = "test", prefix: str = "PrivateTest_") -> list[Path]:
    return sorted((FER / split / emotion).glob(f"{prefix}*.jpg"))


def frames_in(path: Path) -> int:
    """Number of frames OpenCV can read from a video file."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def read_gray(path: Path) -> np.ndarray:
    import cv2

    g = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if g is None:
        raise ValueError(f"{path}: cannot read")
    return g


def paste_scene(face48: np.ndarray, face_px: int = 112, pad: int = 40) -> np.ndarray:
    """One upscaled face on a mid-gray canvas (how faces appear in the clips), BGR."""
    import cv2

    canvas = np.full((face_px + 2 * pad, face_px + 2 * pad), 110, np.uint8)
    canvas[pad:pad + face_px, pad:pad + face_px] = cv2.resize(face48, (face_px, face_px),
                                                              interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)


def pick_faces(engine, emotion: str, n: int, face_px: int = 112, start: int = 0) -> list[np.ndarray]:
    """The first ``n`` FER2013 test faces of ``emotion`` (in file order) that the engine finds as exactly
    one face when pasted on a plain canvas: the clips test tracking and smoothing, not detector recall."""
    out = []
    for p in fer_files(emotion)[start:]:
        g = read_gray(p)
        if len(engine.detect_boxes(paste_scene(g, face_px))) == 1:
            out.append(g)
            if len(out) == n:
                return out
    raise RuntimeError(f"fewer than {n} detectable {emotion} faces in {FER}")


def background(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with blurred texture (no face-like structure), BGR uint8."""
    import cv2

    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 80 * xx / w, 90 + 50 * yy / h, 140 - 60 * xx / w], axis=2)
    tex = cv2.GaussianBlur(rng.normal(0, 25, (h, w, 3)).astype(np.float32), (0, 0), 6)
    return np.clip(base + tex, 0, 255).astype(np.uint8)


def crossfade(a: np.ndarray, b: np.ndarray, t0: float = 0.35, t1: float = 0.65) -> FaceFn:
    """Face ``a`` until t0, blending into ``b`` by t1 (an expression change, with an ambiguous middle)."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)

    def fn(t: float) -> np.ndarray:
        w = float(np.clip((t - t0) / (t1 - t0), 0, 1))
        return np.clip((1 - w) * a32 + w * b32, 0, 255).astype(np.uint8)

    return fn


def still(a: np.ndarray) -> FaceFn:
    return lambda t: a


def face_positions(n_faces: int, size: tuple[int, int], face_px: int,
                   frames: int) -> list[list[tuple[int, int]]]:
    """Top-left corners per face per frame: each face in its own lane, gliding back and forth."""
    w, h = size
    cols = min(n_faces, max(1, w // (face_px + 16)))
    rows = -(-n_faces // cols)
    lane_w, lane_h = w / cols, h / rows
    out = []
    for k in range(n_faces):
        cx, cy = (k % cols + 0.5) * lane_w, (k // cols + 0.5) * lane_h
        ax = max(0.0, (lane_w - face_px) / 2 - 2)
        ay = max(0.0, (lane_h - face_px) / 2 - 2)
        path = []
        for i in range(frames):
            ph = 2 * np.pi * i / max(1, frames - 1)
            x = cx + ax * np.sin(ph + k) - face_px / 2
            y = cy + ay * 0.5 * np.sin(2 * ph + k) - face_px / 2
            path.append((int(round(np.clip(x, 0, w - face_px))), int(round(np.clip(y, 0, h - face_px)))))
        out.append(path)
    return out


def render_frames(faces: list[FaceFn], size: tuple[int, int] = (320, 240), frames: int = 45,
                  face_px: int = 96, noise: float = 4.0, seed: int = 0):
    """Yield BGR frames: the faces moving over the background with per-frame sensor noise."""
    import cv2

    bg = background(size, seed)
    rng = np.random.default_rng(seed + 1)
    paths = face_positions(len(faces), size, face_px, frames)
    for i in range(frames):
        frame = bg.copy()
        t = i / max(1, frames - 1)
        for fn, path in zip(faces, paths, strict=True):
            x, y = path[i]
            face = cv2.resize(fn(t), (face_px, face_px), interpolation=cv2.INTER_CUBIC)
            frame[y:y + face_px, x:x + face_px] = face[:, :, None]
        if noise:
            frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
        yield frame


def write_clip(path: Path, faces: list[FaceFn], size: tuple[int, int] = (320, 240), fps: float = 15.0,
               seconds: float = 3.0, face_px: int = 96, noise: float = 4.0, seed: int = 0) -> Path:
    """An .mp4 (mp4v) or .avi (MJPG) clip of ``seconds`` at ``fps``; returns ``path``."""
    import cv2

    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    w = cv2.VideoWriter(str(path), fourcc, fps, size)
    assert w.isOpened(), f"cannot write {path}"
    for frame in render_frames(faces, size, int(round(seconds * fps)), face_px, noise, seed):
        w.write(frame)
    w.release()
    return path
