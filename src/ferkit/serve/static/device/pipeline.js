// One picture -> faces, all in the browser: what Recognizer(model="fast").detect() does in Python (CenterFace with
// landmarks, the upright eye-line alignment, the FER2013-style 48 x 48 crop, the int8 `fast` classifier), on
// onnxruntime-web. Loads onnxruntime-web and both model files from this page's own site, never from elsewhere.
"use strict";

import { CenterFace } from "./centerface.js";
import { image, toGray } from "./cvops.js";
import { CENTERFACE_SPEC, CROP_MAX_SIDE, SIZE, cropFace, toFace48 } from "./crop.js";

export const EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"];
export const LANDMARK_NAMES = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"];
// what the page loads, relative to the page (ferkit serve answers these paths; ferkit site writes this layout)
export const FILES = {
  ort: "static/ort/ort.wasm.min.mjs",
  wasm: "static/ort/ort-wasm-simd-threaded.wasm",
  detector: "models/centerface.onnx",
  classifier: "models/ferkit-fast.onnx",
};

class LoadError extends Error {}

async function fetchBytes(url, what) {
  const name = decodeURIComponent(new URL(url).pathname.split("/").pop());
  let r;
  try {
    r = await fetch(url);
  } catch (e) {
    throw new LoadError(`${what} ${name} could not be fetched (${e.message})`);
  }
  if (!r.ok) throw new LoadError(`${what} ${name} could not be loaded (HTTP ${r.status} for ${url})`);
  return new Uint8Array(await r.arrayBuffer());
}

async function session(ort, url, what) {
  const bytes = await fetchBytes(url, what);
  const name = decodeURIComponent(new URL(url).pathname.split("/").pop());
  try {
    return await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  } catch (e) {
    throw new LoadError(`${what} ${name} failed to load in onnxruntime-web (${e.message || e})`);
  }
}

export class Pipeline {
  // base: URL of the page's folder (ends with "/"); threads: WebAssembly threads (1 unless cross-origin isolated)
  static async create(base, threads = 1) {
    let ort;
    try {
      ort = await import(new URL(FILES.ort, base).href);
    } catch (e) {
      throw new LoadError(`onnxruntime-web (${FILES.ort}) failed to load (${e.message})`);
    }
    ort.env.wasm.wasmPaths = new URL("static/ort/", base).href;  // the glue .mjs beside it, never a CDN
    ort.env.wasm.wasmBinary = await fetchBytes(new URL(FILES.wasm, base).href, "onnxruntime-web's WebAssembly file");
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    const detector = await session(ort, new URL(FILES.detector, base).href, "the face detector");
    const classifier = await session(ort, new URL(FILES.classifier, base).href, "the emotion model");
    if (classifier.inputNames[0] !== "pixels" || !classifier.outputNames.includes("probs")) {
      throw new LoadError(`the emotion model ${FILES.classifier} is not a ferkit model (inputs ${classifier.inputNames},`
                          + ` outputs ${classifier.outputNames})`);
    }
    return new Pipeline(ort, detector, classifier, threads);
  }

  constructor(ort, detector, classifier, threads) {
    this.ort = ort;
    this.centerface = new CenterFace(ort, detector);
    this.classifier = classifier;
    this.info = { ort: ort.env.versions?.web || "?", threads, detector: "centerface", model: "fast" };
  }

  // (N x 48 x 48) crops -> N arrays of 7 probabilities
  async classify(crops) {
    if (!crops.length) return [];
    const x = new Float32Array(crops.length * SIZE * SIZE);
    crops.forEach((c, i) => x.set(c.data, i * SIZE * SIZE));
    const out = await this.classifier.run({ pixels: new this.ort.Tensor("float32", x, [crops.length, 1, SIZE, SIZE]) });
    const p = out.probs.data, n = EMOTIONS.length;
    for (const k of this.classifier.outputNames) out[k].dispose?.();
    return crops.map((_, i) => Array.from(p.subarray(i * n, (i + 1) * n)));
  }

  // RGBA pixels (w x h, as canvas ImageData gives them) -> {faces, timings} with faces in the JSON shape of the
  // server's (box {x, y, w, h}, score, label, confidence, probs {emotion: p}, landmarks, detector).
  // options: maxSide (longer side the detector sees, default 640 as in Python), minFace, maxFaces; boxes: no
  // detection, these [{box: [x, y, w, h], score}] are classified again (the video pipeline's detect_every: boxes
  // carried between detections have no landmarks, so they are cropped unaligned)
  async analyse(rgba, w, h, options = {}) {
    const t0 = performance.now();
    let dets, detector = "centerface", crops;
    const gray = toGray(rgba, w, h, 4);
    if (Math.max(w, h) <= CROP_MAX_SIDE) {  // a face crop already: classified whole, as in Python
      dets = [{ box: [0, 0, w, h], score: 1.0, landmarks: null }];
      detector = "crop";
    } else if (options.boxes) {
      dets = options.boxes.map((d) => ({ box: d.box, score: d.score, landmarks: null }));
      detector = "tracked";
    } else {
      dets = await this.centerface.detect(image(w, h, 4, rgba), options);  // alpha is never read
    }
    const t1 = performance.now();
    if (detector === "crop") crops = [toFace48(gray)];
    else crops = dets.map((d) => cropFace(gray, d.box, CENTERFACE_SPEC, d.landmarks));
    const t2 = performance.now();
    const probs = await this.classify(crops);
    const t3 = performance.now();
    const faces = dets.map((d, i) => face(d, probs[i], detector === "tracked" ? "centerface" : detector));
    return { faces, image: { width: w, height: h },
             detected: detector !== "tracked",
             timings: { detect: t1 - t0, crop: t2 - t1, classify: t3 - t2, total: t3 - t0 } };
  }
}

function face(d, probs, detector) {
  let best = 0;
  probs.forEach((v, i) => { if (v > probs[best]) best = i; });
  const [x, y, w, h] = d.box;
  const marks = d.landmarks ? Object.fromEntries(LANDMARK_NAMES.map((n, i) => [n, d.landmarks[i]])) : null;
  return { box: { x, y, w, h }, score: d.score, label: EMOTIONS[best], confidence: probs[best],
           probs: Object.fromEntries(EMOTIONS.map((e, i) => [e, probs[i]])), landmarks: marks, detector };
}
