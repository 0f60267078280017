// The page: open an export (files, a folder, or ?export=URL), then classify files or
// camera frames with LiteRT.js, showing the top-k, probabilities and inference time.
// The work is in src/ (the card, preprocessing, the runtime), shared with the contract
// test; this file is the user interface.
//
// URL parameters: export=/export/ (a served export folder, `discomkd-edge serve`),
// threads=N (LiteRT.js's threaded build with N threads, where the page is cross-origin
// isolated; default, or threads=0: its single-threaded build, which was as fast as one
// thread of the threaded build and faster than two for the default run's models:
// benchmarks/results/web-latency.md), top=K (classes shown, default 3).

import { CARD_FILE, LABELS_FILE, ModelCardError, parseCard, readLabels, webRefusal } from "./src/model_card.js";
import { topK } from "./src/contract.js";
import { InputError, Preprocessor } from "./src/preprocessing.js";
import { Classifier, loadRuntime, ModelFileError } from "./src/runtime.js";

const WASM_DIR = new URL("./node_modules/@litertjs/core/wasm/", import.meta.url).href;
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

const state = { card: null, labels: null, pre: null, classifier: null, lastInput: null, runtime: null,
  threads: 1, camera: null };
// For tests and the latency benchmark (benchmarks/web_latency.py): the page's state and
// the promise of its start-up.
window.discomkd = { state, ready: null, benchmark: (n) => benchmark(n) };

// ------------------------------------------------------------------------ start-up

async function start() {
  const wanted = Math.max(0, Math.floor(Number(params.get("threads") ?? 0)) || 0);
  try {
    state.runtime = await loadRuntime(WASM_DIR, { threads: wanted > 0 });
  } catch (err) {
    $("runtime").textContent = `LiteRT.js could not start: ${err.message}`;
    $("runtime").className = "error";
    throw err;
  }
  state.threads = Math.max(1, wanted);
  $("runtime").textContent = `LiteRT.js on the CPU (WebAssembly, XNNPACK), ${state.threads} thread`
    + `${state.threads === 1 ? "" : "s"}${state.runtime.threads ? " (threaded build)" : ""}; `
    + `cross-origin isolated: ${globalThis.crossOriginIsolated ? "yes" : "no"}.`;
  if (params.get("top")) $("top-k").value = params.get("top");
  wireDrops();
  if (params.get("export")) await openExportUrl(params.get("export"));
}

// ------------------------------------------------------------------------ the export

function showModelError(message) {
  $("model-error").textContent = message;
  $("model-error").hidden = false;
  $("model-info").hidden = true;
  $("input-section").hidden = true;
}

/** Opens an export from its three texts/bytes; every refusal is one sentence on the page. */
async function openExport({ cardText, labelsText, where, modelBytes }) {
  stopCamera();
  state.classifier?.delete();
  Object.assign(state, { card: null, labels: null, pre: null, classifier: null, lastInput: null });
  $("model-error").hidden = true;
  try {
    const card = parseCard(cardText, `${where}${CARD_FILE}`);
    const refusal = webRefusal(card);
    if (refusal) throw new ModelCardError(refusal);
    const labels = readLabels(card, labelsText, `${where}${card.labelsFile}`);
    const bytes = await modelBytes(card.modelFile);
    if (bytes === null) {
      throw new ModelFileError(`${where}${card.modelFile} is missing (named by the card's model_file).`);
    }
    const classifier = await Classifier.load(bytes, card, labels, state.threads);
    Object.assign(state, { card, labels, classifier, pre: new Preprocessor(card) });
  } catch (err) {
    if (!(err instanceof ModelCardError || err instanceof ModelFileError)) console.error(err);
    showModelError(err.message);
    return false;
  }
  showModel();
  return true;
}

async function fetchOrNull(url, as) {
  const response = await fetch(url);
  if (response.status === 404) return null;
  if (!response.ok) throw new ModelFileError(`${url}: the server answered ${response.status}.`);
  return as === "text" ? response.text() : new Uint8Array(await response.arrayBuffer());
}

/** The export folder served at `url` (e.g. /export/ or /export/depth/). */
async function openExportUrl(url) {
  const base = url.endsWith("/") ? url : `${url}/`;
  let cardText;
  try {
    cardText = await fetchOrNull(`${base}${CARD_FILE}`, "text");
  } catch (err) {
    showModelError(`${base}${CARD_FILE}: cannot be fetched (${err.message}).`);
    return false;
  }
  if (cardText === null) {
    showModelError(`${base}${CARD_FILE} is missing: the model folder must be one written by `
      + `\`discomkd-keras export\` (<modality>.tflite, ${LABELS_FILE}, ${CARD_FILE}).`);
    return false;
  }
  let labelsText = null;
  try {
    const card = parseCard(cardText, `${base}${CARD_FILE}`);
    labelsText = await fetchOrNull(`${base}${card.labelsFile}`, "text");
  } catch {
    // openExport reports the card's problem in its own words
  }
  return openExport({ cardText, labelsText, where: base, modelBytes: (file) => fetchOrNull(`${base}${file}`) });
}

/** Picked or dropped files: one export folder's files, or a run's export/ with several. */
async function openExportFiles(files) {
  const folders = new Map(); // folder path -> {name: File}
  for (const file of files) {
    const path = file.webkitRelativePath || file.relativePath || file.name;
    const folder = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "";
    if (!folders.has(folder)) folders.set(folder, {});
    folders.get(folder)[file.name] = file;
  }
  const exports = [...folders].filter(([, byName]) => CARD_FILE in byName);
  $("modality-choice").hidden = true;
  if (!exports.length) {
    showModelError(`${CARD_FILE} is missing: open the folder written by \`discomkd-keras export\` `
      + `(<modality>.tflite, ${LABELS_FILE}, ${CARD_FILE}), or those three files.`);
    return false;
  }
  const open = async ([folder, byName]) => openExport({
    cardText: await byName[CARD_FILE].text(),
    labelsText: await readLabelsFile(byName, folder),
    where: folder,
    modelBytes: async (file) => (byName[file] ? new Uint8Array(await byName[file].arrayBuffer()) : null),
  });
  if (exports.length === 1) return open(exports[0]);
  const select = $("modality-select");
  select.replaceChildren(...exports.map(([folder], i) => new Option(folder || "(this folder)", String(i))));
  select.onchange = () => open(exports[Number(select.value)]);
  $("modality-choice").hidden = false;
  return open(exports[0]);
}

async function readLabelsFile(byName, folder) {
  try {
    const card = parseCard(await byName[CARD_FILE].text(), `${folder}${CARD_FILE}`);
    return byName[card.labelsFile] ? await byName[card.labelsFile].text() : null;
  } catch {
    return null; // openExport reports the card's problem
  }
}

function showModel() {
  const { card, labels, pre } = state;
  const source = card.json.source;
  const rows = [
    ["model", `${card.modality}: ${pre.describe()}`],
    ["encoding", card.encoding],
    ["input", `${card.input.dtype} [${card.input.shape.join(", ")}]`],
    ["output", `${card.output.dtype} [${card.output.shape.join(", ")}]`],
    ["quantization", card.quantization ?? "none stated"],
    ["classes", labels.join(", ")],
    ["trained", `${source.run}, epoch ${source.epoch}`
      + (source.valid_weighted_f1 !== undefined && source.valid_weighted_f1 !== null
        ? `, validation weighted F1 ${Number(source.valid_weighted_f1).toFixed(3)}` : "")],
    ["accepts", pre.suffixes().join(", ") + (pre.takesPixels ? ", camera" : "")],
  ];
  $("model-info").replaceChildren(...rows.flatMap(([term, value]) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = value;
    return [dt, dd];
  }));
  $("model-info").hidden = false;
  $("model-info").dataset.modality = card.modality;
  $("accepted").textContent = pre.suffixes().join(" ");
  $("input-files").accept = pre.suffixes().join(",");
  $("camera-start").hidden = !pre.takesPixels || !navigator.mediaDevices?.getUserMedia;
  $("camera-stop").hidden = true;
  $("input-section").hidden = false;
  $("benchmark-result").textContent = "";
  document.body.dataset.ready = "model";
}

// ------------------------------------------------------------------------ inputs

/** JPEG through the browser's decoder, without what Pillow does not apply either: EXIF
 *  rotation and ICC colour conversion (their segments are dropped first). */
async function decodeJpeg(bytes) {
  const bitmap = await createImageBitmap(new Blob([stripJpegMetadata(bytes)], { type: "image/jpeg" }),
    { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return context.getImageData(0, 0, canvas.width, canvas.height);
}

/** The JPEG without its APP1 (EXIF) and APP2 (ICC profile) segments. */
function stripJpegMetadata(bytes) {
  const kept = [bytes.subarray(0, 2)];
  let at = 2;
  while (at + 4 <= bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1];
    if (marker === 0xda) break; // start of scan: the rest is image data
    const end = at + 2 + ((bytes[at + 2] << 8) | bytes[at + 3]);
    if (marker !== 0xe1 && marker !== 0xe2) kept.push(bytes.subarray(at, end));
    at = end;
  }
  kept.push(bytes.subarray(at));
  const out = new Uint8Array(kept.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of kept) { out.set(part, offset); offset += part.length; }
  return out;
}

function topKValue() {
  return Math.max(1, Math.min(Number($("top-k").value) || 3, state.labels.length));
}

async function classifyFiles(files) {
  if (!state.classifier) return;
  for (const file of files) {
    const notes = [];
    state.pre.warn = (message) => notes.push(message);
    let samples;
    try {
      samples = await state.pre.rawSamples(file.name, new Uint8Array(await file.arrayBuffer()), decodeJpeg);
    } catch (err) {
      if (!(err instanceof InputError)) console.error(err);
      const message = err instanceof InputError ? err.message : `${file.name}: ${err.message}`;
      addResult({ name: file.name, error: message });
      continue;
    }
    for (const [name, raw] of samples) {
      const x = state.pre.scale(raw);
      const { probabilities, ms } = await state.classifier.timed(x);
      state.lastInput = x;
      addResult({ name, raw, ms, top: topK(probabilities, state.labels, topKValue()),
        notes: notes.map((n) => n.slice(n.indexOf(": ") + 2)) });
    }
  }
  document.body.dataset.classified = String(Number(document.body.dataset.classified || 0) + files.length);
}

/** One result: file name, preview, top-k table, inference time and notes (or the error). */
function addResult(result) {
  const article = document.createElement("article");
  fillResult(article, result);
  $("results").prepend(article);
}

function fillResult(article, { name, raw, ms, top, notes = [], error }) {
  article.className = "result";
  article.dataset.name = name;
  article.replaceChildren();
  const preview = document.createElement("canvas");
  if (raw) drawPreview(preview, raw);
  const body = document.createElement("div");
  const title = document.createElement("h3");
  title.textContent = name;
  body.append(title);
  if (error) {
    article.dataset.error = error;
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = error;
    body.append(p);
  } else {
    article.dataset.top = JSON.stringify(top);
    article.dataset.ms = String(ms);
    title.textContent = `${name}  (inference ${ms.toFixed(2)} ms)`;
    const table = document.createElement("table");
    for (const [rank, t] of top.entries()) {
      const row = table.insertRow();
      row.insertCell().textContent = `${rank + 1}.`;
      row.insertCell().textContent = t.label;
      const cell = row.insertCell();
      cell.className = "prob";
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.display = "inline-block";
      bar.style.minWidth = `${Math.max(0, Math.min(100, 100 * t.probability))}%`;
      bar.textContent = `${(100 * t.probability).toFixed(2)}%`;
      cell.append(bar);
      row.insertCell().textContent = `class ${t.index}`;
    }
    body.append(table);
    for (const note of notes) {
      const p = document.createElement("p");
      p.className = "note muted";
      p.textContent = note;
      body.append(p);
    }
  }
  article.append(preview, body);
}

/** The raw sample the model sees, scaled to 0..255 for the eye (depth and spectrograms by
 *  their own range). */
function drawPreview(canvas, raw) {
  const [h, w, c] = raw.shape.length === 3 ? raw.shape : [1, raw.shape[0], 1];
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(w, h);
  let low = Infinity;
  let high = -Infinity;
  for (const v of raw.values) { if (v < low) low = v; if (v > high) high = v; }
  const eightBit = raw.values instanceof Uint8Array;
  const level = (v) => (eightBit ? v : high > low ? (255 * (v - low)) / (high - low) : 0);
  for (let p = 0; p < w * h; p++) {
    for (let k = 0; k < 3; k++) pixels.data[4 * p + k] = level(raw.values[p * c + (c === 3 ? k : 0)]);
    pixels.data[4 * p + 3] = 255;
  }
  if (raw.shape.length === 3 && c !== 1 && c !== 3) return; // other channel counts: no preview
  context.putImageData(pixels, 0, 0);
}

// ------------------------------------------------------------------------ camera

async function startCamera() {
  if (!state.pre?.takesPixels || state.camera) return;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (err) {
    addResult({ name: "camera", error: `camera: ${err.message || err.name} (a camera needs HTTPS or localhost, `
      + "and the browser's permission)." });
    return;
  }
  const video = $("camera-video");
  video.srcObject = stream;
  await video.play();
  const canvas = new OffscreenCanvas(1, 1);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const told = new Set();
  state.pre.warn = (message) => { // the same note every frame: say it once
    const general = message.slice(message.indexOf(": ") + 2);
    told.add(general);
  };
  const camera = { stream, running: true, frames: 0 };
  state.camera = camera;
  $("camera").hidden = false;
  $("camera-start").hidden = true;
  $("camera-stop").hidden = false;
  const loop = async () => {
    if (!camera.running) return;
    if (video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      const frame = context.getImageData(0, 0, canvas.width, canvas.height);
      const x = state.pre.fromFrame(frame, `camera:${camera.frames}`);
      const { probabilities, ms } = await state.classifier.timed(x);
      state.lastInput = x;
      if (!camera.running) return;
      fillResult($("camera-result"), { name: `camera:${camera.frames}`, ms, notes: [...told],
        top: topK(probabilities, state.labels, topKValue()) });
      $("camera-result").classList.add("live");
      camera.frames++;
    }
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
}

function stopCamera() {
  if (!state.camera) return;
  state.camera.running = false;
  for (const track of state.camera.stream.getTracks()) track.stop();
  state.camera = null;
  $("camera").hidden = true;
  $("camera-stop").hidden = true;
  $("camera-start").hidden = !state.pre?.takesPixels;
}

// ------------------------------------------------------------------------ benchmark

/** Median (and p90) of `runs` timed calls on the last input (zeros if none) after a
 *  warm-up, as classify.py --benchmark: quantize + run + dequantize. */
async function benchmark(runs = 100) {
  const { classifier, card } = state;
  const x = state.lastInput ?? new Float32Array(card.input.shape.reduce((n, d) => n * d, 1));
  const warmup = Math.min(10, Math.max(1, Math.floor(runs / 10)));
  for (let i = 0; i < warmup; i++) await classifier.classify(x);
  const times = [];
  for (let i = 0; i < runs; i++) times.push((await classifier.timed(x)).ms);
  times.sort((a, b) => a - b);
  const quantile = (q) => { // linear interpolation, as np.percentile
    const at = q * (times.length - 1);
    const lo = Math.floor(at);
    return times[lo] + (times[Math.min(lo + 1, times.length - 1)] - times[lo]) * (at - lo);
  };
  const result = { runs, warmup, threads: state.threads, threadedBuild: state.runtime.threads,
    median_ms: quantile(0.5), p90_ms: quantile(0.9), min_ms: times[0] };
  $("benchmark-result").textContent = `${runs} calls after ${warmup} warm-up, ${state.threads} thread`
    + `${state.threads === 1 ? "" : "s"}: median ${result.median_ms.toFixed(3)} ms, `
    + `p90 ${result.p90_ms.toFixed(3)} ms (min ${result.min_ms.toFixed(3)} ms)`;
  $("benchmark-result").dataset.result = JSON.stringify(result);
  return result;
}

// ------------------------------------------------------------------------ wiring

/** Files of a drop, folders walked (a dropped export/ folder gives its files). */
async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files];
  const files = [];
  const walk = async (entry, path) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      file.relativePath = `${path}${file.name}`;
      files.push(file);
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${path}${entry.name}/`);
      }
    }
  };
  for (const entry of entries) await walk(entry, "");
  return files;
}

function dropZone(zone, onFiles) {
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    onFiles(await droppedFiles(event.dataTransfer));
  });
}

function wireDrops() {
  dropZone($("model-drop"), openExportFiles);
  dropZone($("input-drop"), classifyFiles);
  $("model-files").addEventListener("change", (e) => openExportFiles([...e.target.files]));
  $("model-folder").addEventListener("change", (e) => openExportFiles([...e.target.files]));
  $("input-files").addEventListener("change", async (e) => {
    await classifyFiles([...e.target.files]);
    e.target.value = ""; // the same file again is a new choice
  });
  $("camera-start").addEventListener("click", startCamera);
  $("camera-stop").addEventListener("click", stopCamera);
  $("benchmark").addEventListener("click", () => benchmark(100));
  $("clear").addEventListener("click", () => $("results").replaceChildren());
}

window.discomkd.ready = start().then(() => { document.body.dataset.started = "yes"; });
