// "On this device" mode of the page: the camera frames and photos are analysed in this browser (worker.js runs
// CenterFace and the `fast` model on onnxruntime-web) and never sent anywhere. The switch between this mode and
// the server mode (app.js) is remembered in localStorage; a static site (`ferkit site`, <html data-ferkit="site">)
// has no server, so there it is always this mode. One frame in flight; frames per second and milliseconds per step
// (detect, align+crop, classify) shown. Page state for the tests: window.ferkitDevice.
"use strict";

import { drawFaces, renderList } from "./draw.js";
import { EMOTIONS } from "./pipeline.js";
import { Tracker } from "./tracker.js";

const $ = (id) => document.getElementById(id);
const SITE = document.documentElement.dataset.ferkit === "site";
const KEY = "ferkit.mode";
const PHOTO_MAX_PIXELS = 50_000_000;
// the smallest valid module with a SIMD instruction (i8x16.popcnt): validates only where WebAssembly SIMD works
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0,
                                  65, 0, 253, 15, 253, 98, 11]);

const view = $("view"), ctx = view.getContext("2d");
const video = Object.assign(document.createElement("video"), { muted: true, playsInline: true, autoplay: true });
const grab = document.createElement("canvas"), gctx = grab.getContext("2d", { willReadFrequently: true });
const tracker = new Tracker();

const state = window.ferkitDevice = {
  mode: null, site: SITE, simd: hasSimd(), isolated: self.crossOriginIsolated === true, ready: false, info: null,
  error: null, running: false, inflight: 0, maxInflight: 0, done: 0, faces: [], frame: { w: 1, h: 1 }, times: [],
  steps: [], photo: null, stats: null,
};

function hasSimd() {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(SIMD_PROBE);
  } catch (e) {
    return false;
  }
}

function showError(msg, offerServer = false) {
  state.error = msg;
  $("dev-error-text").textContent = msg;
  $("dev-to-server").hidden = !(offerServer && !SITE);
  $("dev-error").hidden = false;
}
function hideError() { state.error = null; $("dev-error").hidden = true; }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const plural = (n) => `${n} face${n === 1 ? "" : "s"}`;

// ------------------------------------------------------------------ the worker

let worker = null, nextId = 1, settle = null;
const waiting = new Map();
// settles when the models are loaded (or failed to load: rejected with the message)
const ready = new Promise((resolve, reject) => { settle = { resolve, reject }; });
ready.catch(() => {});

function loadModels() {
  if (worker) return;
  if (!state.simd) {
    const msg = "This browser has no WebAssembly SIMD, which on-device analysis needs (onnxruntime-web). " +
      (SITE ? "Use a current browser, or run `ferkit serve` for the server mode." : "Use the server mode.");
    showError(msg, true);
    $("dev-model").textContent = "on this device: not available in this browser";
    settle.reject(new Error(msg));
    return;
  }
  const threads = state.isolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  $("dev-model").textContent = "on this device: loading onnxruntime-web and the models…";
  worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
  worker.onerror = (e) => {
    const msg = `the on-device worker (static/device/worker.js) failed: ${e.message || "error"}`;
    showError(msg);
    settle.reject(new Error(msg));
  };
  worker.onmessage = (ev) => {
    const m = ev.data;
    if (m.type === "ready") {
      state.ready = true;
      state.info = m.info;
      const how = m.info.threads > 1 ? `${m.info.threads} threads (cross-origin isolated)`
        : "1 thread (no cross-origin isolation headers from this server)";
      $("dev-model").textContent = `on this device: CenterFace + fast (int8) on onnxruntime-web ${m.info.ort}, ` +
        `WebAssembly SIMD, ${how}`;
      settle.resolve();
    } else if (m.stage === "init") {
      $("dev-model").textContent = "on this device: the models did not load";
      showError(m.message);
      settle.reject(new Error(m.message));
    } else {
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      if (w) (m.type === "result" ? w.resolve(m) : w.reject(new Error(m.message)));
    }
  };
  worker.postMessage({ type: "init", base: new URL("./", document.baseURI).href, threads });
}

function analyse(img, options) {
  const id = nextId++;
  state.inflight += 1;
  state.maxInflight = Math.max(state.maxInflight, state.inflight);
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    worker.postMessage({ type: "analyse", id, w: img.width, h: img.height, rgba: img.data.buffer, options },
                       [img.data.buffer]);
  }).finally(() => { state.inflight -= 1; });
}

// ------------------------------------------------------------------ camera

function tracked(faces) {
  const dets = faces.map((f) => ({ ...f, box: [f.box.x, f.box.y, f.box.w, f.box.h],
                                   probs: EMOTIONS.map((e) => f.probs[e]) }));
  return tracker.update(dets, EMOTIONS).map((f) => ({
    ...f, box: { x: f.box[0], y: f.box[1], w: f.box[2], h: f.box[3] },
    probs: Object.fromEntries(EMOTIONS.map((e, i) => [e, f.probs[i]])),
  }));
}

// mean over the last 20 frames (detect: over the frames where the detector ran)
function mean(key) {
  const s = state.steps.slice(-20).filter((t) => key !== "detect" || t.detected);
  return s.length ? s.reduce((a, b) => a + b[key], 0) / s.length : 0;
}

function renderStats() {
  state.times = state.times.slice(-10);  // frames per second over the last 10 frames
  const n = state.times.length;
  const fps = n >= 2 ? (n - 1) / ((state.times[n - 1] - state.times[0]) / 1000) : 0;
  state.stats = { fps, detect: mean("detect"), crop: mean("crop"), classify: mean("classify"), frame: mean("round") };
  $("dev-stats").textContent = `on this device · ${fps.toFixed(1)} fps · detect ${state.stats.detect.toFixed(0)} ms · ` +
    `align+crop ${state.stats.crop.toFixed(1)} ms · classify ${state.stats.classify.toFixed(1)} ms · ` +
    `${state.stats.frame.toFixed(0)} ms a frame · ${plural(state.faces.length)}`;
}

function paint() {
  if (!state.running) return;
  if (video.videoWidth) {
    if (view.width !== video.videoWidth || view.height !== video.videoHeight) {
      view.width = video.videoWidth;
      view.height = video.videoHeight;
    }
    ctx.drawImage(video, 0, 0, view.width, view.height);
    drawFaces(ctx, state.faces, view.width / state.frame.w, view.height / state.frame.h);
  }
  requestAnimationFrame(paint);
}

// The camera loop: one frame in flight. The detector runs on every Kth frame ("Find faces"); in between, the
// tracked faces are classified again at their boxes, as `ferkit video --detect-every K` does.
async function loop() {
  let since = 0;  // frames analysed since the last detection
  while (state.running) {
    if (!state.ready || video.readyState < 2 || !video.videoWidth) { await sleep(30); continue; }
    const t0 = performance.now(), w = video.videoWidth, h = video.videoHeight;
    grab.width = w;
    grab.height = h;
    gctx.drawImage(video, 0, 0, w, h);
    const img = gctx.getImageData(0, 0, w, h);
    const every = +$("dev-every").value, detect = since % every === 0 || state.frame.w !== w;
    const options = { maxSide: +$("dev-size").value, minFace: +$("dev-minface").value };
    if (!detect) options.boxes = state.faces.map((f) => ({ box: [f.box.x, f.box.y, f.box.w, f.box.h], score: f.score }));
    since = detect ? 1 : since + 1;
    try {
      const res = await analyse(img, options);
      if (!state.running) break;
      state.faces = tracked(res.faces);
      state.frame = { w, h };
      state.done += 1;
      state.times.push(performance.now());
      state.steps.push({ ...res.timings, detected: res.detected, round: performance.now() - t0 });
      if (state.steps.length > 100) state.steps.splice(0, 50);
      renderList($("dev-faces"), state.faces);
      renderStats();
    } catch (e) {
      showError(`analysis failed: ${e.message}`);
      await sleep(500);
    }
  }
}

async function start() {
  hideError();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("This browser offers no camera on this page (cameras need https or localhost): " +
              "use 'Analyse a photo' instead, it works on this device too.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia(
      { video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    const why = e.name === "NotAllowedError" ? "permission to use the camera was denied"
      : e.name === "NotFoundError" ? "no camera was found" : `${e.name}: ${e.message}`;
    showError(`No camera (${why}): use 'Analyse a photo' instead, it works on this device too.`);
    return;
  }
  video.srcObject = stream;
  await video.play();
  tracker.reset();
  Object.assign(state, { running: true, photo: null, faces: [], times: [], steps: [] });
  $("stage").hidden = false;
  $("dev-start").disabled = true;
  $("dev-stop").disabled = false;
  if (!state.ready) $("dev-stats").textContent = "on this device · loading the models…";
  requestAnimationFrame(paint);
  loop();
}

function stop() {
  state.running = false;
  if (video.srcObject) video.srcObject.getTracks().forEach((t) => t.stop());
  video.srcObject = null;
  $("dev-start").disabled = false;
  $("dev-stop").disabled = true;
  $("dev-stats").textContent = "camera off";
}

// ------------------------------------------------------------------ photo (no camera needed)

async function analysePhoto(file) {
  stop();
  hideError();
  const fail = (msg) => {
    state.photo = null;
    state.faces = [];
    renderList($("dev-faces"), []);
    $("stage").hidden = true;
    $("dev-stats").textContent = `${file.name}: no result`;
    showError(`${file.name}: ${msg}`);
  };
  try {
    await ready;
  } catch (e) {
    return fail(`nothing analysed: ${e.message}`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image", colorSpaceConversion: "none" });
  } catch (e) {
    return fail("not an image this browser can read");
  }
  if (bitmap.width * bitmap.height > PHOTO_MAX_PIXELS) {
    return fail(`${bitmap.width}x${bitmap.height} is more than ${PHOTO_MAX_PIXELS.toLocaleString()} pixels`);
  }
  grab.width = bitmap.width;
  grab.height = bitmap.height;
  gctx.drawImage(bitmap, 0, 0);
  const img = gctx.getImageData(0, 0, bitmap.width, bitmap.height);
  try {
    const res = await analyse(img, {});
    Object.assign(state, { photo: file.name, faces: res.faces, frame: { w: bitmap.width, h: bitmap.height },
                           result: res });
    view.width = bitmap.width;
    view.height = bitmap.height;
    ctx.drawImage(bitmap, 0, 0);
    $("stage").hidden = false;
    drawFaces(ctx, res.faces);
    renderList($("dev-faces"), res.faces);
    const t = res.timings;
    $("dev-stats").textContent = `${file.name}: ${plural(res.faces.length)} · on this device · detect ` +
      `${t.detect.toFixed(0)} ms · align+crop ${t.crop.toFixed(1)} ms · classify ${t.classify.toFixed(1)} ms`;
  } catch (e) {
    fail(e.message);
  }
}

// ------------------------------------------------------------------ the switch

function setMode(mode) {
  if (SITE) mode = "device";
  state.mode = mode;
  document.body.dataset.mode = mode;
  for (const r of document.querySelectorAll("input[name=mode]")) r.checked = r.value === mode;
  try { localStorage.setItem(KEY, mode); } catch (e) { /* private browsing: not remembered */ }
  if (mode === "device") {
    const serverStop = $("stop");
    if (serverStop && !serverStop.disabled) serverStop.click();  // the server mode's camera goes off
    loadModels();
  } else if (state.running) {
    stop();
  }
}

function initialMode() {
  if (SITE) return "device";
  try {
    const m = localStorage.getItem(KEY);
    if (m === "device" || m === "server") return m;
  } catch (e) { /* no storage */ }
  return "server";
}

if (SITE) {
  const r = document.querySelector("input[name=mode][value=server]");
  if (r) r.disabled = true;
  $("mode-note").textContent = "a static site: everything runs in this browser (the server mode needs `ferkit serve`)";
}
for (const r of document.querySelectorAll("input[name=mode]")) r.addEventListener("change", () => setMode(r.value));
$("dev-start").addEventListener("click", start);
$("dev-stop").addEventListener("click", stop);
$("dev-file").addEventListener("change", (ev) => { if (ev.target.files[0]) analysePhoto(ev.target.files[0]); });
$("dev-to-server").addEventListener("click", () => setMode("server"));
setMode(initialMode());
