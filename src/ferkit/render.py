"""Drawing results with OpenCV: boxes, labels and probability bars (colours from emotions.COLORS_BGR).

``draw_faces(bgr, faces, bars=True) -> a new BGR image`` of the same size (video frames);
``annotate_image(bgr, faces, bars=True)`` -> a copy for a person to look at, scaled up when tiny and grown where
the label or the bars would cover a face (``ferkit predict --out``). ``faces`` is a list of
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
MIN_SIDE = 384  # annotate_image scales a smaller image (a face crop) up to this longer side first


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
    """A copy of ``bgr`` (same size: video frames) with a box per face, its top label and confidence, and
    (``bars``) 7 bars beside the box, inside the image (over the face when nothing else fits)."""
    out = _canvas(bgr)
    items = [_unpack(f) for f in faces]
    _draw(out, items, bars, max(out.shape[:2]) / 640.0)
    return out


def annotate_image(bgr: np.ndarray, faces: Sequence, bars: bool = True, scale: float = 1.0) -> np.ndarray:
    """An annotated copy of a still image for a person to look at (``ferkit predict --out``).

    Like :func:`draw_faces`, except that the output may be larger than the input: an image smaller than
    ``MIN_SIDE`` pixels (a 48 x 48 face crop) is scaled up first, and where the label or the bars would cover a
    face the canvas grows (bars in a strip on the right, the label in one at the bottom) so that every face
    stays visible. ``scale``: ``bgr``'s pixels per unit of the faces' boxes (an image decoded at reduced size,
    boxes in the file's pixels)."""
    import cv2

    out = _canvas(bgr)
    H, W = out.shape[:2]
    up = max(1.0, MIN_SIDE / max(H, W))
    if up > 1.0:
        out = cv2.resize(out, (round(W * up), round(H * up)), interpolation=cv2.INTER_CUBIC)
    f = scale * up
    items = [_scaled(_unpack(x), f) for x in faces]
    unit = max(out.shape[:2]) / 640.0
    H, W = out.shape[:2]
    right = bottom = 0
    for (x, y, w, h), label, conf, _p, tid, _m in items:
        row, panel_w = _panel_size(unit)
        if bars and x + w + 6 + panel_w > W and x - panel_w - 6 < 0:
            right = panel_w + 12
        fscale, thick = _caption_style(unit)
        (_tw, th), base = cv2.getTextSize(_caption(label, conf, tid), _FONT, fscale, thick)
        if y - th - 4 * thick <= 0:  # no room above: the caption goes below the box, the canvas grows for it
            bottom = max(bottom, y + h + th + base + 4 * thick + 2 - H)
    if right or bottom:
        out = cv2.copyMakeBorder(out, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=(40, 40, 40))
    _draw(out, items, bars, unit, (W, H))
    return out


def _canvas(bgr: np.ndarray) -> np.ndarray:
    import cv2

    if not isinstance(bgr, np.ndarray) or bgr.dtype != np.uint8:
        raise ValueError("draw_faces takes a uint8 BGR numpy array")
    return cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR) if bgr.ndim == 2 else bgr.copy()


def _scaled(item, f: float):
    if f == 1.0:
        return item
    (x, y, w, h), label, conf, probs, tid, marks = item
    box = (round(x * f), round(y * f), max(1, round(w * f)), max(1, round(h * f)))
    return box, label, conf, probs, tid, None if marks is None else [(px * f, py * f) for px, py in marks]


def _caption(label: str, conf: float, tid) -> str:
    return f"{label} {conf:.0%}" + (f" #{tid}" if tid is not None else "")


def _caption_style(unit: float) -> tuple[float, int]:
    return max(0.35, 0.5 * unit), max(1, int(round(2 * unit)))


def _panel_size(unit: float) -> tuple[int, int]:
    """(row height, panel width) of the bars: the names' width is measured, never guessed ("surprise")."""
    import cv2

    row = max(9, int(round(13 * unit)))
    name_w = max(cv2.getTextSize(e, _FONT, row / 30.0, 1)[0][0] for e in EMOTIONS) + 6
    return row, name_w + int(round(row * 5)) + 4


def _draw(out: np.ndarray, items: list, bars: bool, unit: float, image_size: tuple[int, int] | None = None) -> None:
    """Boxes, captions and bars onto ``out``; ``image_size``: the (W, H) of the picture when ``out`` holds more
    (strips added on the right and bottom for captions and bars)."""
    import cv2

    H, W = out.shape[:2]
    iw, ih = image_size or (W, H)
    fscale, thick = _caption_style(unit)
    for (x, y, w, h), label, conf, probs, tid, marks in items:
        color = COLORS_BGR.get(label, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thick, cv2.LINE_AA)
        for px, py in marks or ():  # landmarks: small dots, outlined so they show on any skin
            c = (int(round(px)), int(round(py)))
            r = max(2, int(round(max(w, h) / 40)))
            cv2.circle(out, c, r + 1, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(out, c, r, color, -1, cv2.LINE_AA)
        caption = _caption(label, conf, tid)
        (tw, th), base = cv2.getTextSize(caption, _FONT, fscale, thick)
        # above the box, else below it (in the bottom strip when the canvas has one)
        ty = y - 4 * thick if y - th - 4 * thick > 0 else min(H - 2, y + h + th + 4 * thick)
        cv2.rectangle(out, (x, ty - th - base), (x + tw + 2 * thick, ty + base), color, -1)
        cv2.putText(out, caption, (x + thick, ty), _FONT, fscale, (0, 0, 0), thick, cv2.LINE_AA)
        if bars:
            _draw_bars(out, (x, y, w, h), probs, unit, iw)


def _draw_bars(out: np.ndarray, box, probs: np.ndarray, unit: float, image_w: int) -> None:
    """Seven labelled horizontal bars beside the box: on its right if that fits in the image, else on its left,
    else in the strip right of the image when the canvas has one, else over the box."""
    import cv2

    H, W = out.shape[:2]
    x, y, w, h = box
    row, panel_w = _panel_size(unit)
    name_w = panel_w - 4 - int(round(row * 5))
    bar_w = int(round(row * 5))
    fscale = row / 30.0
    px = x + w + 6
    if px + panel_w > image_w:
        px = x - panel_w - 6
    if px < 0:
        px = image_w + 6 if W - image_w >= panel_w + 6 else max(0, min(W - panel_w, x + 2))
    py = max(0, min(H - row * len(EMOTIONS) - 2, y))
    overlay = out.copy()
    cv2.rectangle(overlay, (px, py), (px + panel_w, py + row * len(EMOTIONS) + 2), (0, 0, 0), -1)
    cv2.addWeighted(overlay, 0.45, out, 0.55, 0, dst=out)
    for i, (emo, p) in enumerate(zip(EMOTIONS, probs, strict=False)):
        ry = py + i * row + 1
        color = COLORS_BGR[emo]
        _text(out, emo, (px + 2, ry + row - 3), fscale, (255, 255, 255), 1)
        bx = px + name_w
        cv2.rectangle(out, (bx, ry + 2), (bx + bar_w, ry + row - 2), (70, 70, 70), -1)
        cv2.rectangle(out, (bx, ry + 2), (bx + max(1, int(round(bar_w * float(p)))), ry + row - 2), color, -1)
