// edge_demo/spectrogram.py for the web page: WAV reading and the log-mel spectrogram of
// a mono clip, with the same recipe and defaults (SPECTROGRAM_PARAMS).
//
// Not bit-exact, and cannot be: NumPy computes the FFT in float32 (pocketfft, NumPy 2) and
// sums the mel filters in its own order; this file computes the FFT, the power and the
// mel sums in float64 from the same float32 frames, then rounds the log-mel values to
// float32. The difference is NumPy's float32 rounding; tests/test_web_contract.py states
// and checks the tolerance (SPECTROGRAM_TOLERANCE there).

import { roundHalfEven } from "./image_ops.js";

export const SPECTROGRAM_PARAMS = {
  expected_rate: 8000,
  clip_seconds: 1.0,
  frame_length: 256,
  hop_length: 128,
  n_fft: 256,
  window: "hann_periodic",
  power: 2.0,
  n_mels: 40,
  fmin: 0.0,
  fmax: 4000.0,
  mel_scale: "htk",
  log_offset: 1e-6,
};
export const WINDOWS = ["hann_periodic", "hann_symmetric"];

export class SpectrogramError extends Error {}

/**
 * spectrogram.read_wav: {samples (Float32Array in [-1, 1]), rate} of an 8- or 16-bit mono
 * PCM WAV; SpectrogramError naming the file otherwise.
 */
export function readWav(bytes, name) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = (at, n) => String.fromCharCode(...bytes.subarray(at, at + n));
  const unreadable = (why) => new SpectrogramError(`${name}: not a readable PCM WAV file (${why}).`);
  if (bytes.length < 12 || text(0, 4) !== "RIFF") throw unreadable("file does not start with RIFF id");
  if (text(8, 4) !== "WAVE") throw unreadable("not a WAVE file");
  let format = null;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = text(at, 4);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === "fmt ") {
      if (size < 14 || body + 14 > bytes.length) throw unreadable("fmt chunk too short");
      const tag = view.getUint16(body, true);
      format = { tag, channels: view.getUint16(body + 2, true), rate: view.getUint32(body + 4, true),
        width: size >= 16 && body + 16 <= bytes.length ? (view.getUint16(body + 14, true) + 7) >> 3 : 0 };
      // WAVE_FORMAT_EXTENSIBLE names its real format in a GUID whose first two bytes are it.
      if (tag === 0xfffe && size >= 26 && body + 26 <= bytes.length) {
        format.tag = view.getUint16(body + 24, true);
      }
      if (format.tag !== 1) {
        throw new SpectrogramError(`${name}: compressed WAV (format ${tag}) is not supported; need PCM.`);
      }
    } else if (id === "data") {
      if (format === null) throw unreadable("data chunk before fmt chunk");
      const { channels, rate, width } = format;
      if (channels !== 1) throw new SpectrogramError(`${name}: expected a mono WAV; got ${channels} channels.`);
      if (width !== 1 && width !== 2) {
        throw new SpectrogramError(`${name}: expected 8- or 16-bit samples; got ${8 * width}-bit.`);
      }
      const promised = Math.floor(size / width);
      const available = Math.max(0, Math.min(size, bytes.length - body));
      if (available < promised * width) {
        throw new SpectrogramError(`${name}: truncated WAV: header promises ${promised} samples, `
          + `data holds ${Math.floor(available / width)}.`);
      }
      if (rate <= 0) throw new SpectrogramError(`${name}: invalid sample rate ${rate}.`);
      const samples = new Float32Array(promised);
      for (let i = 0; i < promised; i++) {
        samples[i] = width === 2 ? view.getInt16(body + 2 * i, true) / 32768
          : (bytes[body + i] - 128) / 128; // exact in float32 either way
      }
      return { samples, rate };
    }
    at = body + size + (size & 1); // chunks are padded to an even size
  }
  throw unreadable(format === null ? "fmt chunk and/or data chunk missing" : "data chunk missing");
}

export function clipLength(clipSeconds, expectedRate) {
  return roundHalfEven(clipSeconds * expectedRate);
}

/** spectrogram.num_frames. */
export function numFrames(clipSeconds = 1.0, expectedRate = 8000, frameLength = 256, hopLength = 128) {
  return 1 + Math.floor((clipLength(clipSeconds, expectedRate) - frameLength) / hopLength);
}

/** Pad with zeros at the end, or crop around the centre, to `length` samples. */
export function fixLength(samples, length) {
  if (samples.length >= length) {
    const start = Math.floor((samples.length - length) / 2);
    return samples.slice(start, start + length);
  }
  const out = new Float32Array(length);
  out.set(samples);
  return out;
}

const hzToMel = (f) => 2595.0 * Math.log10(1.0 + f / 700.0);
const melToHz = (m) => 700.0 * (10.0 ** (m / 2595.0) - 1.0);

/** float32 (n_mels x (n_fft/2 + 1)) triangular HTK-mel filters, peak height 1, evaluated
 *  at the exact bin frequencies. */
export function melFilterbank(sampleRate, nFft, nMels, fmin, fmax) {
  if (!(fmin >= 0 && fmin < fmax && fmax <= sampleRate / 2)) {
    throw new SpectrogramError(`need 0 <= fmin < fmax <= ${sampleRate / 2} Hz; `
      + `got fmin=${fmin}, fmax=${fmax}.`);
  }
  // np.linspace(low, high, n_mels + 2): i * step + low, the last one high itself.
  const lowMel = hzToMel(fmin);
  const highMel = hzToMel(fmax);
  const step = (highMel - lowMel) / (nMels + 1);
  const mels = Array.from({ length: nMels + 2 }, (_, i) => i * step + lowMel);
  mels[nMels + 1] = highMel;
  const edges = mels.map(melToHz);
  const bins = nFft / 2 + 1;
  const bank = [];
  for (let m = 0; m < nMels; m++) {
    const [lo, mid, hi] = [edges[m], edges[m + 1], edges[m + 2]];
    const row = new Float32Array(bins);
    for (let k = 0; k < bins; k++) {
      const f = k * (sampleRate / nFft);
      row[k] = Math.max(0.0, Math.min((f - lo) / (mid - lo), (hi - f) / (hi - mid)));
    }
    bank.push(row);
  }
  return bank;
}

function window(kind, n) {
  if (kind === "hann_periodic") {
    return Float32Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos(2.0 * Math.PI * i / n));
  }
  if (kind === "hann_symmetric") { // np.hanning
    if (n === 1) return Float32Array.of(1.0);
    return Float32Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos(2.0 * Math.PI * i / (n - 1)));
  }
  throw new SpectrogramError(`window must be one of ${WINDOWS.join(", ")}; got '${kind}'.`);
}

/** |DFT|^2-ready spectrum of real `frame` zero-padded to n points: [re, im] of bins 0..n/2,
 *  in float64 (radix-2 FFT for powers of two, a direct DFT otherwise). */
function rfft(frame, n) {
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  re.set(frame.subarray(0, Math.min(frame.length, n)));
  const bins = Math.floor(n / 2) + 1;
  if ((n & (n - 1)) !== 0) {
    const outRe = new Float64Array(bins);
    const outIm = new Float64Array(bins);
    for (let k = 0; k < bins; k++) {
      for (let t = 0; t < n; t++) {
        const angle = -2 * Math.PI * ((k * t) % n) / n;
        outRe[k] += re[t] * Math.cos(angle);
        outIm[k] += re[t] * Math.sin(angle);
      }
    }
    return [outRe, outIm];
  }
  for (let i = 1, j = 0; i < n; i++) { // bit-reversal permutation
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { [re[i], re[j]] = [re[j], re[i]]; }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >> 1;
    for (let k = 0; k < half; k++) {
      const angle = -2 * Math.PI * k / size;
      const wr = Math.cos(angle);
      const wi = Math.sin(angle);
      for (let start = 0; start < n; start += size) {
        const a = start + k;
        const b = a + half;
        const tr = re[b] * wr - im[b] * wi;
        const ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
      }
    }
  }
  return [re.subarray(0, bins), im.subarray(0, bins)];
}

/**
 * spectrogram.log_mel_spectrogram of one mono clip: Float32Array (n_mels x n_frames),
 * row-major, with the card's parameters (`params`: SPECTROGRAM_PARAMS' keys). Unknown
 * parameters and values this port does not implement are SpectrogramErrors.
 */
export function logMelSpectrogram(samples, sampleRate, params = {}) {
  const unknown = Object.keys(params).filter((k) => !(k in SPECTROGRAM_PARAMS) && k !== "chunk");
  if (unknown.length) {
    throw new SpectrogramError(`unknown spectrogram parameter${unknown.length > 1 ? "s" : ""} `
      + `${unknown.join(", ")}.`);
  }
  const p = { ...SPECTROGRAM_PARAMS, fmax: null, ...params };
  const { expected_rate: rate, clip_seconds: clipSeconds, frame_length: frameLength,
    hop_length: hop, n_fft: nFft, power, n_mels: nMels, fmin, mel_scale: melScale,
    log_offset: logOffset } = p;
  const fmax = p.fmax ?? rate / 2;
  if (sampleRate !== rate) {
    throw new SpectrogramError(`sample rate ${sampleRate} Hz differs from the expected ${rate} Hz; `
      + `resample the audio to ${rate} Hz first.`);
  }
  if (melScale !== "htk") throw new SpectrogramError(`only mel_scale='htk' is supported; got '${melScale}'.`);
  if (!(hop > 0 && frameLength > 0 && frameLength <= nFft)) {
    throw new SpectrogramError(`need hop_length > 0 and 0 < frame_length <= n_fft; got hop_length=${hop}, `
      + `frame_length=${frameLength}, n_fft=${nFft}.`);
  }
  const length = clipLength(clipSeconds, rate);
  if (length < frameLength) {
    throw new SpectrogramError(`clip of ${length} samples is shorter than one frame (${frameLength}).`);
  }
  const x = fixLength(Float32Array.from(samples), length);
  const bank = melFilterbank(rate, nFft, nMels, fmin, fmax);
  const win = window(p.window, frameLength);
  const frames = numFrames(clipSeconds, rate, frameLength, hop);
  const out = new Float32Array(nMels * frames);
  const frame = new Float32Array(frameLength); // float32 products, as NumPy's frames * win
  for (let f = 0; f < frames; f++) {
    for (let i = 0; i < frameLength; i++) frame[i] = x[f * hop + i] * win[i];
    const [re, im] = rfft(frame, nFft);
    const spectrum = re.map((r, k) => Math.hypot(r, im[k]) ** power);
    for (let m = 0; m < nMels; m++) {
      let energy = 0;
      for (let k = 0; k < spectrum.length; k++) energy += spectrum[k] * bank[m][k];
      out[m * frames + f] = Math.log(energy + logOffset);
    }
  }
  return { values: out, mels: nMels, frames };
}
