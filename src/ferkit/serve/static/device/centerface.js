// CenterFace in the browser: the same steps and numbers as ferkit.faces.centerface.CenterFaceDetector (image
// shrunk to max_side with INTER_AREA, padded to a multiple of 32 with black, heatmap / scale / offset / landmark
// decoding at stride 4, OpenCV's NMSBoxes, the second look with a replicated border when nothing is found, boxes
// clipped to the image). numpy's float32 steps are float32 here too (Math.fround), so boxes land on the same
// pixels and landmarks on the same tenths.
"use strict";

import { copyMakeBorder, pyRound, pyRound1, resizeArea } from "./cvops.js";

const f32 = Math.fround;
const STRIDE = 4, FILL_PAD = 0.25, FILL_MAX_SIDE = 640, NMS_IOU = 0.3;
export const DEFAULTS = { threshold: 0.5, minFace: 24, maxSide: 640, maxFaces: null };

// RGB (or RGBA: the alpha is not read) image -> network input (1 x 3 x H x W float32, sides multiples of 32) and the scale used
function prepare(rgb, maxSide) {
  const s = maxSide ? Math.min(1.0, maxSide / Math.max(rgb.w, rgb.h)) : 1.0;
  const small = s < 1.0 ? resizeArea(rgb, Math.max(1, pyRound(rgb.w * s)), Math.max(1, pyRound(rgb.h * s))) : rgb;
  const w = small.w, h = small.h, c = small.c, W = w + ((32 - (w % 32)) % 32), H = h + ((32 - (h % 32)) % 32);
  const x = new Float32Array(3 * H * W), plane = H * W, d = small.data;
  for (let y = 0; y < h; y++) {
    for (let i = 0, o = y * W, p = y * w * c; i < w; i++, o++, p += c) {
      x[o] = d[p]; x[plane + o] = d[p + 1]; x[2 * plane + o] = d[p + 2];
    }
  }
  return { x, H, W, s };
}

// cv::dnn::NMSBoxes on (x, y, w, h) boxes: scores above the threshold, best first (stable), IoU <= NMS_IOU kept
function nms(rects, scores, threshold) {
  const order = scores.map((v, i) => [v, i]).filter(([v]) => v > threshold);
  order.sort((a, b) => b[0] - a[0]);
  const keep = [];
  for (const [, i] of order) {
    const [ax, ay, aw, ah] = rects[i];
    const ok = keep.every((k) => {
      const [bx, by, bw, bh] = rects[k];
      const iw = Math.min(ax + aw, bx + bw) - Math.max(ax, bx), ih = Math.min(ay + ah, by + bh) - Math.max(ay, by);
      const inter = iw > 0 && ih > 0 ? iw * ih : 0;
      const union = aw * ah + bw * bh - inter;
      return f32(1 - f32(union > 0 ? 1 - inter / union : 0)) <= NMS_IOU;
    });
    if (ok) keep.push(i);
  }
  return keep;  // best first already
}

// network outputs (heat, scale, offset, landmarks; grid gh x gw) -> [[x0, y0, x1, y1], score, [[x, y] x 5]] in the
// network's input pixels, best first
export function decode(heat, scale, offset, lms, gh, gw, threshold) {
  const n = gh * gw, rects = [], scores = [], boxes = [], pts = [];
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      const i = y * gw + x;
      if (!(heat[i] > threshold)) continue;
      const h = f32(f32(Math.exp(scale[i])) * STRIDE), w = f32(f32(Math.exp(scale[n + i])) * STRIDE);
      const cy = (y + offset[i] + 0.5) * STRIDE, cx = (x + offset[n + i] + 0.5) * STRIDE;  // float64, as numpy
      const x0 = cx - f32(w / 2), y0 = cy - f32(h / 2);
      scores.push(heat[i]);
      rects.push([x0, y0, w, h]);
      boxes.push([x0, y0, x0 + w, y0 + h].map(f32));
      const p = [];
      for (let k = 0; k < 5; k++) {
        p.push([f32(f32(lms[(2 * k + 1) * n + i] * w) + x0), f32(f32(lms[2 * k * n + i] * h) + y0)]);
      }
      pts.push(p);
    }
  }
  return nms(rects, scores, threshold).map((i) => [boxes[i], scores[i], pts[i]]);
}

function clipBox(x, y, w, h, W, H) {
  const x0 = Math.max(0, pyRound(x)), y0 = Math.max(0, pyRound(y));
  const x1 = Math.min(W, pyRound(f32(x + w))), y1 = Math.min(H, pyRound(f32(y + h)));
  if (x1 - x0 < 2 || y1 - y0 < 2) return null;
  return [x0, y0, x1 - x0, y1 - y0];
}

export class CenterFace {
  // session: an onnxruntime-web InferenceSession of centerface.onnx; ort: the onnxruntime-web module
  constructor(ort, session, options = {}) {
    this.ort = ort;
    this.session = session;
    this.opts = { ...DEFAULTS, ...options };
  }

  async run(rgb, pad, unit, maxSide) {
    const { x, H, W, s } = prepare(rgb, maxSide);
    const feeds = { [this.session.inputNames[0]]: new this.ort.Tensor("float32", x, [1, 3, H, W]) };
    const out = await this.session.run(feeds);
    const [heat, scale, offset, lms] = this.session.outputNames.map((k) => out[k]);
    const [gh, gw] = heat.dims.slice(2);
    const found = decode(heat.data, scale.data, offset.data, lms.data, gh, gw, Math.max(0.01, this.opts.threshold));
    for (const k of this.session.outputNames) out[k].dispose?.();
    const sf = f32(s), uf = f32(unit), back = (v) => f32(f32(f32(v / sf) - pad) * uf);
    return found.map(([b, score, p]) => [b.map(back), score, p.map(([px, py]) => [back(px), back(py)])]);
  }

  // faces in an RGB or RGBA image: [{box: [x, y, w, h], score, landmarks: [[x, y] x 5]}], best first
  async detect(rgb, options = {}) {
    const o = { ...this.opts, ...options }, W = rgb.w, H = rgb.h;
    let found = await this.run(rgb, 0, 1.0, o.maxSide);
    if (!found.length) {
      const side = (1 + 2 * FILL_PAD) * Math.max(H, W);
      const pre = Math.min(1.0, FILL_MAX_SIDE / side, (o.maxSide || side) / side);
      const small = pre < 1.0 ? resizeArea(rgb, Math.max(1, pyRound(W * pre)), Math.max(1, pyRound(H * pre))) : rgb;
      const pad = Math.floor(FILL_PAD * Math.max(small.w, small.h));
      found = await this.run(copyMakeBorder(small, pad, pad, pad, pad), pad, 1 / pre, o.maxSide);
    }
    const faces = [];
    for (const [[x0, y0, x1, y1], score, p] of found) {
      const box = clipBox(x0, y0, f32(x1 - x0), f32(y1 - y0), W, H);
      if (box === null || Math.max(box[2], box[3]) < o.minFace) continue;
      faces.push({ box, score, landmarks: p.map(([px, py]) => [pyRound1(px), pyRound1(py)]) });
    }
    return o.maxFaces ? faces.slice(0, o.maxFaces) : faces;
  }
}
