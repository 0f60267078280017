// Pixel operations of edge_demo/image_ops.py, for the web page: luma, centre crop, the
// two resizes and `fit`. Each repeats the Python arithmetic step for step (integer luma,
// half-pixel centres, the rounding), so that a file gives the Python side's pixels exactly
// (tests/test_web_contract.py compares them value for value).
//
// An image is {data, height, width, channels}: a typed array in HWC order (Uint8Array for
// 8-bit pixels, Uint16Array for depth, Float32Array/Float64Array for floats).

export function image(data, height, width, channels) {
  return { data, height, width, channels };
}

/** uint8 RGB -> uint8 gray: ITU-R 601 luma in integers, as Pillow's convert("L"). */
export function luma(rgb) {
  const { data, height, width } = rgb;
  const out = new Uint8Array(height * width);
  for (let p = 0; p < out.length; p++) {
    out[p] = (19595 * data[3 * p] + 38470 * data[3 * p + 1] + 7471 * data[3 * p + 2] + 32768) >>> 16;
  }
  return image(out, height, width, 1);
}

/** Python's round() and NumPy's rint of a float: halves to even (the one copy: contract.js
 *  and spectrogram.js import it). */
export function roundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** [top, left, h, w]: the largest centred window with the aspect ratio outW / outH. */
export function centreCropBox(height, width, outH, outW) {
  if (height * outW > width * outH) { // too tall
    const h = Math.max(1, roundHalfEven(width * outH / outW));
    return [Math.floor((height - h) / 2), 0, h, width];
  }
  const w = Math.max(1, roundHalfEven(height * outW / outH));
  return [0, Math.floor((width - w) / 2), height, w];
}

export function crop(img, top, left, h, w) {
  const { data, width, channels } = img;
  const out = new data.constructor(h * w * channels);
  for (let y = 0; y < h; y++) {
    const from = ((top + y) * width + left) * channels;
    out.set(data.subarray(from, from + w * channels), y * w * channels);
  }
  return image(out, h, w, channels);
}

/** Source index of each output: floor((i + 0.5) * nIn / nOut), clamped. */
function nearestIndex(nIn, nOut) {
  return Array.from({ length: nOut }, (_, i) => Math.min(Math.floor((i + 0.5) * nIn / nOut), nIn - 1));
}

/** Nearest neighbour: no new values, so missing depth (0) never blends into valid depth. */
export function resizeNearest(img, outH, outW) {
  const { data, width, channels } = img;
  const rows = nearestIndex(img.height, outH);
  const cols = nearestIndex(width, outW);
  const out = new data.constructor(outH * outW * channels);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      for (let c = 0; c < channels; c++) {
        out[(y * outW + x) * channels + c] = data[(rows[y] * width + cols[x]) * channels + c];
      }
    }
  }
  return image(out, outH, outW, channels);
}

// Bilinear resize in integer fixed point, image_ops.resize_bilinear's specification: every
// weight is an integer derived with integer arithmetic alone, and every sum of integer
// pixels is exact, so no port can round a tie differently from another. JavaScript Numbers
// are exact here: the largest intermediate, S * 2^(BITS+1) + R, stays below 2^53 for sides
// up to 16384 pixels, and Math.floor(a / b) of integers below 2^53 is the integer quotient.
export const BITS = 22;
const ONE = 2 ** BITS;
const HALF = 2 ** (BITS - 1);

/**
 * The weights of a pass from nIn to nOut pixels: for each output o, {first, weights} with
 * output o = sum_t weights[t] * pixel[first + t], the integer weights w[o][j] of
 * image_ops.resize_bilinear over the band of inputs where r[o][j] > 0, summing to ONE.
 */
export function bilinearWeights(nIn, nOut) {
  if (nIn < 1 || nOut < 1) {
    throw new RangeError(`cannot resize ${nIn} pixels to ${nOut}: sizes must be positive`);
  }
  const m = Math.max(nIn, nOut);
  const rows = [];
  for (let o = 0; o < nOut; o++) {
    const centre2 = (2 * o + 1) * nIn;
    const first = Math.max(0, Math.floor((centre2 - 2 * m + nOut) / (2 * nOut)));
    const last = Math.min(nIn - 1, Math.floor((centre2 + 2 * m - nOut - 1) / (2 * nOut)));
    const r = [];
    for (let j = first; j <= last; j++) r.push(Math.max(0, 2 * m - Math.abs((2 * j + 1) * nOut - centre2)));
    const total = r.reduce((sum, v) => sum + v, 0);
    // C[k] = floor((S[k] * 2^(BITS+1) + R) / (2R)), S[k] the sum of r before k; w = C[k+1] - C[k].
    const weights = [];
    let cumulative = 0;
    let previous = 0;
    for (const v of r) {
      cumulative += v;
      const c = Math.floor((cumulative * 2 * ONE + total) / (2 * total));
      weights.push(c - previous);
      previous = c;
    }
    rows.push({ first, weights });
  }
  return rows;
}

const INTEGER_RANGE = new Map([[Uint8Array, [0, 255]], [Uint16Array, [0, 65535]],
  [Int8Array, [-128, 127]], [Int16Array, [-32768, 32767]], [Uint32Array, [0, 4294967295]],
  [Int32Array, [-2147483648, 2147483647]]]);

/**
 * One pass along the first axis of `values` ((n, inner) row-major): integer pixels as
 * exact integer sums, rounded half up ((acc + 2^21) / 2^22, floored) and clamped to
 * `range`; float pixels (range null) as float64 sums of weight / 2^BITS * pixel in
 * increasing input order, starting from 0.0, kept in float64.
 */
function pass(values, n, inner, nOut, range) {
  const rows = bilinearWeights(n, nOut);
  const out = new Float64Array(nOut * inner);
  for (let o = 0; o < nOut; o++) {
    const { first, weights } = rows[o];
    for (let k = 0; k < inner; k++) {
      let acc = 0;
      for (let t = 0; t < weights.length; t++) {
        const weight = range ? weights[t] : weights[t] / ONE;
        acc += weight * values[(first + t) * inner + k];
      }
      out[o * inner + k] = range ? Math.min(range[1], Math.max(range[0], Math.floor((acc + HALF) / ONE))) : acc;
    }
  }
  return out;
}

/** (h, w, c) row-major -> (w, h, c). */
function transpose(values, h, w, c) {
  const out = new Float64Array(values.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) out[(x * h + y) * c + ch] = values[(y * w + x) * c + ch];
    }
  }
  return out;
}

/**
 * image_ops.resize_bilinear: separable triangle filter (half-pixel centres, widened by the
 * scale factor when shrinking), rows first, then columns, in integer fixed point; each
 * pass's output rounded and clamped to the pixels' type. Float pixels: the same weights as
 * float64 values, cast back to the input's type at the end.
 */
export function resizeBilinear(img, outH, outW) {
  const { data, height, width, channels } = img;
  const range = INTEGER_RANGE.get(data.constructor) ?? null;
  const rows = pass(data, height, width * channels, outH, range);                 // (outH, W, C)
  const columns = pass(transpose(rows, outH, width, channels), width, outH * channels, outW, range);
  const out = new data.constructor(outH * outW * channels);
  out.set(transpose(columns, outW, outH, channels));                              // (outH, outW, C)
  return image(out, outH, outW, channels);
}

/**
 * image_ops.fit: {pixels of size outH x outW, a note saying what was done or null}.
 * crop: centre-crop to the target aspect ratio first; nearest: nearest neighbour.
 */
export function fit(raw, outH, outW, { nearest = false, cropToAspect = true } = {}) {
  const { height: h, width: w } = raw;
  if (h === outH && w === outW) return { pixels: raw, note: null };
  const [top, left, ch, cw] = cropToAspect ? centreCropBox(h, w, outH, outW) : [0, 0, h, w];
  const window = ch === h && cw === w ? raw : crop(raw, top, left, ch, cw);
  const pixels = nearest ? resizeNearest(window, outH, outW) : resizeBilinear(window, outH, outW);
  const cropped = ch !== h || cw !== w
    ? `, centre-cropped to ${cw}x${ch} first to keep the aspect ratio` : "";
  const how = nearest ? "nearest neighbour" : "bilinear";
  return { pixels, note: `resized ${w}x${h} -> ${outW}x${outH} (${how}${cropped}).` };
}

/** image_ops.describe_mode: a Pillow image mode in words, for error messages. */
export function describeMode(mode) {
  const words = { L: "8-bit grayscale", LA: "8-bit grayscale+alpha", 1: "1-bit",
    P: "palette (8-bit colour)", RGB: "8-bit RGB", RGBA: "8-bit RGBA", CMYK: "CMYK",
    YCbCr: "YCbCr", "I;16": "16-bit grayscale", "I;16B": "16-bit grayscale",
    "I;16L": "16-bit grayscale", I: "32-bit integer", F: "32-bit float" };
  return words[mode] ?? `${mode}-mode`;
}
