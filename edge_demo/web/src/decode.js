// Image files -> decoded pixels with the Pillow mode that edge_demo/preprocessing.py sees
// after Image.open, for the web page.
//
// PNG is decoded here (fast-png), never by the browser: a canvas gives 8 bits per channel
// (a 16-bit depth PNG would lose its low byte) and may apply colour management. The
// result is what Pillow gives for the same file: 16-bit grayscale stays 16-bit ("I;16"),
// 16-bit colour keeps its high byte (Pillow's "RGB;16B" unpacking), 2- and 4-bit gray is
// scaled to 0..255, palettes stay indices ("P"). JPEG is decoded by the browser (its
// decoder, like Pillow's, is libjpeg-turbo) through a function the page passes in, with
// colour management and EXIF rotation off, as Pillow does not apply them either.

import { decode as decodePng } from "fast-png";

import { image } from "./image_ops.js";

export class DecodeError extends Error {}

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function isPng(bytes) {
  return PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

export function isJpeg(bytes) {
  return bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** Unpacked samples of a PNG with 1, 2 or 4 bits per sample (rows start on a byte). */
function unpackBits(data, width, height, channels, depth) {
  const perRow = Math.ceil((width * channels * depth) / 8);
  const out = new Uint8Array(width * height * channels);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width * channels; i++) {
      const bit = i * depth;
      const byte = data[y * perRow + (bit >> 3)];
      out[y * width * channels + i] = (byte >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

/**
 * {mode, pixels} of a PNG as Pillow opens it: mode "1", "L", "I;16", "P" (with `palette`,
 * [[r, g, b(, a)]]), "LA", "RGB" or "RGBA"; pixels an image (Uint8Array, Uint16Array for
 * "I;16"; 0/1 for "1").
 */
export function readPng(bytes, name) {
  let png;
  try {
    png = decodePng(bytes, { checkCrc: true });
  } catch (err) {
    throw new DecodeError(`${name}: not a readable image (${err.message.split("\n")[0] || "unknown error"}).`);
  }
  const { width, height, depth, channels } = png;
  let { data } = png;
  if (png.palette) {
    const indices = depth < 8 ? unpackBits(data, width, height, 1, depth) : data;
    return { mode: "P", palette: png.palette, pixels: image(Uint8Array.from(indices), height, width, 1) };
  }
  const modes = { 1: "L", 2: "LA", 3: "RGB", 4: "RGBA" };
  if (depth === 16) {
    if (channels === 1) return { mode: "I;16", pixels: image(Uint16Array.from(data), height, width, 1) };
    if (channels === 2) { // Pillow opens 16-bit gray+alpha as RGBA ("LA;16B"): gray, gray, gray, alpha
      const rgba = new Uint8Array(width * height * 4);
      for (let p = 0; p < width * height; p++) {
        rgba.fill(data[2 * p] >> 8, 4 * p, 4 * p + 3);
        rgba[4 * p + 3] = data[2 * p + 1] >> 8;
      }
      return { mode: "RGBA", pixels: image(rgba, height, width, 4) };
    }
    const highBytes = Uint8Array.from(data, (v) => v >> 8);
    return { mode: modes[channels], pixels: image(highBytes, height, width, channels) };
  }
  if (depth < 8) { // grayscale only: colour PNGs have 8 or 16 bits
    const values = unpackBits(data, width, height, channels, depth);
    if (depth === 1) return { mode: "1", pixels: image(values, height, width, 1) };
    const scale = depth === 2 ? 0x55 : 0x11;
    data = values.map((v) => v * scale);
  }
  return { mode: modes[channels], pixels: image(Uint8Array.from(data), height, width, channels) };
}

/** The number of colour components of a JPEG (1 gray, 3 colour, 4 CMYK), from its frame header. */
export function jpegComponents(bytes) {
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return null;
    const marker = bytes[at + 1];
    if (marker === 0xff) { at++; continue; } // fill byte
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    const startOfFrame = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
    if (startOfFrame) return at + 9 < bytes.length ? bytes[at + 9] : null;
    at += 2 + length;
  }
  return null;
}

/**
 * {mode, pixels} of an image file's bytes (PNG or JPEG). `decodeJpeg(bytes)` -> Promise of
 * RGBA {data, width, height} is the page's browser decoder; without it JPEG is refused.
 */
export async function readImage(bytes, name, decodeJpeg = null) {
  if (isPng(bytes)) return readPng(bytes, name);
  if (isJpeg(bytes)) {
    const components = jpegComponents(bytes);
    if (components === 4) {
      throw new DecodeError(`${name}: CMYK JPEG is not read by this page; convert it to RGB first.`);
    }
    if (decodeJpeg === null) throw new DecodeError(`${name}: no JPEG decoder here (a browser has one).`);
    let rgba;
    try {
      rgba = await decodeJpeg(bytes);
    } catch (err) {
      const why = err.message || "the browser cannot decode it";
      throw new DecodeError(`${name}: not a readable image (${why}).`);
    }
    return fromRgba(rgba, components === 1 ? "L" : "RGB");
  }
  throw new DecodeError(`${name}: not a readable image (neither PNG nor JPEG).`);
}

/** Browser RGBA pixels (ImageData, a camera frame) -> {mode: "RGB" or "L", pixels}. */
export function fromRgba({ data, width, height }, mode = "RGB") {
  const channels = mode === "L" ? 1 : 3;
  const out = new Uint8Array(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < channels; c++) out[p * channels + c] = data[4 * p + c];
  }
  return { mode, pixels: image(out, height, width, channels) };
}

/** Pillow's convert("RGB") of the modes an 8-bit model converts: drop alpha, expand a
 *  palette (entries past its end are black). */
export function toRgb({ mode, pixels, palette }) {
  const { data, height, width, channels } = pixels;
  const out = new Uint8Array(height * width * 3);
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < 3; c++) {
      out[3 * p + c] = mode === "P" ? (palette[data[p]] ?? [0, 0, 0])[c] : data[p * channels + c];
    }
  }
  return image(out, height, width, 3);
}

/** Pillow's convert("L") of "LA" (drop alpha) and "1" (0 or 255). */
export function toGray({ mode, pixels }) {
  const { data, height, width, channels } = pixels;
  const out = new Uint8Array(height * width);
  for (let p = 0; p < height * width; p++) {
    out[p] = mode === "1" ? (data[p] ? 255 : 0) : data[p * channels];
  }
  return image(out, height, width, 1);
}
