// Drawing for the on-device mode: each face's box in its label's colour, the label and confidence above it, the
// five landmarks, the seven probability bars beside it; and the list of faces under the picture. Faces have the
// server's JSON shape (box {x, y, w, h}, label, confidence, probs {emotion: p}, landmarks {name: [x, y]}).
"use strict";

import { EMOTIONS } from "./pipeline.js";

export const COLORS = { angry: "#dc2828", disgust: "#288c28", fear: "#a03ca0", happy: "#ffc800",
                        neutral: "#b4b4b4", sad: "#1e78c8", surprise: "#ff8c00" };

// sx, sy: canvas pixels per picture pixel
export function drawFaces(ctx, faces, sx = 1, sy = 1) {
  const W = ctx.canvas.width, unit = Math.max(1, W / 640);
  ctx.textBaseline = "top";
  for (const f of faces) {
    const x = f.box.x * sx, y = f.box.y * sy, w = f.box.w * sx, h = f.box.h * sy, col = COLORS[f.label] || "#fff";
    ctx.lineWidth = 3 * unit;
    ctx.strokeStyle = col;
    ctx.strokeRect(x, y, w, h);
    const txt = `${f.label} ${Math.round(100 * f.confidence)}%`;
    ctx.font = `bold ${Math.round(16 * unit)}px system-ui, sans-serif`;
    const tw = ctx.measureText(txt).width + 8 * unit, th = 22 * unit, ty = y - th >= 0 ? y - th : y;
    ctx.fillStyle = col;
    ctx.fillRect(x - ctx.lineWidth / 2, ty, tw, th);
    ctx.fillStyle = "#000";
    ctx.fillText(txt, x + 4 * unit, ty + 3 * unit);
    ctx.fillStyle = col;
    for (const p of Object.values(f.landmarks || {})) {
      ctx.beginPath();
      ctx.arc(p[0] * sx, p[1] * sy, 2.5 * unit, 0, 2 * Math.PI);
      ctx.fill();
    }
    // the bars on the right of the box, or on its left when there is no room; the name column fits the widest name
    ctx.font = `${Math.round(10 * unit)}px system-ui, sans-serif`;
    const pad = 2 * unit, lw = Math.ceil(Math.max(...EMOTIONS.map((e) => ctx.measureText(e).width))) + 2 * pad;
    const bw = 70 * unit, bh = 10 * unit, gap = 3 * unit;
    let bx = x + w + 6 * unit;
    if (bx + lw + bw > W) bx = Math.max(0, x - lw - bw - 6 * unit);
    EMOTIONS.forEach((e, i) => {
      const by = y + i * (bh + gap);
      ctx.fillStyle = "rgba(0,0,0,0.55)";
      ctx.fillRect(bx, by, lw + bw, bh);
      ctx.fillStyle = COLORS[e];
      ctx.fillRect(bx + lw, by, bw * (f.probs[e] || 0), bh);
      ctx.fillStyle = "#fff";
      ctx.fillText(e, bx + pad, by);
    });
  }
}

export function renderList(ol, faces) {
  ol.replaceChildren(...faces.map((f) => {
    const li = document.createElement("li");
    li.dataset.label = f.label;
    const head = document.createElement("b");
    head.style.color = COLORS[f.label];
    head.textContent = f.label;
    const box = document.createElement("span");
    box.className = "muted small";
    box.textContent = `box ${f.box.x},${f.box.y} ${f.box.w}×${f.box.h}` + (f.trackId ? ` · face #${f.trackId}` : "");
    li.append(head, ` ${Math.round(100 * f.confidence)}% `, box);
    const bars = document.createElement("div");
    bars.className = "bars";
    for (const e of EMOTIONS) {
      const p = f.probs[e] || 0, name = document.createElement("span"), bar = document.createElement("span");
      const pct = document.createElement("span");
      name.textContent = e;
      bar.className = "bar";
      bar.style.width = `${(100 * p).toFixed(1)}%`;
      bar.style.background = COLORS[e];
      pct.textContent = `${(100 * p).toFixed(1)}%`;
      bars.append(name, bar, pct);
    }
    li.append(bars);
    return li;
  }));
}
