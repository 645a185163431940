// ferkit live page: camera frames -> POST /v1/emotions (one in flight) -> boxes, labels, bars on a canvas.
// Plain JS, nothing loaded from anywhere but this server.
"use strict";

const EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"];
const COLORS = { angry: "#dc2828", disgust: "#288c28", fear: "#a03ca0", happy: "#ffc800",
                 neutral: "#b4b4b4", sad: "#1e78c8", surprise: "#ff8c00" };
const MAX_SIDE = 640;  // frames are scaled down to this before sending

const $ = (id) => document.getElementById(id);
const video = $("video"), view = $("view"), ctx = view.getContext("2d");
const grab = document.createElement("canvas"), gctx = grab.getContext("2d");

// page state, also read by the browser test
const state = window.ferkit = {
  running: false, inflight: false, stream: null, faces: [], frame: { w: 1, h: 1 },
  sent: 0, done: 0, times: [], latencies: [], photo: null, error: null,
};

function showError(msg) { state.error = msg; $("error").textContent = msg; $("error").hidden = false; }
function hideError() { state.error = null; $("error").hidden = true; }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function loadModel() {
  try {
    const m = await (await fetch("/v1/model")).json();
    const acc = m.headline ? ` · FER2013 PrivateTest ${(100 * m.headline.private_test).toFixed(1)}%` : "";
    $("model").textContent = `model ${m.name} (${m.file})${acc} · detector ${m.detector}`;
    const sel = $("detector");
    sel.add(new Option(`server default (${m.detector})`, ""));
    for (const [name, d] of Object.entries(m.detectors)) {
      if (d.available && name !== "auto" && name !== "full") sel.add(new Option(name, name));
    }
  } catch (e) {
    showError(`cannot reach the ferkit server (${e.message})`);
  }
}

function query(camera) {
  // camera frames: the chosen smallest face (big faces, fast detection); photos: the server's default
  const q = new URLSearchParams(camera ? { min_face: $("minface").value } : {});
  if ($("detector").value) q.set("detector", $("detector").value);
  return q.toString();
}

async function analyse(body, type, camera) {
  const t0 = performance.now();
  const r = await fetch(`/v1/emotions?${query(camera)}`, { method: "POST", body, headers: { "content-type": type } });
  let js;
  try { js = await r.json(); } catch (e) { js = { error: "bad_response", detail: `HTTP ${r.status}` }; }
  const ms = performance.now() - t0;
  if (!r.ok) throw new Error(`${js.detail || js.error} (HTTP ${r.status})`);
  return [js, ms];
}

// ------------------------------------------------------------------ drawing

function drawFaces(faces, sx, sy) {
  const unit = Math.max(1, view.width / 640);
  ctx.textBaseline = "top";
  for (const f of faces) {
    const x = f.box.x * sx, y = f.box.y * sy, w = f.box.w * sx, h = f.box.h * sy;
    const col = COLORS[f.label] || "#fff";
    ctx.lineWidth = 3 * unit;
    ctx.strokeStyle = col;
    ctx.strokeRect(x, y, w, h);
    // label with its confidence, above the box (inside when at the top edge)
    const txt = `${f.label} ${Math.round(100 * f.confidence)}%`;
    ctx.font = `bold ${Math.round(16 * unit)}px system-ui, sans-serif`;
    const tw = ctx.measureText(txt).width + 8 * unit, th = 22 * unit;
    const ty = y - th >= 0 ? y - th : y;
    ctx.fillStyle = col;
    ctx.fillRect(x - ctx.lineWidth / 2, ty, tw, th);
    ctx.fillStyle = "#000";
    ctx.fillText(txt, x + 4 * unit, ty + 3 * unit);
    // landmarks where the detector gives them ({name: [x, y]} or a list of [x, y])
    const marks = f.landmarks ? (Array.isArray(f.landmarks) ? f.landmarks : Object.values(f.landmarks)) : [];
    ctx.fillStyle = col;
    for (const p of marks) {
      if (!Array.isArray(p) || p.length < 2) continue;
      ctx.beginPath();
      ctx.arc(p[0] * sx, p[1] * sy, 2.5 * unit, 0, 2 * Math.PI);
      ctx.fill();
    }
    // seven probability bars beside the box (right side, or left when there is no room); the label column
    // is as wide as the widest emotion name in this font, so every name shows whole
    ctx.font = `${Math.round(10 * unit)}px system-ui, sans-serif`;
    const widest = Math.max(...EMOTIONS.map((e) => ctx.measureText(e).width));
    const bw = 70 * unit, bh = 10 * unit, gap = 3 * unit, pad = 2 * unit, lw = Math.ceil(widest) + 2 * pad;
    let bx = x + w + 6 * unit;
    if (bx + lw + bw > view.width) bx = Math.max(0, x - lw - bw - 6 * unit);
    EMOTIONS.forEach((e, i) => {
      const by = y + i * (bh + gap);
      ctx.fillStyle = "rgba(0,0,0,0.55)";
      ctx.fillRect(bx, by, lw + bw, bh);
      ctx.fillStyle = COLORS[e];
      ctx.fillRect(bx + lw, by, bw * (f.probs[e] || 0), bh);
      ctx.fillStyle = "#fff";
      ctx.fillText(e, bx + pad, by);
    });
    state.bars = { labels: [...EMOTIONS], widest, room: lw - 2 * pad };  // read by the browser test
  }
}

function renderList(faces) {
  const ol = $("faces");
  ol.replaceChildren(...faces.map((f) => {
    const li = document.createElement("li");
    li.dataset.label = f.label;
    li.innerHTML = `<b style="color:${COLORS[f.label]}">${f.label}</b> ${Math.round(100 * f.confidence)}% ` +
      `<span class="muted small">box ${f.box.x},${f.box.y} ${f.box.w}×${f.box.h}</span>`;
    const bars = document.createElement("div");
    bars.className = "bars";
    for (const e of EMOTIONS) {
      const p = f.probs[e] || 0;
      bars.insertAdjacentHTML("beforeend", `<span>${e}</span><span class="bar" style="width:${(100 * p).toFixed(1)}%;` +
        `background:${COLORS[e]}"></span><span>${(100 * p).toFixed(1)}%</span>`);
    }
    li.append(bars);
    return li;
  }));
}

function renderStats() {
  const now = performance.now();
  state.times = state.times.filter((t) => now - t < 2000);
  const fps = state.times.length >= 2 ? (state.times.length - 1) / ((state.times.at(-1) - state.times[0]) / 1000) : 0;
  const lat = state.latencies.slice(-20);
  const avg = lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : 0;
  const n = state.faces.length;
  $("stats").textContent = `${fps.toFixed(1)} fps · ${Math.round(lat.at(-1) || 0)} ms round trip ` +
    `(mean ${Math.round(avg)} ms) · ${n} face${n === 1 ? "" : "s"}`;
}

// ------------------------------------------------------------------ camera

function paint() {
  if (!state.running) return;
  if (video.videoWidth) {
    if (view.width !== video.videoWidth || view.height !== video.videoHeight) {
      view.width = video.videoWidth;
      view.height = video.videoHeight;
    }
    ctx.drawImage(video, 0, 0, view.width, view.height);
    drawFaces(state.faces, view.width / state.frame.w, view.height / state.frame.h);
  }
  requestAnimationFrame(paint);
}

function sendNext() {
  if (!state.running || state.inflight) return;
  if (video.readyState < 2 || !video.videoWidth) { setTimeout(sendNext, 50); return; }
  const s = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
  grab.width = Math.round(video.videoWidth * s);
  grab.height = Math.round(video.videoHeight * s);
  gctx.drawImage(video, 0, 0, grab.width, grab.height);
  const frame = { w: grab.width, h: grab.height };
  state.inflight = true;
  state.sent += 1;
  grab.toBlob(async (blob) => {
    try {
      const [js, ms] = await analyse(blob, "image/jpeg", true);
      if (!state.running) return;
      state.faces = js.faces;
      state.frame = frame;
      state.done += 1;
      state.times.push(performance.now());
      state.latencies.push(ms);
      hideError();
      renderList(js.faces);
      renderStats();
    } catch (e) {
      showError(e.message);
      showResult([]);  // no stale boxes on the live picture under the error
      await sleep(500);
    } finally {
      state.inflight = false;
      sendNext();
    }
  }, "image/jpeg", 0.85);
}

async function start() {
  hideError();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("This browser offers no camera on this page (cameras need https or localhost): " +
              "use 'Analyse a photo' instead.");
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia(
      { video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    showError(`No camera (${e.name}: ${e.message}): use 'Analyse a photo' instead.`);
    return;
  }
  video.srcObject = state.stream;
  await video.play();
  $("stage").hidden = false;
  state.running = true;
  state.photo = null;
  state.faces = [];
  $("start").disabled = true;
  $("stop").disabled = false;
  requestAnimationFrame(paint);
  sendNext();
}

function stop() {
  state.running = false;
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  $("start").disabled = false;
  $("stop").disabled = true;
  $("stats").textContent = "camera off";
}

// ------------------------------------------------------------------ photo upload (no camera needed)

async function analysePhoto(file) {
  stop();
  hideError();
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    bitmap = null;  // the browser cannot show it; the server may still read it (or say why not)
  }
  try {
    const [js, ms] = await analyse(file, file.type || "application/octet-stream", false);
    state.photo = file.name;
    state.latencies.push(ms);
    view.width = js.image.width;
    view.height = js.image.height;
    if (bitmap) ctx.drawImage(bitmap, 0, 0, view.width, view.height);
    else { ctx.fillStyle = "#333"; ctx.fillRect(0, 0, view.width, view.height); }
    $("stage").hidden = false;
    drawFaces(js.faces, 1, 1);
    showResult(js.faces);
    $("stats").textContent = `${file.name}: ${js.faces.length} face${js.faces.length === 1 ? "" : "s"} · ` +
      `${Math.round(ms)} ms round trip`;
  } catch (e) {
    // the previous photo and its faces go: under this error they would pass for this file's result
    state.photo = null;
    showResult([]);
    $("stage").hidden = true;
    $("stats").textContent = `${file.name}: no result`;
    showError(`${file.name}: ${e.message}`);
  }
}

function showResult(faces) {
  state.faces = faces;
  renderList(faces);
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
$("file").addEventListener("change", (ev) => { if (ev.target.files[0]) analysePhoto(ev.target.files[0]); });
loadModel();
