// edge_demo/runtime.py's Classifier for the web page: a .tflite model run by LiteRT.js on
// the CPU (WebAssembly, XNNPACK), float input in, class probabilities out, one sample per
// call, whatever the model's I/O type.
//
// LiteRT.js 2.5.3's Tensor class knows float32, int32 and uint8 only: loadAndCompile
// throws "Element type INT8 is not supported" for a model with int8 I/O
// (`discomkd-keras export --io int8`). Such models go through the runtime's own
// Wasm bindings (the LiteRtWasm interface of its index.d.ts: loadModel, compileModel,
// LiteRtTensorBuffer), which take any element type; float32 and uint8 models use the
// documented API. The version is pinned in package.json, as these bindings may change.

import { getGlobalLiteRt, loadAndCompile, loadLiteRt, supportsFeature, Tensor } from "@litertjs/core";

import { dequantize, quantize } from "./contract.js";

let loaded = null;

/**
 * Loads LiteRT.js's WebAssembly once, from `wasmDir` (node_modules/@litertjs/core/wasm/,
 * served with the page). threads: the threaded build, which needs a cross-origin isolated
 * page (SharedArrayBuffer) and relaxed SIMD; "auto" uses it where the browser allows.
 * Returns {threads: whether the threaded build runs, maxThreads}.
 */
export async function loadRuntime(wasmDir, { threads = false } = {}) {
  if (loaded) return loaded;
  const canThread = globalThis.crossOriginIsolated === true
    && await supportsFeature("threads") && await supportsFeature("relaxedSimd");
  const useThreads = threads === "auto" ? canThread : Boolean(threads);
  if (useThreads && !canThread) {
    throw new Error("threads need a cross-origin isolated page (served over HTTPS or on localhost "
      + "with the COOP/COEP headers `discomkd-edge serve` sends) and relaxed SIMD; open the page "
      + "without ?threads=.");
  }
  const liteRt = await loadLiteRt(wasmDir, { threads: useThreads });
  loaded = { threads: useThreads, maxThreads: liteRt.liteRtWasm.getThreadCount() };
  return loaded;
}

export class ModelFileError extends Error {}

const ELEMENT_TYPES = { 1: "float32", 3: "uint8", 9: "int8" };

function vectorToArray(vector) {
  const out = [];
  for (let i = 0; i < vector.size(); i++) out.push(vector.get(i));
  vector.delete();
  return out;
}

/** The [dtype, shape] of a LiteRtRankedTensorType (deleted after). */
function describeType(tensorType) {
  const element = tensorType.elementType().value;
  const layout = tensorType.layout();
  const shape = vectorToArray(layout.dimensions());
  layout.delete();
  return [ELEMENT_TYPES[element] ?? `element type ${element}`, shape];
}

/** A model with int8 I/O, through LiteRT.js's Wasm bindings (see the file's comment). */
class RawModel {
  constructor(wasm, environment, pointer, model, compiled) {
    Object.assign(this, { wasm, environment, pointer, model, compiled });
    const inputType = model.getInputTensorType(0, 0);
    this.inputBytes = inputType.bytes();
    this.input = wasm.LiteRtTensorBuffer.createManaged(environment.liteRtEnvironment,
      wasm.LiteRtTensorBufferType.HOST_MEMORY, inputType, this.inputBytes);
    [this.inputDtype, this.inputShape] = describeType(inputType);
    inputType.delete();
    [this.outputDtype, this.outputShape] = describeType(model.getOutputTensorType(0, 0));
  }

  static async load(bytes, numThreads) {
    const liteRt = getGlobalLiteRt();
    const wasm = liteRt.liteRtWasm;
    const environment = liteRt.getDefaultEnvironment();
    const pointer = wasm._malloc(bytes.byteLength);
    wasm.HEAPU8.set(bytes, pointer);
    const model = wasm.loadModel(environment.liteRtEnvironment, pointer, bytes.byteLength);
    const compiled = await wasm.compileModel(environment.liteRtEnvironment, model, {
      environment, accelerator: "wasm", cpuOptions: { numThreads }, gpuOptions: {}, webNNOptions: {} });
    return new RawModel(wasm, environment, pointer, model, compiled);
  }

  /** The output's bytes for the input's bytes. */
  async run(inputBytes) {
    const { wasm } = this;
    const at = this.input.lock(wasm.LiteRtTensorBufferLockMode.WRITE);
    wasm.HEAPU8.set(new Uint8Array(inputBytes.buffer, inputBytes.byteOffset, inputBytes.byteLength), at);
    this.input.unlock();
    const outputs = await this.compiled.run(0, [this.input]);
    try {
      const buffer = outputs[0];
      const from = buffer.lock(wasm.LiteRtTensorBufferLockMode.READ);
      const bytes = wasm.HEAPU8.slice(from, from + buffer.size());
      buffer.unlock();
      return bytes;
    } finally {
      for (const buffer of outputs) buffer.delete();
    }
  }

  delete() {
    this.input.delete();
    this.compiled.delete();
    this.model.delete();
    this.wasm._free(this.pointer);
  }
}

const TYPED = { float32: Float32Array, uint8: Uint8Array, int8: Int8Array };

/**
 * An exported model, checked against its card: `await Classifier.load(bytes, card,
 * labels, threads)`, then `await classifier.timed(x)` -> {probabilities, ms} for a float32
 * model input x (HWC or (F,), no batch axis).
 */
export class Classifier {
  static async load(bytes, card, labels, numThreads = 1) {
    const self = new Classifier();
    self.card = card;
    self.threads = numThreads;
    const { input, output } = card;
    const raw = input.dtype === "int8" || output.dtype === "int8";
    try {
      if (raw) {
        self.raw = await RawModel.load(bytes, numThreads);
        self.details = { input: [self.raw.inputDtype, self.raw.inputShape],
          output: [self.raw.outputDtype, self.raw.outputShape] };
      } else {
        self.model = await loadAndCompile(bytes, { accelerator: "wasm", cpuOptions: { numThreads } });
        const [inputDetails] = self.model.getInputDetails();
        const [outputDetails] = self.model.getOutputDetails();
        self.details = { input: [inputDetails.dtype, Array.from(inputDetails.shape)],
          output: [outputDetails.dtype, Array.from(outputDetails.shape)] };
      }
    } catch (err) {
      throw new ModelFileError(`${card.modelFile}: not a loadable TFLite model (${String(err.message ?? err)
        .split("\n")[0]}).`);
    }
    // runtime.open_export's checks: the card must describe this very model.
    const [inDtype, inShape] = self.details.input;
    const [outDtype, outShape] = self.details.output;
    if (inShape.join() !== input.shape.join() || inDtype !== input.dtype) {
      self.delete();
      throw new ModelFileError(`${card.modelFile}: the model's input (${inDtype} [${inShape.join(", ")}]) `
        + `does not match the card's (${input.dtype} [${input.shape.join(", ")}]); the folder mixes `
        + "files of different exports.");
    }
    if (outShape[outShape.length - 1] !== labels.length || outDtype !== output.dtype) {
      self.delete();
      throw new ModelFileError(`${card.modelFile}: the model has ${outShape[outShape.length - 1]} `
        + `${outDtype} outputs but there are ${labels.length} labels and the card says ${output.dtype}; `
        + "the folder mixes files of different exports.");
    }
    // One call now, so that the first file's time is the model's, not XNNPACK's set-up.
    await self.classify(new Float32Array(input.shape.reduce((n, d) => n * d, 1)));
    return self;
  }

  /** float32 probabilities (K,) of one float32 model input. */
  async classify(x) {
    const { input, output } = this.card;
    const fed = input.dtype === "float32" ? x : quantize(x, input.scale, input.zeroPoint, input.dtype);
    let y;
    if (this.raw) {
      const bytes = await this.raw.run(fed);
      const Typed = TYPED[output.dtype];
      y = new Typed(bytes.buffer, bytes.byteOffset, bytes.byteLength / Typed.BYTES_PER_ELEMENT);
    } else {
      const tensor = new Tensor(fed, input.shape);
      try {
        const [result] = await this.model.run(tensor);
        y = result.toTypedArray();
        result.delete();
      } finally {
        tensor.delete();
      }
    }
    return output.dtype === "float32" ? Float32Array.from(y) : dequantize(y, output.scale, output.zeroPoint);
  }

  /** {probabilities, ms}: ms of quantize + run + dequantize, as runtime.Classifier.timed. */
  async timed(x) {
    const started = performance.now();
    const probabilities = await this.classify(x);
    return { probabilities, ms: performance.now() - started };
  }

  delete() {
    this.raw?.delete();
    this.model?.delete();
  }
}
