// edge_demo/preprocessing.py for the web page: a file (or a camera frame) -> the raw sample
// at the model's size (decoded, depth decoded to millimetres, resized as the card says)
// -> the float32 model input (x = raw * scale + offset, clipped; for audio the log-mel
// spectrogram standardised by the card's mean and std). Messages are Python's, with the
// file's name where Python has its path.

import { describeMode, fit, image, luma } from "./image_ops.js";
import { DecodeError, fromRgba, readImage, toGray, toRgb } from "./decode.js";
import { DEPTH } from "./model_card.js";
import { NpyError, readNpy } from "./npy.js";
import { logMelSpectrogram, readWav, SpectrogramError } from "./spectrogram.js";

export const IMAGE_SUFFIXES = [".png", ".jpg", ".jpeg"];
export const EIGHT_BIT = ["rgb8", "gray8"];
export const AUDIO = "wav_pcm16";
export const ARRAY = "array_npy";
// Pillow modes converted before 8-bit images are read: alpha dropped, palette expanded.
const TO_RGB = ["RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"];
const TO_GRAY = ["LA", "1"];
const DEPTH_MODES = ["I;16", "I;16B", "I;16L", "I"];

export class InputError extends Error {}

/** A raw sample: {values (a typed array, HWC or the spectrogram row-major), shape}. */
function raw(values, shape) {
  return { values, shape };
}

const sameShape = (a, b) => a.length === b.length && a.every((d, i) => d === b[i]);
const shapeRepr = (shape) => `(${shape.join(", ")}${shape.length === 1 ? "," : ""})`;

function suffixOf(name) {
  const base = name.split("/").pop();
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot).toLowerCase() : "";
}

/**
 * preprocessing.scale_raw: float32 model input of a raw sample. Each product and sum is
 * rounded to float32 as NumPy's float32 arithmetic does (Math.fround of the exact double
 * result is the correctly rounded float32 one).
 */
export function scaleRaw(sample, card) {
  const { values } = sample;
  const x = new Float32Array(values.length);
  if (card.encoding === AUDIO) {
    for (let i = 0; i < x.length; i++) x[i] = Math.fround(values[i] - card.mean) / card.std;
    return x;
  }
  const channels = card.scale.length;
  for (let i = 0; i < x.length; i++) {
    const c = i % channels;
    x[i] = Math.fround(Math.fround(values[i]) * card.scale[c]) + card.offset[c];
  }
  if (card.clip) {
    const [low, high] = card.clip;
    for (let i = 0; i < x.length; i++) x[i] = Math.min(high, Math.max(low, x[i]));
  }
  return x;
}

/**
 * preprocessing.decode_depth: stored 16-bit depth -> uint16 millimetres: a right rotation
 * by rotate_right_bits, then mm_per_unit, rounded half up and clamped to 0..65535.
 */
export function decodeDepth(values, decode) {
  const bits = (decode?.rotate_right_bits ?? 0) % 16;
  const perUnit = decode?.mm_per_unit ?? 1.0;
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    let v = values[i] & 0xffff;
    if (bits) v = ((v >>> bits) | (v << (16 - bits))) & 0xffff;
    if (perUnit !== 1.0) v = Math.min(65535, Math.max(0, Math.floor(v * perUnit + 0.5)));
    out[i] = v;
  }
  return out;
}

export class Preprocessor {
  /** card: parseCard's fields; warn(message): notes such as "resized ...". */
  constructor(card, warn = () => {}) {
    this.card = card;
    this.kind = card.kind;
    this.encoding = card.encoding;
    this.shape = card.input.shape.slice(1);
    this.warn = warn;
    // Released-layout images are stored channels first; the model takes HWC.
    this.chw = this.kind === "image" && this.encoding === "float_raw";
    if (this.kind === "image") [this.height, this.width, this.channels] = this.shape;
    this.nearest = card.interpolation === "nearest";
    this.crop = card.cropToAspect;
  }

  /** True for 8-bit RGB/grayscale models: the ones a camera frame can feed. */
  get takesPixels() {
    return EIGHT_BIT.includes(this.encoding);
  }

  suffixes() {
    if (this.encoding === AUDIO) return [".wav", ".npy"];
    if (this.takesPixels) return [...IMAGE_SUFFIXES, ".npy"];
    if (this.encoding === DEPTH) return [".png", ".npy"];
    return [".npy"];
  }

  describe() {
    if (this.encoding === AUDIO) return `audio model (${this.card.spectrogram.expected_rate} Hz mono WAV)`;
    if (this.encoding === DEPTH) return "depth model (16-bit PNG in millimetres)";
    if (this.takesPixels) {
      return `${this.encoding === "rgb8" ? "RGB" : "grayscale"} image model (${this.height}x${this.width})`;
    }
    if (this.encoding === ARRAY) return `${this.kind} model (.npy samples of shape ${shapeRepr(this.shape)})`;
    return `${this.kind} model (already-normalised .npy arrays)`;
  }

  scale(sample) {
    return scaleRaw(sample, this.card);
  }

  /** [{name, x}] float32 model inputs of one file (several for a batch .npy). */
  async load(name, bytes, decodeJpeg = null) {
    return (await this.rawSamples(name, bytes, decodeJpeg)).map(([n, r]) => ({ name: n, x: this.scale(r) }));
  }

  /** [[name, raw sample at the model's size]] of one file's bytes. */
  async rawSamples(name, bytes, decodeJpeg = null) {
    const suffix = suffixOf(name);
    if (!this.suffixes().includes(suffix)) {
      if ((suffix === ".jpg" || suffix === ".jpeg") && this.encoding === DEPTH) {
        throw new InputError(`${name}: JPEG cannot hold 16-bit depth; this depth model takes 16-bit `
          + "PNGs in millimetres or .npy arrays.");
      }
      throw new InputError(`${name}: unsupported file type '${suffix || "(none)"}' for this `
        + `${this.describe()}; accepted: ${this.suffixes().join(", ")}.`);
    }
    try {
      if (suffix === ".npy") return this.fromNpy(readNpy(bytes, name), name);
      if (suffix === ".wav") return [[name, this.fromWav(bytes, name)]];
      const decoded = await readImage(bytes, name, decodeJpeg);
      return [[name, this.decodedToRaw(decoded, name)]];
    } catch (err) {
      if (err instanceof NpyError || err instanceof DecodeError || err instanceof SpectrogramError) {
        throw new InputError(err.message);
      }
      throw err;
    }
  }

  fromWav(bytes, name) {
    const { samples, rate } = readWav(bytes, name);
    const expected = this.card.spectrogram.expected_rate;
    if (rate !== expected) {
      throw new InputError(`${name}: sample rate ${rate} Hz, but this model expects ${expected} Hz `
        + `audio; resample it first (e.g. sox in.wav -r ${expected} out.wav).`);
    }
    return this.audioInput(samples, rate, name);
  }

  /** The raw log-mel spectrogram (mels, frames) of a clip (`scale` standardises it). */
  audioInput(samples, rate, name) {
    let spec;
    try {
      spec = logMelSpectrogram(samples, rate, this.card.spectrogram);
    } catch (err) {
      if (err instanceof SpectrogramError) throw new InputError(`${name}: ${err.message}`);
      throw err;
    }
    const shape = [spec.mels, spec.frames, 1];
    if (!sameShape(shape, this.shape)) {
      throw new InputError(`${name}: the spectrogram has shape ${shapeRepr(shape)} but the model `
        + `takes ${shapeRepr(this.shape)}; card and model disagree.`);
    }
    return raw(spec.values, shape);
  }

  /** A decoded image file ({mode, pixels}) -> raw sample, after Pillow's conversions. */
  decodedToRaw(decoded, name) {
    let { mode, pixels } = decoded;
    if (this.takesPixels && TO_RGB.includes(mode)) {
      pixels = toRgb(decoded);
      mode = "RGB";
    } else if (this.takesPixels && TO_GRAY.includes(mode)) {
      pixels = toGray(decoded);
      mode = "L";
    }
    return this.pixelsToRaw(pixels, mode, name);
  }

  /** Browser RGBA pixels of a camera frame -> float32 model input. */
  fromFrame(rgba, name, crop = null) {
    const { pixels } = fromRgba(rgba, "RGB");
    return this.scale(this.pixelsToRaw(pixels, "RGB", name, crop));
  }

  /**
   * preprocessing.pixels_to_raw: decoded pixels -> the raw sample at the model's size
   * (H, W, C): uint8 for 8-bit images, uint16 millimetres for depth. `crop` null: the
   * card's size policy.
   */
  pixelsToRaw(pixels, mode, name, crop = null) {
    const what = describeMode(mode);
    if (this.encoding === DEPTH) {
      if (!DEPTH_MODES.includes(mode) || pixels.channels !== 1) {
        throw new InputError(`${name}: ${what} image, but this depth model takes a 1-channel 16-bit `
          + "PNG in millimetres (uint16, 0 = missing).");
      }
      if (this.card.depthDecode) pixels = image(decodeDepth(pixels.data, this.card.depthDecode),
        pixels.height, pixels.width, 1);
    } else if (this.takesPixels) {
      const rgb = this.encoding === "rgb8";
      if (!(pixels.data instanceof Uint8Array) || !["L", "RGB"].includes(mode)) {
        throw new InputError(`${name}: ${what} image, but this model takes 8-bit `
          + `${rgb ? "RGB" : "grayscale"} images.`);
      }
      if (rgb && pixels.channels === 1) {
        throw new InputError(`${name}: 1-channel ${what} image, but this model takes 3-channel `
          + "8-bit RGB images.");
      }
      if (!rgb && pixels.channels === 3) {
        this.warn(`${name}: converted RGB to grayscale (ITU-R 601 luma), as the model takes `
          + "1-channel images.");
        pixels = luma(pixels);
      }
    } else {
      throw new InputError(`${name}: this ${this.describe()} takes .npy arrays, not images.`);
    }
    const { pixels: sized, note } = fit(pixels, this.height, this.width,
      { nearest: this.nearest, cropToAspect: crop === null ? this.crop : crop });
    if (note) this.warn(`${name}: ${note}`);
    return raw(sized.data, [this.height, this.width, this.channels]);
  }

  /** The raw shapes one .npy sample may have (a leading batch axis adds rows). */
  sampleShapes() {
    if (this.kind === "vector") return [this.shape];
    const [h, w, c] = this.shape;
    const shapes = [this.chw ? [c, h, w] : [h, w, c]];
    if (c === 1) shapes.push([h, w]);
    return shapes;
  }

  fromNpy(arr, name) {
    if (this.encoding === AUDIO) return this.waveformsFromNpy(arr, name);
    const shapes = this.sampleShapes();
    let rows;
    let names;
    let rowShape;
    if (shapes.some((s) => sameShape(s, arr.shape))) {
      rows = 1;
      names = [name];
      rowShape = arr.shape;
    } else if (arr.shape.length >= 1 && shapes.some((s) => sameShape(s, arr.shape.slice(1)))) {
      rows = arr.shape[0];
      names = Array.from({ length: rows }, (_, i) => `${name}[${i}]`);
      rowShape = arr.shape.slice(1);
    } else {
      throw new InputError(`${name}: shape ${shapeRepr(arr.shape)} does not fit this ${this.describe()}: `
        + `expected ${shapes.map(shapeRepr).join(" or ")} (or a batch of them).`);
    }
    const { data } = arr;
    if (this.encoding === ARRAY) {
      if (arr.kind === "f" && data.some((v) => !Number.isFinite(v))) {
        throw new InputError(`${name}: contains NaN or inf.`);
      }
    } else if (this.encoding !== "float_raw") {
      const top = this.encoding === DEPTH ? 65535 : 255;
      if (arr.kind !== "i" && arr.kind !== "u") {
        throw new InputError(`${name}: expected raw integer values 0..${top} (encoding ${this.encoding}); `
          + `got ${arr.dtype}.`);
      }
      if (data.length) {
        let low = Infinity;
        let high = -Infinity;
        for (const v of data) { low = Math.min(low, v); high = Math.max(high, v); }
        if (low < 0 || high > top) {
          throw new InputError(`${name}: raw values must lie in 0..${top}; found ${low}..${high}.`);
        }
      }
    }
    const size = rowShape.reduce((n, d) => n * d, 1);
    const out = [];
    for (let r = 0; r < rows; r++) {
      let values = data.subarray(r * size, (r + 1) * size);
      if (this.chw) values = chwToHwc(values, this.shape);
      else values = values.slice();
      out.push([names[r], raw(values, this.shape)]);
    }
    return out;
  }

  waveformsFromNpy(arr, name) {
    const rate = this.card.spectrogram.expected_rate;
    if (arr.shape.length !== 1 && arr.shape.length !== 2) {
      throw new InputError(`${name}: expected a mono waveform (T,) or a batch (N, T) at ${rate} Hz; `
        + `got shape ${shapeRepr(arr.shape)}.`);
    }
    let wave;
    if (arr.dtype === "int16") wave = Float32Array.from(arr.data, (v) => v / 32768);
    else if (arr.kind === "f") wave = Float32Array.from(arr.data);
    else {
      throw new InputError(`${name}: waveform samples must be int16 PCM or float in [-1, 1]; `
        + `got ${arr.dtype}.`);
    }
    if (arr.shape.length === 1) return [[name, this.audioInput(wave, rate, name)]];
    const length = arr.shape[1];
    return Array.from({ length: arr.shape[0] }, (_, i) => [`${name}[${i}]`,
      this.audioInput(wave.subarray(i * length, (i + 1) * length), rate, `${name}[${i}]`)]);
  }
}

/** (C, H, W) values -> (H, W, C), for released-layout images. */
function chwToHwc(values, [h, w, c]) {
  const out = new values.constructor(values.length);
  for (let ch = 0; ch < c; ch++) {
    for (let p = 0; p < h * w; p++) out[p * c + ch] = values[ch * h * w + p];
  }
  return out;
}
