// FER2013-style crops in the browser: a detector box (and its eye landmarks) -> 48 x 48 gray face, the same bytes as
// ferkit.faces.crop.crop_face / aligned_crop and ferkit.faces.align.upright_square (CenterFace's CropSpec), and
// ferkit.recognizer.to_face48 for an image that is a face crop already.
"use strict";

import { copyMakeBorder, pyRound, resizeArea, resizeLinear, rotationMatrix, warpAffine, window } from "./cvops.js";

export const SIZE = 48;
export const CROP_MAX_SIDE = 96;  // an image no bigger than this is a face crop already (detector "crop")
export const CENTERFACE_SPEC = { margin: 0.05, shift: 0.10, align: true };
const MAX_ANGLE = 60.0, MIN_ANGLE = 0.5;
const DEG = Math.PI / 180;

// angle in degrees of the line from the eye on the image's left to the other, or null when it is not to be trusted
export function eyeAngle(marks) {
  if (!marks || marks.length < 2) return null;
  const [[lx, ly], [rx, ry]] = marks;
  if (rx - lx <= 0 && Math.abs(ry - ly) <= Math.abs(rx - lx)) return null;
  const a = Math.atan2(ry - ly, rx - lx) / DEG;
  return Math.abs(a) <= MAX_ANGLE ? a : null;
}

// [cx, cy, side, angle] of the crop square of the face turned upright on its eyes, or null
export function uprightSquare(box, marks, spec) {
  const angle = eyeAngle(marks);
  if (angle === null || Math.abs(angle) < MIN_ANGLE) return null;
  const a = angle * DEG, [x, y, w, h] = box, upright = Math.max(w, h);
  const side = Math.max(2.0, upright * (1.0 + 2.0 * spec.margin)), down = spec.shift * upright;
  return [x + w / 2.0 - Math.sin(a) * down, y + h / 2.0 + Math.cos(a) * down, side, angle];
}

// [x0, y0, side] of the square crop for a box (may leave the image)
export function squareBox(box, spec) {
  const [x, y, w, h] = box;
  const side = Math.max(2, pyRound(Math.max(w, h) * (1.0 + 2.0 * spec.margin)));
  const cx = x + w / 2.0, cy = y + h / 2.0 + spec.shift * Math.max(w, h);
  return [pyRound(cx - side / 2.0), pyRound(cy - side / 2.0), side];
}

// gray[y0:y1, x0:x1] with the border replicated where the window leaves the image, shrunk by `scale` (<= 1)
// before the padding is added
export function paddedWindow(gray, x0, y0, x1, y1, box, scale = 1.0) {
  const W = gray.w, H = gray.h;
  const cx0 = Math.max(0, x0), cy0 = Math.max(0, y0), cx1 = Math.min(W, x1), cy1 = Math.min(H, y1);
  if (cx1 <= cx0 || cy1 <= cy0) throw new Error(`face box ${box} lies outside the ${W}x${H} image`);
  let patch = window(gray, cx0, cy0, cx1, cy1);
  let pads = [cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1];
  if (scale < 1.0) {
    const top = pyRound((cy0 - y0) * scale), bottom = pyRound((cy1 - y0) * scale);
    const left = pyRound((cx0 - x0) * scale), right = pyRound((cx1 - x0) * scale);
    const iw = Math.max(1, right - left), ih = Math.max(1, bottom - top);
    if (iw !== patch.w || ih !== patch.h) patch = resizeArea(patch, iw, ih);
    pads = [top, Math.max(0, pyRound((y1 - y0) * scale) - top - ih), left,
            Math.max(0, pyRound((x1 - x0) * scale) - left - iw)];
  }
  return pads.some((p) => p) ? copyMakeBorder(patch, ...pads) : patch;
}

// (SIZE x SIZE) crop of the face in `box`, upright on its eyes when the spec says so and the eyes allow it
export function cropFace(gray, box, spec = CENTERFACE_SPEC, marks = null) {
  if (spec.align && marks) return alignedCrop(gray, box, marks, spec);
  const [x0, y0, side] = squareBox(box, spec);
  const inside = x0 >= 0 && y0 >= 0 && x0 + side <= gray.w && y0 + side <= gray.h;
  const patch = paddedWindow(gray, x0, y0, x0 + side, y0 + side, box, inside ? 1.0 : Math.min(1.0, 2 * SIZE / side));
  return patch.h > SIZE ? resizeArea(patch, SIZE, SIZE) : resizeLinear(patch, SIZE, SIZE);
}

export function alignedCrop(gray, box, marks, spec) {
  const square = uprightSquare(box, marks, spec);
  if (square === null) return cropFace(gray, box, { ...spec, align: false });
  const [cx, cy, side, angle] = square, a = angle * DEG;
  const r = side * (Math.abs(Math.cos(a)) + Math.abs(Math.sin(a))) / 2.0 + 2.0;
  const x0 = Math.floor(cx - r), y0 = Math.floor(cy - r), x1 = Math.ceil(cx + r), y1 = Math.ceil(cy + r);
  const f = Math.min(1.0, 2 * SIZE / side);
  const patch = paddedWindow(gray, x0, y0, x1, y1, box, f);
  const c0 = (cx - x0) * f - 0.5, c1 = (cy - y0) * f - 0.5;
  const m = rotationMatrix(c0, c1, angle, SIZE / (side * f));
  m[2] += SIZE / 2.0 - 0.5 - c0;
  m[5] += SIZE / 2.0 - 0.5 - c1;
  return warpAffine(patch, m, SIZE, SIZE);
}

// a whole gray image -> SIZE x SIZE (ferkit.recognizer.to_face48)
export function toFace48(gray) {
  if (gray.w === SIZE && gray.h === SIZE) return gray;
  return Math.min(gray.w, gray.h) > SIZE ? resizeArea(gray, SIZE, SIZE) : resizeLinear(gray, SIZE, SIZE);
}
