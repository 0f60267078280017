// The model's input and output conversions of edge_demo/runtime.py and classify.py's
// top-k, for the web page. No LiteRT here: runtime.js runs the model; these are the
// numbers the contract test compares with Python's.

import { roundHalfEven } from "./image_ops.js";

/** runtime.quantize: float -> int8/uint8 with the tensor's scale and zero point:
 *  x / scale in float32, rounded half to even, plus the zero point, clamped. */
export function quantize(x, scale, zeroPoint, dtype) {
  const [low, high] = dtype === "int8" ? [-128, 127] : [0, 255];
  const out = dtype === "int8" ? new Int8Array(x.length) : new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    out[i] = Math.min(high, Math.max(low, roundHalfEven(Math.fround(x[i] / scale)) + zeroPoint));
  }
  return out;
}

/** runtime.dequantize: (q - zero_point) * scale in float32. */
export function dequantize(q, scale, zeroPoint) {
  return Float32Array.from(q, (v) => (v - zeroPoint) * scale);
}

/** classify.top_k: the k largest probabilities, highest first, ties by lower index, NaN
 *  last (np.argsort(-p, kind="stable")): [{label, index, probability}]. */
export function topK(probabilities, labels, k) {
  const order = Array.from(probabilities, (_, i) => i).sort((a, b) => {
    const pa = probabilities[a];
    const pb = probabilities[b];
    if (Number.isNaN(pa) !== Number.isNaN(pb)) return Number.isNaN(pa) ? 1 : -1;
    if (pa > pb) return -1;
    if (pa < pb) return 1;
    return a - b;
  });
  return order.slice(0, Math.min(k, order.length))
    .map((i) => ({ label: labels[i], index: i, probability: probabilities[i] }));
}
