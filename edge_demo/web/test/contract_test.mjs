// The web page's contract (src/: model card, preprocessing, quantization, top-k) against
// the Python side, under Node, without a browser:
//
//   node test/contract_test.mjs FIXTURE.json
//
// tests/test_web_contract.py writes FIXTURE.json: the Android contract's fixture
// (tests/test_android_contract.write_fixture: cards, bad cards, labels, photos -> raw
// sample -> float input -> quantized input, outputs -> top-k) and files of every kind the
// page reads (PNG of each colour type and bit depth, .npy, WAV) with what
// edge_demo/preprocessing.py makes of them. Everything must be equal value for value
// (float32 bit for bit), except the log-mel spectrogram of audio models, within the
// fixture's `spectrogram_tolerance`. Exit status 0 if every check passed, 1 otherwise
// (the failures are listed), 2 on bad usage.

import { readFileSync } from "node:fs";

import { quantize, dequantize, topK } from "../src/contract.js";
import { ModelCardError, parseCard, readLabels, webRefusal } from "../src/model_card.js";
import { InputError, Preprocessor } from "../src/preprocessing.js";
import { fromRgba } from "../src/decode.js";

let checks = 0;
const failures = [];

function check(ok, what) {
  checks++;
  if (!ok) failures.push(what());
}

const show = (v) => JSON.stringify(v);

function same(where, expected, actual) {
  check(show(expected) === show(actual), () => `${where}: expected <${show(expected)}>, got <${show(actual)}>`);
}

/** The same length, and equalAt(i) at every index; a failure names the first difference. */
function sameBy(where, e, a, equalAt) {
  if (e.length !== a.length) {
    check(false, () => `${where}: expected ${e.length} values, got ${a.length}`);
    return;
  }
  const bad = Array.from(e, (_, i) => i).findIndex((i) => !equalAt(i));
  check(bad < 0, () => `${where}: first difference at [${bad}]: expected ${e[bad]}, got ${a[bad]}`);
}

/** Bit-exact float32 comparison (0.0 and -0.0 differ, NaN equals NaN). */
function sameFloats(where, expected, actual) {
  const e = Float32Array.from(expected);
  const a = Float32Array.from(actual ?? []);
  const eb = new Uint32Array(e.buffer);
  const ab = new Uint32Array(a.buffer);
  sameBy(where, e, a, (i) => eb[i] === ab[i]);
}

function sameInts(where, expected, actual) {
  const a = Array.from(actual ?? []);
  sameBy(where, expected, a, (i) => expected[i] === a[i]);
}

/** The same numbers (as doubles: an int64 or float64 raw value is compared whole). */
function sameNumbers(where, expected, actual) {
  const a = Array.from(actual ?? []);
  sameBy(where, expected, a, (i) => Object.is(expected[i], a[i]) || (expected[i] === 0 && a[i] === 0));
}

/** |expected - actual| <= tolerance everywhere; returns the largest difference. */
function closeFloats(where, expected, actual, tolerance) {
  const a = Float32Array.from(actual ?? []);
  if (expected.length !== a.length) {
    check(false, () => `${where}: expected ${expected.length} values, got ${a.length}`);
    return 0;
  }
  let worst = 0;
  let at = -1;
  expected.forEach((v, i) => {
    const d = Math.abs(v - a[i]);
    if (!(d <= worst)) { worst = d; at = i; }
  });
  check(worst <= tolerance, () => `${where}: difference ${worst} at [${at}] exceeds ${tolerance}: `
    + `expected ${expected[at]}, got ${a[at]}`);
  return worst;
}

function refusal(block) {
  try {
    block();
    return null;
  } catch (err) {
    if (err instanceof ModelCardError) return err.message;
    throw err;
  }
}

function readExport(dir) {
  const card = parseCard(readFileSync(`${dir}/model_card.json`, "utf-8"));
  const labelsPath = `${dir}/${card.labelsFile}`;
  let text = null;
  try {
    text = readFileSync(labelsPath, "utf-8");
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
  }
  return { card, labels: readLabels(card, text, labelsPath) };
}

const tensorFields = (t) => ({ shape: t.shape, dtype: t.dtype, scale: t.scale, zero_point: t.zeroPoint });

function checkCards(cases, exports) {
  for (const { name, dir, expect } of cases) {
    let exp;
    try {
      exp = readExport(dir);
    } catch (err) {
      check(false, () => `card ${name}: refused: ${err.message}`);
      continue;
    }
    exports[name] = exp;
    const { card, labels } = exp;
    for (const [key, field] of [["modality", "modality"], ["kind", "kind"], ["model_file", "modelFile"],
      ["labels_file", "labelsFile"], ["class_names", "classNames"], ["quantization", "quantization"],
      ["encoding", "encoding"], ["interpolation", "interpolation"], ["crop_to_aspect", "cropToAspect"]]) {
      same(`${name} ${key}`, expect[key], card[field]);
    }
    same(`${name} input`, expect.input, tensorFields(card.input));
    same(`${name} output`, expect.output, tensorFields(card.output));
    if (expect.scale !== null) {
      sameFloats(`${name} scale`, expect.scale, card.scale);
      sameFloats(`${name} offset`, expect.offset, card.offset);
    }
    if (expect.clip === null) same(`${name} clip`, null, card.clip);
    else sameFloats(`${name} clip`, expect.clip, card.clip);
    same(`${name} labels`, expect.labels, labels);
    same(`${name} takes_pixels`, expect.takes_pixels, new Preprocessor(card).takesPixels);
  }
}

function checkBadCards(cases) {
  for (const { name, text, message, exact } of cases) {
    const actual = refusal(() => parseCard(text));
    if (exact) same(`bad card '${name}'`, message, actual);
    else {
      check(actual !== null && actual.startsWith(message),
        () => `bad card '${name}': expected a message starting <${message}>, got <${actual}>`);
    }
  }
}

function checkBadLabels(cases) {
  for (const { dir, message } of cases) same(`labels of ${dir}`, message, refusal(() => readExport(dir)));
}

/** Photos (RGB pixels as a browser's RGBA) -> raw sample, note, float input, quantized input. */
function checkInputs(cases, exports) {
  for (const c of cases) {
    const exp = exports[c.card];
    if (!exp) continue; // already reported
    const where = `input ${c.card} ${c.width}x${c.height}`;
    const rgba = new Uint8ClampedArray(c.width * c.height * 4).fill(255);
    c.rgb.forEach((v, i) => { rgba[4 * Math.floor(i / 3) + (i % 3)] = v; });
    const notes = [];
    const pre = new Preprocessor(exp.card, (m) => notes.push(m));
    const { pixels } = fromRgba({ data: rgba, width: c.width, height: c.height }, "RGB");
    const raw = pre.pixelsToRaw(pixels, "RGB", "photo");
    sameInts(`${where} raw`, c.raw, raw.values);
    const fitNotes = notes.filter((n) => n.startsWith("photo: resized"))
      .map((n) => n.split(": ").slice(1).join(": "));
    same(`${where} note`, c.note, fitNotes[0] ?? null);
    const x = pre.scale(raw);
    sameFloats(`${where} x`, c.x, x);
    const frame = { data: rgba, width: c.width, height: c.height };
    sameFloats(`${where} fromFrame`, x, pre.fromFrame(frame, "photo"));
    if (c.q !== null) {
      const { scale, zeroPoint, dtype } = exp.card.input;
      sameInts(`${where} quantized`, c.q, quantize(x, scale, zeroPoint, dtype));
    }
  }
}

function checkOutputs(cases, exports) {
  cases.forEach((c, i) => {
    const exp = exports[c.card];
    if (!exp) return;
    const where = `output ${c.card} #${i}`;
    const { scale, zeroPoint } = exp.card.output;
    const probabilities = c.q === null ? Float32Array.from(c.probabilities) : dequantize(c.q, scale, zeroPoint);
    sameFloats(`${where} probabilities`, c.probabilities, probabilities);
    const top = topK(probabilities, exp.labels, c.k);
    same(`${where} top-k`, c.top_k.map((t) => [t.label, t.index]), top.map((t) => [t.label, t.index]));
    sameFloats(`${where} top-k probabilities`, c.top_k.map((t) => t.probability),
      top.map((t) => t.probability));
  });
}

/** Files of every kind -> what preprocessing.py makes of them (or its refusal). */
async function checkFiles(cases, exports, tolerance) {
  let worst = 0;
  for (const c of cases) {
    const exp = exports[c.card];
    if (!exp) continue;
    const where = `file ${c.card} ${c.path.split("/").pop()}`;
    const notes = [];
    const pre = new Preprocessor(exp.card, (m) => notes.push(m));
    let samples;
    try {
      samples = await pre.rawSamples(c.path, new Uint8Array(readFileSync(c.path)));
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      if (c.exact) same(`${where} error`, c.error, err.message);
      else {
        check(c.error !== null && err.message.startsWith(c.error),
          () => `${where} error: expected a message starting <${c.error}>, got <${err.message}>`);
      }
      continue;
    }
    if (c.error !== null) {
      check(false, () => `${where}: expected the error <${c.error}>, got ${samples.length} sample(s)`);
      continue;
    }
    same(`${where} notes`, c.notes, notes);
    same(`${where} names`, c.samples.map((s) => s.name), samples.map(([name]) => name));
    c.samples.forEach((s, i) => {
      if (!samples[i]) return;
      const [, raw] = samples[i];
      same(`${where}[${i}] shape`, s.shape, raw.shape);
      const x = pre.scale(raw);
      if (exp.card.encoding === "wav_pcm16") {
        worst = Math.max(worst, closeFloats(`${where}[${i}] log-mel`, s.raw, raw.values, tolerance));
        closeFloats(`${where}[${i}] x`, s.x, x, tolerance / exp.card.std);
      } else {
        sameNumbers(`${where}[${i}] raw`, s.raw, raw.values);
        sameFloats(`${where}[${i}] x`, s.x, x);
      }
      if (s.q !== null) {
        const { scale, zeroPoint, dtype } = exp.card.input;
        sameInts(`${where}[${i}] quantized`, s.q, quantize(Float32Array.from(s.x), scale, zeroPoint, dtype));
      }
    });
  }
  return worst;
}

function checkRefusals(cases) {
  for (const { dir, message } of cases) {
    let actual;
    try {
      actual = webRefusal(readExport(dir).card);
    } catch (err) {
      actual = `refused by parseCard: ${err.message}`;
    }
    same(`web refusal of ${dir}`, message, actual);
  }
}

if (process.argv.length !== 3) {
  console.error("usage: node test/contract_test.mjs FIXTURE.json");
  process.exit(2);
}
const fixture = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const exports = {};
checkCards(fixture.cards, exports);
checkBadCards(fixture.bad_cards);
checkBadLabels(fixture.bad_labels);
checkInputs(fixture.inputs, exports);
checkOutputs(fixture.outputs, exports);
const worst = await checkFiles(fixture.files ?? [], exports, fixture.spectrogram_tolerance ?? 0);
checkRefusals(fixture.refusals ?? []);
console.log(`WebContract: ${checks} checks, ${failures.length} failed; largest log-mel difference ${worst}`);
for (const failure of failures.slice(0, 40)) console.log(`FAIL ${failure}`);
if (failures.length > 40) console.log(`... and ${failures.length - 40} more`);
process.exit(failures.length ? 1 : 0);
