// Pixel operations that give the same bytes as the OpenCV calls ferkit's Python runtime makes (opencv-python 4.14):
// cvtColor BGR2GRAY, resize INTER_AREA and INTER_LINEAR (uint8), copyMakeBorder BORDER_REPLICATE, warpAffine
// INTER_LINEAR + BORDER_REPLICATE (uint8, one channel), getRotationMatrix2D; and Python's round().
// An image is {data: Uint8Array (rows of w * c bytes), w, h, c}. tests/test_device_ops.py checks every function
// here against cv2 on random images.
"use strict";

const f32 = Math.fround;

export function image(w, h, c = 1, data = null) {
  return { w, h, c, data: data || new Uint8Array(w * h * c) };
}

// Python's round(): halves to even.
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// Python's round(x, 1) on a double: the exact decimal value rounded, halves to even (a tie is only possible for
// .25 and .75, the only two-digit decimals a double holds exactly).
export function pyRound1(x) {
  const a = Math.abs(x), f = a % 1;
  if (f === 0.25 || f === 0.75) {
    const n = Math.floor(a * 10);
    return Math.sign(x) * (n % 2 === 0 ? n : n + 1) / 10;
  }
  return Number(x.toFixed(1));
}

// cvRound / saturate_cast<uchar>(float): nearest, halves to even, clipped to 0..255.
export function sat8(v) {
  const r = pyRound(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

// ------------------------------------------------------------------ colour

// cv2.cvtColor(bgr, COLOR_BGR2GRAY) from RGB(A) bytes: fixed point, 15 bits, rounded.
export function toGray(src, w, h, stride = 4) {
  const out = new Uint8Array(w * h);
  for (let i = 0, j = 0, n = w * h; j < n; i += stride, j++) {
    out[j] = (src[i] * 9798 + src[i + 1] * 19235 + src[i + 2] * 3735 + 16384) >> 15;
  }
  return image(w, h, 1, out);
}

// ------------------------------------------------------------------ borders

function clampIndex(i, n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

// cv2.copyMakeBorder(src, top, bottom, left, right, BORDER_REPLICATE) (or BORDER_CONSTANT with `value`).
export function copyMakeBorder(src, top, bottom, left, right, value = null) {
  const { w, h, c } = src;
  const W = w + left + right, H = h + top + bottom, out = image(W, H, c);
  for (let y = 0; y < H; y++) {
    const sy = y - top, inside = sy >= 0 && sy < h, row = clampIndex(sy, h) * w;
    for (let x = 0; x < W; x++) {
      const sx = x - left, o = (y * W + x) * c;
      if (value !== null && (!inside || sx < 0 || sx >= w)) {
        for (let k = 0; k < c; k++) out.data[o + k] = value;
      } else {
        const s = (row + clampIndex(sx, w)) * c;
        for (let k = 0; k < c; k++) out.data[o + k] = src.data[s + k];
      }
    }
  }
  return out;
}

// src[y0:y1, x0:x1] (inside the image)
export function window(src, x0, y0, x1, y1) {
  const { w, c } = src, W = x1 - x0, out = image(W, y1 - y0, c);
  for (let y = y0; y < y1; y++) out.data.set(src.data.subarray((y * w + x0) * c, (y * w + x1) * c), (y - y0) * W * c);
  return out;
}

// ------------------------------------------------------------------ resize

// cv2.resize(src, (dw, dh), interpolation=INTER_AREA) for a shrink (or the same size).
export function resizeArea(src, dw, dh) {
  if (dw === src.w && dh === src.h) return image(dw, dh, src.c, src.data.slice());
  const invX = dw / src.w, invY = dh / src.h, sx = 1 / invX, sy = 1 / invY;
  const ix = pyRound(sx), iy = pyRound(sy);
  if (Math.abs(sx - ix) < Number.EPSILON && Math.abs(sy - iy) < Number.EPSILON) return areaFast(src, dw, dh, ix, iy);
  if (sx < 1 || sy < 1) return resizeLinear(src, dw, dh);  // OpenCV interpolates there too (never used here)
  return areaGeneric(src, dw, dh, sx, sy);
}

// OpenCV's resizeAreaFast_: whole-pixel scales; 2 x 2 rounds (sum + 2) >> 2, others round sum * (1/area) in float
function areaFast(src, dw, dh, ix, iy) {
  const { w, c, data } = src, out = image(dw, dh, c), o = out.data, rowLen = w * c;
  if (ix === 2 && iy === 2) {
    for (let y = 0, d = 0; y < dh; y++) {
      let a = 2 * y * rowLen;
      for (let x = 0; x < dw; x++, a += c) {
        for (let k = 0; k < c; k++, a++, d++) o[d] = (data[a] + data[a + c] + data[a + rowLen] + data[a + rowLen + c] + 2) >> 2;
      }
    }
    return out;
  }
  const scale = f32(1 / (ix * iy));
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      for (let k = 0; k < c; k++) {
        let sum = 0;
        for (let v = 0; v < iy; v++) {
          const row = (y * iy + v) * w;
          for (let u = 0; u < ix; u++) sum += data[(row + x * ix + u) * c + k];
        }
        o[(y * dw + x) * c + k] = sat8(f32(sum * scale));
      }
    }
  }
  return out;
}

// OpenCV's computeResizeAreaTab: destination index, source index and weight of every source pixel's share
function areaTab(ssize, dsize, scale) {
  const di = [], si = [], alpha = [];
  const add = (d, s, a) => { di.push(d); si.push(s); alpha.push(a); };
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale, fsx2 = fsx1 + scale, cell = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1), sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, ssize - 1);
    sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) add(dx, sx1 - 1, f32((sx1 - fsx1) / cell));
    for (let s = sx1; s < sx2; s++) add(dx, s, f32(1.0 / cell));
    if (fsx2 - sx2 > 1e-3) add(dx, sx2, f32(Math.min(Math.min(fsx2 - sx2, 1), cell) / cell));
  }
  return { n: di.length, di: Int32Array.from(di), si: Int32Array.from(si), alpha: Float32Array.from(alpha) };
}

// OpenCV's resizeArea_<uchar, float>: float accumulation in the same order, rounded at the end
function areaGeneric(src, dw, dh, sx, sy) {
  const { w, c, data } = src, out = image(dw, dh, c), xt = areaTab(src.w, dw, sx), yt = areaTab(src.h, dh, sy);
  const n = dw * c, buf = new Float32Array(n), sum = new Float32Array(n), { di, si, alpha } = xt;
  let prev = yt.di[0];
  for (let j = 0; j < yt.n; j++) {
    const dy = yt.di[j], beta = yt.alpha[j], base = yt.si[j] * w * c;
    buf.fill(0);
    for (let k = 0; k < xt.n; k++) {
      const a = alpha[k], d = di[k] * c, s = base + si[k] * c;
      for (let q = 0; q < c; q++) buf[d + q] += f32(data[s + q] * a);  // Float32Array: every sum rounded
    }
    if (dy !== prev) {
      const o = prev * n;
      for (let i = 0; i < n; i++) { out.data[o + i] = sat8(sum[i]); sum[i] = beta * buf[i]; }
      prev = dy;
    } else {
      for (let i = 0; i < n; i++) sum[i] += f32(beta * buf[i]);
    }
  }
  const o = prev * n;
  for (let i = 0; i < n; i++) out.data[o + i] = sat8(sum[i]);
  return out;
}

// OpenCV's linear coefficients for one axis: source index and the two weights in 11-bit fixed point
function linearTab(ssize, dsize) {
  const scale = 1 / (dsize / ssize), ofs = new Int32Array(dsize), a = new Int32Array(2 * dsize);
  for (let d = 0; d < dsize; d++) {
    let f = f32((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = f32(f - s);
    if (s < 0) { f = 0; s = 0; }
    if (s >= ssize - 1) { f = 0; s = ssize - 1; }
    ofs[d] = s;
    a[2 * d] = sat16(f32(1 - f) * 2048);
    a[2 * d + 1] = sat16(f * 2048);
  }
  return [ofs, a];
}

function sat16(v) { return pyRound(v); }

// cv2.resize(src, (dw, dh), interpolation=INTER_LINEAR) for uint8: horizontal pass in 11-bit fixed point, vertical
// pass as OpenCV's SIMD code rounds it (>> 4, high half of the 16-bit product, + 2 >> 2)
export function resizeLinear(src, dw, dh) {
  if (dw === src.w && dh === src.h) return image(dw, dh, src.c, src.data.slice());
  if (dw * 2 === src.w && dh * 2 === src.h) return areaFast(src, dw, dh, 2, 2);  // OpenCV's own shortcut
  const { w, h, c } = src, [xo, xa] = linearTab(w, dw), out = image(dw, dh, c);
  const sy = 1 / (dh / h), rows = new Int32Array(2 * dw * c);
  const hrow = (y, dst, o) => {
    const base = y * w * c;
    for (let x = 0; x < dw; x++) {
      const s = xo[x], s1 = Math.min(s + 1, w - 1);
      for (let k = 0; k < c; k++) {
        dst[o + x * c + k] = src.data[base + s * c + k] * xa[2 * x] + src.data[base + s1 * c + k] * xa[2 * x + 1];
      }
    }
  };
  for (let y = 0; y < dh; y++) {
    let f = f32((y + 0.5) * sy - 0.5);
    const s = Math.floor(f);
    f = f32(f - s);
    const b0 = sat16(f32(1 - f) * 2048), b1 = sat16(f * 2048);
    hrow(clampIndex(s, h), rows, 0);
    hrow(clampIndex(s + 1, h), rows, dw * c);
    for (let i = 0, n = dw * c; i < n; i++) {
      const v = (((rows[i] >> 4) * b0) >> 16) + (((rows[n + i] >> 4) * b1) >> 16);
      const r = (v + 2) >> 2;
      out.data[y * n + i] = r < 0 ? 0 : r > 255 ? 255 : r;
    }
  }
  return out;
}

// ------------------------------------------------------------------ rotation

// cv2.getRotationMatrix2D(centre, angle, scale): the centre is taken as float32, as OpenCV's Point2f
export function rotationMatrix(cx, cy, angleDeg, scale) {
  const a = angleDeg * (Math.PI / 180), al = Math.cos(a) * scale, be = Math.sin(a) * scale;
  const x = f32(cx), y = f32(cy);
  return [al, be, (1 - al) * x - be * y, -be, al, be * x + (1 - al) * y];
}

// cv2.warpAffine(src, M, (dw, dh), flags=INTER_LINEAR, borderMode=BORDER_REPLICATE) for one uint8 channel:
// M inverted in double; source positions in 1/32 pixel (10-bit steps, rounded, shifted to 5 bits); bilinear
// weights in 15-bit fixed point (exact products of the 1/32 fractions), rounded
export function warpAffine(src, M, dw, dh) {
  let [m0, m1, m2, m3, m4, m5] = M;
  let D = m0 * m4 - m1 * m3;
  D = D !== 0 ? 1 / D : 0;
  const a11 = m4 * D, a22 = m0 * D;
  m0 = a11; m1 *= -D; m3 *= -D; m4 = a22;
  const b1 = -m0 * m2 - m1 * m5, b2 = -m3 * m2 - m4 * m5;
  m2 = b1; m5 = b2;
  const { w, h, data } = src, out = image(dw, dh, 1);
  const adelta = new Int32Array(dw), bdelta = new Int32Array(dw);
  for (let x = 0; x < dw; x++) { adelta[x] = pyRound(m0 * x * 1024); bdelta[x] = pyRound(m3 * x * 1024); }
  for (let y = 0; y < dh; y++) {
    const X0 = pyRound((m1 * y + m2) * 1024) + 16, Y0 = pyRound((m4 * y + m5) * 1024) + 16;
    for (let x = 0; x < dw; x++) {
      const X = (X0 + adelta[x]) >> 5, Y = (Y0 + bdelta[x]) >> 5;
      const sx = X >> 5, sy = Y >> 5, fx = X & 31, fy = Y & 31;
      const w00 = (32 - fy) * (32 - fx) * 32, w01 = (32 - fy) * fx * 32, w10 = fy * (32 - fx) * 32, w11 = fy * fx * 32;
      const x0 = clampIndex(sx, w), x1 = clampIndex(sx + 1, w), r0 = clampIndex(sy, h) * w, r1 = clampIndex(sy + 1, h) * w;
      const v = data[r0 + x0] * w00 + data[r0 + x1] * w01 + data[r1 + x0] * w10 + data[r1 + x1] * w11;
      const r = (v + 16384) >> 15;
      out.data[y * dw + x] = r < 0 ? 0 : r > 255 ? 255 : r;
    }
  }
  return out;
}
