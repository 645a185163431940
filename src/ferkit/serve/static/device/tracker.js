// Per-face tracking across camera frames and label smoothing, as ferkit.video.tracking (Tracker, LabelSmoother):
// greedy IoU association with a centre-distance fallback, no jump a face cannot make, tracks kept through a few
// missed frames; probabilities smoothed by an exponential moving average, the label switched with hysteresis.
"use strict";

export function iou(a, b) {
  const [ax, ay, aw, ah] = a, [bx, by, bw, bh] = b;
  const iw = Math.min(ax + aw, bx + bw) - Math.max(ax, bx), ih = Math.min(ay + ah, by + bh) - Math.max(ay, by);
  if (iw <= 0 || ih <= 0) return 0.0;
  const inter = iw * ih;
  return inter / (aw * ah + bw * bh - inter);
}

const argmax = (p) => p.reduce((best, v, i) => (v > p[best] ? i : best), 0);

export class LabelSmoother {
  constructor(alpha = 0.3, hysteresis = 0.1) {
    if (!(alpha > 0 && alpha <= 1)) throw new Error(`smoothing alpha must be in (0, 1], got ${alpha}`);
    if (!(hysteresis >= 0 && hysteresis < 1)) throw new Error(`hysteresis must be in [0, 1), got ${hysteresis}`);
    this.alpha = alpha;
    this.hysteresis = hysteresis;
    this.probs = null;
    this.index = -1;
  }

  update(probs) {
    if (this.probs === null) {
      this.probs = Float32Array.from(probs);
      this.index = argmax(this.probs);
    } else {
      for (let i = 0; i < this.probs.length; i++) this.probs[i] = this.alpha * probs[i] + (1 - this.alpha) * this.probs[i];
      const best = argmax(this.probs), lead = this.probs[best] - this.probs[this.index];
      if (best !== this.index && (lead > this.hysteresis || (this.hysteresis === 0 && lead >= 0))) this.index = best;
    }
    return [this.probs, this.index];
  }
}

export class Tracker {
  constructor({ alpha = 0.3, hysteresis = 0.1, iouMin = 0.25, maxCenterDist = 0.6, maxMissed = 8,
                maxScaleStep = 1.5 } = {}) {
    new LabelSmoother(alpha, hysteresis);  // validate early
    Object.assign(this, { alpha, hysteresis, iouMin, maxCenterDist, maxMissed, maxScaleStep });
    this.tracks = [];
    this.nextId = 1;
  }

  match(boxes) {  // detection index -> track index
    const pairs = [];
    this.tracks.forEach((t, ti) => {
      const [tx, ty, tw, th] = t.box, tcx = tx + tw / 2, tcy = ty + th / 2, tsize = Math.max(tw, th);
      boxes.forEach((b, di) => {
        const scale = Math.sqrt(Math.max(1, tw * th) / Math.max(1, b[2] * b[3]));
        if (Math.max(scale, 1 / scale) > this.maxScaleStep) return;
        const v = iou(t.box, b);
        if (v >= this.iouMin) { pairs.push([0, -v, ti, di]); return; }
        const [bx, by, bw, bh] = b;
        const d = Math.hypot(bx + bw / 2 - tcx, by + bh / 2 - tcy) / Math.max(1.0, (tsize + Math.max(bw, bh)) / 2);
        if (d <= this.maxCenterDist) pairs.push([1, d, ti, di]);
      });
    });
    pairs.sort((p, q) => p[0] - q[0] || p[1] - q[1] || p[2] - q[2] || p[3] - q[3]);
    const usedT = new Set(), out = new Map();
    for (const [, , ti, di] of pairs) {
      if (usedT.has(ti) || out.has(di)) continue;
      usedT.add(ti);
      out.set(di, ti);
    }
    return out;
  }

  // detections: [{box: [x, y, w, h], score, probs: 7 numbers}] -> the same faces with trackId, smoothed probs and
  // label (hysteresis), rawProbs and rawLabel; sorted by track id
  update(detections, labels) {
    const boxes = detections.map((d) => d.box.map((v) => Math.trunc(v)));
    const match = this.match(boxes), seen = new Set(), faces = [];
    detections.forEach((d, di) => {
      let ti = match.get(di);
      if (ti === undefined) {
        this.tracks.push({ id: this.nextId++, box: boxes[di], smoother: new LabelSmoother(this.alpha, this.hysteresis),
                           missed: 0 });
        ti = this.tracks.length - 1;
      }
      const t = this.tracks[ti];
      t.box = boxes[di];
      t.missed = 0;
      seen.add(ti);
      const [sm, idx] = t.smoother.update(d.probs);
      faces.push({ ...d, trackId: t.id, rawProbs: d.probs, rawLabel: labels[argmax(d.probs)], probs: Array.from(sm),
                   label: labels[idx], confidence: sm[idx] });
    });
    this.tracks.forEach((t, ti) => { if (!seen.has(ti)) t.missed += 1; });
    this.tracks = this.tracks.filter((t) => t.missed <= this.maxMissed);
    return faces.sort((a, b) => a.trackId - b.trackId);
  }

  reset() { this.tracks = []; }
}
