// The on-device analysis in a module Web Worker, so the page keeps drawing the camera while a frame is analysed.
// Messages in: {type: "init", base, threads} once, then {type: "analyse", id, w, h, rgba (ArrayBuffer), options}.
// Messages out: {type: "ready", info} | {type: "result", id, ...Pipeline.analyse()} | {type: "error", id, message}.
"use strict";

import { Pipeline } from "./pipeline.js";

let pipeline = null;

self.onmessage = async (ev) => {
  const m = ev.data;
  try {
    if (m.type === "init") {
      pipeline = await Pipeline.create(m.base, m.threads);
      self.postMessage({ type: "ready", info: pipeline.info });
    } else if (m.type === "analyse") {
      if (!pipeline) throw new Error("the models are not loaded yet");
      const res = await pipeline.analyse(new Uint8Array(m.rgba), m.w, m.h, m.options || {});
      self.postMessage({ type: "result", id: m.id, ...res });
    }
  } catch (e) {
    self.postMessage({ type: "error", id: m.id ?? null, stage: m.type, message: e.message || String(e) });
  }
};
