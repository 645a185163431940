"""Drawing results with OpenCV: boxes, labels and probability bars (colours from emotions.COLORS_BGR).

``draw_faces(bgr, faces, bars=True) -> a new BGR image``; ``faces`` is a list of
:class:`ferkit.recognizer.Face` or of tuples ``(box, prediction)`` / ``(box, prediction, track_id)``
(``box`` may be a :class:`ferkit.faces.Detection`). Landmarks, where a face has them, are drawn as dots.
The input image is never modified.
No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .emotions import COLORS_BGR, EMOTIONS

_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX


def _unpack(item):
    """-> (box, label, confidence, probs, track_id, landmarks) for a Face or a (box, prediction[, track_id])
    tuple (``box`` may be a Detection, whose landmarks are drawn too)."""
    if hasattr(item, "box") and hasattr(item, "probs"):
        marks = getattr(item, "landmarks", None)
        return tuple(item.box), item.label, float(item.confidence), np.asarray(item.probs), None, marks
    if isinstance(item, (tuple, list)) and len(item) in (2, 3):
        box, pred = item[0], item[1]
        tid = item[2] if len(item) == 3 else None
        marks = getattr(box, "landmarks", None)
        if hasattr(box, "box"):  # a Detection
            box = box.box
        box = tuple(int(v) for v in box)
        return box, pred.label, float(pred.confidence), np.asarray(pred.probs), tid, marks
    raise TypeError(f"cannot draw {type(item).__name__}: give Face objects or (box, prediction[, track_id])")


def _text(img, s, org, scale, color, thick):
    import cv2

    cv2.putText(img, s, org, _FONT, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, s, org, _FONT, scale, color, thick, cv2.LINE_AA)


def draw_faces(bgr: np.ndarray, faces: Sequence, bars: bool = True) -> np.ndarray:
    """A copy of ``bgr`` with a box per face, its top label and confidence, and (``bars``) 7 bars."""
    import cv2

    if not isinstance(bgr, np.ndarray) or bgr.dtype != np.uint8:
        raise ValueError("draw_faces takes a uint8 BGR numpy array")
    out = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR) if bgr.ndim == 2 else bgr.copy()
    H, W = out.shape[:2]
    unit = max(H, W) / 640.0
    thick = max(1, int(round(2 * unit)))
    fscale = max(0.35, 0.5 * unit)
    for item in faces:
        (x, y, w, h), label, conf, probs, tid, marks = _unpack(item)
        color = COLORS_BGR.get(label, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thick, cv2.LINE_AA)
        for px, py in marks or ():  # landmarks: small dots, outlined so they show on any skin
            c = (int(round(px)), int(round(py)))
            r = max(2, int(round(max(w, h) / 40)))
            cv2.circle(out, c, r + 1, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(out, c, r, color, -1, cv2.LINE_AA)
        caption = f"{label} {conf:.0%}" + (f" #{tid}" if tid is not None else "")
        (tw, th), base = cv2.getTextSize(caption, _FONT, fscale, thick)
        ty = y - 4 * thick if y - th - 4 * thick > 0 else min(H - 2, y + h + th + 4 * thick)
        cv2.rectangle(out, (x, ty - th - base), (x + tw + 2 * thick, ty + base), color, -1)
        cv2.putText(out, caption, (x + thick, ty), _FONT, fscale, (0, 0, 0), thick, cv2.LINE_AA)
        if bars:
            _draw_bars(out, (x, y, w, h), probs, unit)
    return out


def _draw_bars(out: np.ndarray, box, probs: np.ndarray, unit: float) -> None:
    """Seven labelled horizontal bars beside the box (right side if it fits, else left, else inside)."""
    import cv2

    H, W = out.shape[:2]
    x, y, w, h = box
    row = max(9, int(round(13 * unit)))
    name_w = int(round(row * 4.2))
    bar_w = int(round(row * 5))
    panel_w = name_w + bar_w + 4
    fscale = row / 30.0
    px = x + w + 6
    if px + panel_w > W:
        px = x - panel_w - 6
    if px < 0:
        px = max(0, min(W - panel_w, x + 2))
    py = max(0, min(H - row * len(EMOTIONS) - 2, y))
    overlay = out.copy()
    cv2.rectangle(overlay, (px, py), (px + panel_w, py + row * len(EMOTIONS) + 2), (0, 0, 0), -1)
    cv2.addWeighted(overlay, 0.45, out, 0.55, 0, dst=out)
    for i, (emo, p) in enumerate(zip(EMOTIONS, probs, strict=False)):
        ry = py + i * row + 1
        color = COLORS_BGR[emo]
        _text(out, emo[:8], (px + 2, ry + row - 3), fscale, (255, 255, 255), 1)
        bx = px + name_w
        cv2.rectangle(out, (bx, ry + 2), (bx + bar_w, ry + row - 2), (70, 70, 70), -1)
        cv2.rectangle(out, (bx, ry + 2), (bx + max(1, int(round(bar_w * float(p)))), ry + row - 2), color, -1)
