// The model card (format FORMAT) as edge_demo/model_card.py reads it, for the web page.
//
// parseCard makes the checks of model_card.validate_card, in its order and with its
// one-line messages (tests/test_web_contract.py compares them with Python's, as
// tests/test_android_contract.py does for the Kotlin ModelCard.kt), then the page's own
// check (`webRefusal`): what this page cannot honour is refused in one sentence too.
//
// JSON is read by a small parser of its own (parsePyJson) because the checks depend on
// what Python's json module sees and JSON.parse hides: 1 (an int) against 1.0 (a float),
// NaN and Infinity (Python accepts them), the order of keys, and numbers as Python
// writes them back in messages (repr). No DOM, no fetch: the same file runs in Node
// (the contract test) and in the browser.

import { SPECTROGRAM_PARAMS, WINDOWS } from "./spectrogram.js";

export const FORMAT = "discomkd-keras/model-card/v2";
export const OLD_FORMATS = ["discomkd-keras/model-card/v1"];
export const CARD_FILE = "model_card.json";
export const LABELS_FILE = "labels.txt";
export const KINDS = ["image", "spectrogram", "vector"];
export const TENSOR_DTYPES = ["float32", "int8", "uint8"];
export const INTERPOLATIONS = ["bilinear", "nearest"];
export const DEPTH = "depth_mm_uint16";
const REEXPORT = "re-export the model with `discomkd-keras export`";

// encoding -> [kinds it can feed, channels of the model input or null for any]:
// model_card.ENCODINGS, in its order (messages list them in this order).
export const ENCODINGS = new Map([
  ["rgb8", [["image"], 3]],
  ["gray8", [["image"], 1]],
  [DEPTH, [["image"], 1]],
  ["wav_pcm16", [["spectrogram"], 1]],
  ["float_raw", [["image", "vector"], null]],
  ["bands_tiff", [["image"], null]],
  ["array_npy", [["image", "vector"], null]],
]);

// The encodings this page reads. bands_tiff is refused: its samples are multi-band TIFF
// files, and a browser has no TIFF decoder (discomkd-edge classify reads them).
export const WEB_ENCODINGS = ["rgb8", "gray8", DEPTH, "wav_pcm16", "float_raw", "array_npy"];

export class ModelCardError extends Error {
  constructor(message) {
    super(message);
    this.name = "ModelCardError";
  }
}

// ------------------------------------------------------------------------ Python's JSON

/** A JSON number as Python's json module types it: an int (no fraction, no exponent). */
export class PyInt {
  constructor(text) {
    this.text = text;
    this.value = Number(text);
  }
}

/** A JSON number with a fraction or an exponent (or NaN / Infinity): a Python float. */
export class PyFloat {
  constructor(value) {
    this.value = value;
  }
}

class JsonSyntaxError extends Error {
  constructor(message, text, pos) {
    super(message);
    this.line = text.slice(0, pos).split("\n").length;
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
const WHITESPACE = /[ \t\n\r]*/y;

/**
 * JSON text -> values as Python's json.loads gives them: objects as Maps (insertion
 * order, a repeated key keeping its first place and its last value), arrays, strings,
 * true/false/null, numbers as PyInt or PyFloat. Errors are JsonSyntaxErrors worded as
 * Python's JSONDecodeError.msg, with its line.
 */
export function parsePyJson(text) {
  let pos = 0;
  const fail = (message, at = pos) => { throw new JsonSyntaxError(message, text, at); };
  const skip = () => { WHITESPACE.lastIndex = pos; WHITESPACE.exec(text); pos = WHITESPACE.lastIndex; };

  function string() {
    const start = pos - 1; // the opening quote
    let out = "";
    for (;;) {
      if (pos >= text.length) fail("Unterminated string starting at", start);
      const ch = text[pos];
      if (ch === '"') { pos++; return out; }
      if (ch === "\\") {
        const esc = text[pos + 1];
        const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
        if (esc === undefined) fail("Unterminated string starting at", start);
        if (esc in simple) { out += simple[esc]; pos += 2; continue; }
        if (esc !== "u") fail("Invalid \\escape", pos);
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("Invalid \\uXXXX escape", pos + 1);
        out += String.fromCharCode(parseInt(hex, 16)); // surrogate pairs join in the JS string
        pos += 6;
        continue;
      }
      if (ch < " ") fail("Invalid control character at", pos);
      out += ch;
      pos++;
    }
  }

  function value() {
    skip();
    const ch = text[pos];
    if (ch === "{") return object();
    if (ch === "[") return array();
    if (ch === '"') { pos++; return string(); }
    for (const [word, result] of [["null", null], ["true", true], ["false", false],
      ["NaN", new PyFloat(NaN)], ["Infinity", new PyFloat(Infinity)],
      ["-Infinity", new PyFloat(-Infinity)]]) {
      if (text.startsWith(word, pos)) { pos += word.length; return result; }
    }
    NUMBER.lastIndex = pos;
    const match = NUMBER.exec(text);
    if (match) {
      pos = NUMBER.lastIndex;
      return match[1] || match[2] ? new PyFloat(Number(match[0])) : new PyInt(match[0]);
    }
    fail("Expecting value");
  }

  function object() {
    const out = new Map();
    pos++;
    skip();
    if (text[pos] === "}") { pos++; return out; }
    for (;;) {
      if (text[pos] !== '"') fail("Expecting property name enclosed in double quotes");
      pos++;
      const key = string();
      skip();
      if (text[pos] !== ":") fail("Expecting ':' delimiter");
      pos++;
      out.set(key, value());
      skip();
      if (text[pos] === "}") { pos++; return out; }
      if (text[pos] !== ",") fail("Expecting ',' delimiter");
      pos++;
      skip();
    }
  }

  function array() {
    const out = [];
    pos++;
    skip();
    if (text[pos] === "]") { pos++; return out; }
    for (;;) {
      out.push(value());
      skip();
      if (text[pos] === "]") { pos++; return out; }
      if (text[pos] !== ",") fail("Expecting ',' delimiter");
      pos++;
    }
  }

  if (text.startsWith("\ufeff")) fail("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0);
  const result = value();
  skip();
  if (pos !== text.length) fail("Extra data");
  return result;
}

// ------------------------------------------------------------------------ Python's words

const isInt = (v) => v instanceof PyInt;
const isNumber = (v) => v instanceof PyInt || v instanceof PyFloat; // a bool is no number
const isObject = (v) => v instanceof Map;
const num = (v) => v.value;

/** model_card._JSON_TYPES: what a JSON value is, in the messages' words. */
function typeName(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean") return "true or false";
  if (isInt(v)) return "an integer";
  if (v instanceof PyFloat) return "a number";
  if (typeof v === "string") return "a string";
  if (Array.isArray(v)) return "a list";
  return "an object";
}

const TYPE_WORDS = { object: "an object", list: "a list", string: "a string", int: "an integer",
  number: "a number", bool: "true or false" };

/** model_card._is: Python's isinstance for JSON values. */
function isA(v, type) {
  switch (type) {
    case "object": return isObject(v);
    case "list": return Array.isArray(v);
    case "string": return typeof v === "string";
    case "int": return isInt(v);
    case "number": return isNumber(v);
    case "bool": return typeof v === "boolean";
    default: throw new Error(`unknown type ${type}`);
  }
}

/** Python's repr() of a float: the shortest digits that read back (as JavaScript's),
 *  positional from 1e-4 up to 1e16, else d.ddde+XX. */
export function pyFloatRepr(x) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa, exp] = x.toExponential().split("e");
  const exponent = Number(exp);
  const sign = mantissa.startsWith("-") ? "-" : "";
  const digits = mantissa.replace(/^-/, "").replace(".", "");
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
    const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
    const fraction = digits.slice(exponent + 1);
    return `${sign}${whole}.${fraction || "0"}`;
  }
  const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${head}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
}

/** Python's repr() of a str. */
function pyStringRepr(s) {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = "";
  for (const ch of s) {
    const code = ch.codePointAt(0);
    if (ch === "\\") out += "\\\\";
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return quote + out + quote;
}

/** Python's repr() of a JSON value as json.loads gives it. */
export function pyRepr(v) {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "string") return pyStringRepr(v);
  if (isInt(v)) return v.text === "-0" ? "0" : v.text;
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  return `{${[...v].map(([k, x]) => `${pyStringRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
}

/** Python's str() of a JSON value in an f-string. */
const pyStr = (v) => (typeof v === "string" ? v : pyRepr(v));

/** Python's `value == dim` for a JSON value and an int. */
function pyEqualsInt(v, dim) {
  if (typeof v === "boolean") return (v ? 1 : 0) === dim;
  if (isNumber(v)) return num(v) === dim;
  return false;
}

/** pathlib's Path(p).name for '/'-separated paths. */
function pathName(p) {
  const parts = p.split("/").filter((part) => part !== "" && part !== ".");
  return parts.length ? parts[parts.length - 1] : "";
}

const a = (word) => `${"aeiou".includes(word[0]) ? "an" : "a"} ${word}`;
const listRepr = (shape) => `[${shape.join(", ")}]`;
// Python's dict.get(key, default): a present null stays null.
const getOr = (map, key, fallback) => (map.has(key) ? map.get(key) : fallback);

// ------------------------------------------------------------------------ validation

// model_card._TOP and _SOURCE: [key, type, required].
const TOP = [["modality", "string", true], ["kind", "string", true], ["model_file", "string", true],
  ["labels_file", "string", true], ["class_names", "list", true], ["input", "object", true],
  ["output", "object", true], ["preprocessing", "object", true], ["source", "object", true],
  ["quantization", "string", false], ["weight_scales", "string", false],
  ["file_size_bytes", "int", false], ["parameters", "int", false], ["ops", "list", false],
  ["representative_samples", "int", false], ["verification", "object", false]];
const SOURCE = [["run", "string", true], ["checkpoint_sha256", "string", true], ["epoch", "int", true],
  ["valid_weighted_f1", "number", false], ["dataset", "string", false], ["encoder", "string", false],
  ["versions", "object", false]];

function checkFields(mapping, fields, prefix, bad) {
  for (const [key, type, required] of fields) {
    const value = mapping.get(key);
    if ((value === null || value === undefined) && !required) continue;
    if (!mapping.has(key)) throw bad(`no '${prefix}${key}' entry`);
    if (!isA(value, type)) throw bad(`'${prefix}${key}' must be ${TYPE_WORDS[type]}, not ${typeName(value)}`);
  }
}

/** model_card._check_tensor: the tensor's shape as numbers, after the checks. */
function checkTensor(tensor, name, bad) {
  const shape = tensor.get("shape");
  if (!(Array.isArray(shape) && shape.length && shape.every((d) => isInt(d) && num(d) > 0))) {
    throw bad(`${name}.shape must be a list of positive integers; got ${pyRepr(shape)}`);
  }
  const dtype = tensor.get("dtype");
  if (!TENSOR_DTYPES.includes(dtype)) {
    throw bad(`${name}.dtype ${pyRepr(dtype)} is not one of ${TENSOR_DTYPES.join(", ")}`);
  }
  const q = tensor.get("quantization");
  if (dtype !== "float32" && !(isObject(q) && isNumber(q.get("scale")) && num(q.get("scale")) > 0
      && isInt(q.get("zero_point")))) {
    throw bad(`${name}.quantization must be {scale > 0, zero_point} for a ${dtype} tensor`);
  }
  return shape.map(num);
}

function checkPreprocessing(pre, kind, shape, bad) {
  const encoding = pre.get("encoding");
  if (encoding === null || encoding === undefined) throw bad("no 'preprocessing.encoding' entry");
  if (typeof encoding !== "string" || !ENCODINGS.has(encoding)) {
    throw bad(`preprocessing.encoding ${pyRepr(encoding)} is not one of ${[...ENCODINGS.keys()].join(", ")}`);
  }
  const [kinds, channels] = ENCODINGS.get(encoding);
  if (!kinds.includes(kind)) {
    throw bad(`encoding ${pyRepr(encoding)} is for ${kinds.join(" or ")} models, not ${a(kind)} model`);
  }
  if (channels !== null && kind === "image" && shape[3] !== channels) {
    throw bad(`encoding ${pyRepr(encoding)} needs a ${channels}-channel input; `
      + `the input shape is ${listRepr(shape)}`);
  }
  if (pre.has("raw") && typeof pre.get("raw") !== "string") {
    throw bad("preprocessing.raw (a description) must be a string");
  }
  if (kind === "spectrogram") {
    const spec = pre.get("spectrogram");
    if (!(isObject(spec) && isInt(spec.get("expected_rate")) && num(spec.get("expected_rate")) > 0)) {
      throw bad("preprocessing.spectrogram must be an object with expected_rate > 0");
    }
    if (!(isNumber(pre.get("mean")) && isNumber(pre.get("std")) && num(pre.get("std")) > 0)) {
      throw bad("preprocessing.mean and preprocessing.std (> 0) must be numbers");
    }
    return;
  }
  for (const key of ["scale", "offset"]) { // one number, or one per channel (per feature)
    const value = pre.get(key);
    if (Array.isArray(value)) {
      if (value.length !== shape[shape.length - 1] || !value.every(isNumber)) {
        throw bad(`preprocessing.${key} must be a number or ${shape[shape.length - 1]} numbers (one per `
          + `channel); got ${pyRepr(value)}`);
      }
    } else if (pre.has(key) && !isNumber(value)) {
      throw bad(`preprocessing.${key} must be a number, not ${typeName(value)}`);
    }
  }
  const resize = pre.get("resize");
  if (resize !== null && resize !== undefined && !(isObject(resize)
      && INTERPOLATIONS.includes(getOr(resize, "interpolation", "bilinear"))
      && typeof getOr(resize, "crop_to_aspect", true) === "boolean")) {
    throw bad(`preprocessing.resize must be {interpolation: ${INTERPOLATIONS.join(" or ")}, `
      + `crop_to_aspect: true or false}; got ${pyRepr(resize)}`);
  }
  const decode = pre.get("depth_decode");
  if (decode !== null && decode !== undefined) {
    const bits = isObject(decode) ? getOr(decode, "rotate_right_bits", new PyInt("0")) : null;
    const perUnit = isObject(decode) ? getOr(decode, "mm_per_unit", new PyFloat(1.0)) : null;
    if (!(encoding === DEPTH && isObject(decode) && isInt(bits) && num(bits) >= 0 && num(bits) < 16
        && isNumber(perUnit) && num(perUnit) > 0)) {
      throw bad("preprocessing.depth_decode must be {rotate_right_bits: 0..15, mm_per_unit > 0} "
        + `on a depth_mm_uint16 model; got ${pyRepr(decode)}`);
    }
  }
  const clip = pre.get("clip");
  if (clip !== null && clip !== undefined && !(Array.isArray(clip) && clip.length === 2
      && clip.every(isNumber) && num(clip[0]) <= num(clip[1]))) {
    throw bad(`preprocessing.clip must be [low, high] with low <= high; got ${pyRepr(clip)}`);
  }
  if (kind === "image") {
    for (const [key, dim] of [["height", shape[1]], ["width", shape[2]]]) {
      if (pre.has(key) && !pyEqualsInt(pre.get(key), dim)) {
        throw bad(`preprocessing.${key} = ${pyStr(pre.get(key))} but the input shape is ${listRepr(shape)}`);
      }
    }
  }
}

/** model_card.validate_card on a parsed card (a Map): throws ModelCardError, else returns. */
function validate(card, where) {
  const bad = (what) => new ModelCardError(`${where}: invalid model card: ${what}.`);
  if (!isObject(card)) throw bad(`expected a JSON object, not ${typeName(card)}`);
  const fmt = card.get("format");
  if (OLD_FORMATS.includes(fmt)) {
    throw new ModelCardError(`${where}: ${fmt} is an old model card without an input encoding; `
      + `${REEXPORT} to get a ${FORMAT} card.`);
  }
  if (fmt !== FORMAT) {
    const what = fmt === undefined || fmt === null ? "no 'format' entry" : `unknown format ${pyRepr(fmt)}`;
    throw new ModelCardError(`${where}: ${what}; this reader understands ${FORMAT} cards (${REEXPORT}).`);
  }
  checkFields(card, TOP, "", bad);
  const source = card.get("source");
  checkFields(source, SOURCE, "source.", bad);
  const run = source.get("run");
  if (!run || pathName(run) !== run) throw bad("source.run must be the run directory's name, not a path");
  if (!/^[0-9a-f]{64}$/.test(source.get("checkpoint_sha256"))) {
    throw bad("source.checkpoint_sha256 must be 64 lowercase hex digits");
  }
  const kind = card.get("kind");
  if (!KINDS.includes(kind)) throw bad(`kind ${pyRepr(kind)} is not one of ${KINDS.join(", ")}`);
  const modelFile = card.get("model_file");
  if (pathName(modelFile) !== modelFile || !modelFile) {
    throw bad(`model_file ${pyRepr(modelFile)} must be a file name in the export folder`);
  }
  const names = card.get("class_names");
  if (!names.length || !names.every((n) => typeof n === "string")) {
    throw bad("class_names must be a non-empty list of strings");
  }
  const shape = checkTensor(card.get("input"), "input", bad);
  const rank = kind === "vector" ? 2 : 4;
  if (shape.length !== rank || shape[0] !== 1) {
    const layout = rank === 2 ? "[1, F]" : "[1, H, W, C]";
    throw bad(`input.shape must be ${layout} (batch 1) for ${a(kind)} model; got ${listRepr(shape)}`);
  }
  const outShape = checkTensor(card.get("output"), "output", bad);
  if (outShape.length !== 2 || outShape[0] !== 1 || outShape[1] !== names.length) {
    throw bad(`output.shape must be [1, ${names.length}] (batch 1, one probability per class name); `
      + `got ${listRepr(outShape)}`);
  }
  checkPreprocessing(card.get("preprocessing"), kind, shape, bad);
}

// ------------------------------------------------------------------------ the card's fields

/** A JSON value (PyInt/PyFloat, Maps) as plain JavaScript (numbers, objects). */
export function plain(v) {
  if (v instanceof PyInt || v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
  return v;
}

function tensorFields(tensor) {
  const dtype = tensor.get("dtype");
  const q = tensor.get("quantization");
  return {
    shape: tensor.get("shape").map(num),
    dtype,
    // float32, as runtime.py takes them (np.float32(scale)); an int zero point.
    scale: dtype === "float32" ? null : Math.fround(num(q.get("scale"))),
    zeroPoint: dtype === "float32" ? null : num(q.get("zero_point")),
  };
}

/** One float32 value per channel: a number stands for every channel. */
function perChannel(pre, key, fallback, channels) {
  const value = pre.get(key);
  if (Array.isArray(value)) return Float32Array.from(value, num);
  return new Float32Array(channels).fill(isNumber(value) ? num(value) : fallback);
}

/**
 * The validated card of a model_card.json text, as the fields the page uses (and `json`,
 * the whole card as plain JavaScript). `where` names the file in messages.
 */
export function parseCard(text, where = CARD_FILE) {
  let tree;
  try {
    tree = parsePyJson(text);
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    throw new ModelCardError(`${where}: the model card is not valid JSON (${err.message} at line `
      + `${err.line}).`);
  }
  validate(tree, where);
  const pre = tree.get("preprocessing");
  const kind = tree.get("kind");
  const input = tensorFields(tree.get("input"));
  const channels = input.shape[input.shape.length - 1];
  const encoding = pre.get("encoding");
  const scaled = kind !== "spectrogram"; // spectrograms use mean and std instead
  const resize = isObject(pre.get("resize")) ? pre.get("resize") : new Map();
  const clip = pre.get("clip");
  return {
    json: plain(tree),
    modality: tree.get("modality"),
    kind,
    modelFile: tree.get("model_file"),
    labelsFile: tree.get("labels_file"),
    classNames: [...tree.get("class_names")],
    quantization: tree.get("quantization") ?? null,
    input,
    output: tensorFields(tree.get("output")),
    encoding,
    scale: scaled ? perChannel(pre, "scale", 1.0, channels) : null,
    offset: scaled ? perChannel(pre, "offset", 0.0, channels) : null,
    clip: scaled && Array.isArray(clip) ? Float32Array.from(clip, num) : null,
    // preprocessing.py's defaults: nearest for depth (missing depth never blends in).
    interpolation: resize.has("interpolation") ? resize.get("interpolation")
      : encoding === DEPTH ? "nearest" : "bilinear",
    cropToAspect: resize.has("crop_to_aspect") ? resize.get("crop_to_aspect") : true,
    depthDecode: isObject(pre.get("depth_decode")) ? plain(pre.get("depth_decode")) : null,
    mean: kind === "spectrogram" ? Math.fround(num(pre.get("mean"))) : null,
    std: kind === "spectrogram" ? Math.fround(num(pre.get("std"))) : null,
    spectrogram: kind === "spectrogram" ? plain(pre.get("spectrogram")) : null,
  };
}

/**
 * model_card.read_export's labels: the non-empty stripped lines of the labels file (its
 * text), or the card's class names where there is none (null); their number must be the
 * output size. `where` names the labels file in the message.
 */
export function readLabels(card, labelsText, where = card.labelsFile) {
  const labels = labelsText === null || labelsText === undefined ? [...card.classNames]
    : labelsText.split(/\r\n|\r|\n|\v|\f|\x1c|\x1d|\x1e|\x85|\u2028|\u2029/)
      .map(pyStrip).filter((line) => line);
  const classes = card.output.shape[card.output.shape.length - 1];
  if (labels.length !== classes) {
    throw new ModelCardError(`${where} has ${labels.length} labels but the card's output has ${classes} `
      + "classes; the folder mixes files of different exports.");
  }
  return labels;
}

// Python's whitespace (str.isspace), which is not JavaScript's \s: it has \x1c-\x1f and
// \x85, and not the byte order mark \ufeff.
const PY_SPACE = "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a"
  + "\\u2028\\u2029\\u202f\\u205f\\u3000]";
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, "g");

/** Python's str.strip(). */
function pyStrip(s) {
  return s.replace(PY_STRIP, "");
}

/**
 * What this page cannot do with a valid card, in one sentence (null: it can run it). The
 * card's own checks (parseCard) come first, so this is about the page, not the card.
 */
export function webRefusal(card) {
  if (!WEB_ENCODINGS.includes(card.encoding)) {
    return `${CARD_FILE}: this page cannot read the samples of encoding '${card.encoding}' `
      + "(multi-band TIFF: a browser has no TIFF decoder); classify them with "
      + "`discomkd-edge classify` instead.";
  }
  if (card.kind === "spectrogram") {
    // spectrogram.py would fail on the first clip (an unknown keyword, an unknown
    // window or mel scale); the page says so when the card is opened.
    const params = card.spectrogram;
    const unknown = Object.keys(params).filter((key) => !(key in SPECTROGRAM_PARAMS));
    const what = unknown.length ? `unknown parameter${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}`
      : "window" in params && !WINDOWS.includes(params.window) ? `window '${params.window}'`
        : "mel_scale" in params && params.mel_scale !== "htk" ? `mel_scale '${params.mel_scale}'` : null;
    if (what) {
      return `${CARD_FILE}: preprocessing.spectrogram has ${what}, which this page's log-mel `
        + "spectrogram (edge_demo/spectrogram.py's recipe) does not implement; re-export the model "
        + "with this version of discomkd-keras.";
    }
  }
  return null;
}
