// .npy files (NumPy's format, versions 1-3) for the web page: what np.load(path,
// allow_pickle=False) gives, as {dtype, kind, shape, data} with data in C order. Only plain
// numeric arrays: an object array is refused as np.load refuses it (never unpickled).

export class NpyError extends Error {}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

// NumPy type letters and sizes -> [kind, typed array, element bytes]. kind: "b" bool,
// "i" signed, "u" unsigned, "f" float, "c" complex (as NumPy's dtype.kind).
const TYPES = {
  b1: ["b", Uint8Array, 1], i1: ["i", Int8Array, 1], u1: ["u", Uint8Array, 1],
  i2: ["i", Int16Array, 2], u2: ["u", Uint16Array, 2], i4: ["i", Int32Array, 4],
  u4: ["u", Uint32Array, 4], i8: ["i", Float64Array, 8], u8: ["u", Float64Array, 8],
  f2: ["f", Float32Array, 2], f4: ["f", Float32Array, 4], f8: ["f", Float64Array, 8],
  c8: ["c", Float32Array, 8], c16: ["c", Float64Array, 16],
};
// NumPy's names of the dtypes, for messages that name them as Python prints a dtype.
const NAMES = { b1: "bool", i1: "int8", u1: "uint8", i2: "int16", u2: "uint16", i4: "int32",
  u4: "uint32", i8: "int64", u8: "uint64", f2: "float16", f4: "float32", f8: "float64",
  c8: "complex64", c16: "complex128" };

function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function readElement(view, at, code, little) {
  switch (code) {
    case "b1": return view.getUint8(at) ? 1 : 0;
    case "i1": return view.getInt8(at);
    case "u1": return view.getUint8(at);
    case "i2": return view.getInt16(at, little);
    case "u2": return view.getUint16(at, little);
    case "i4": return view.getInt32(at, little);
    case "u4": return view.getUint32(at, little);
    case "i8": return Number(view.getBigInt64(at, little));
    case "u8": return Number(view.getBigUint64(at, little));
    case "f2": return halfToFloat(view.getUint16(at, little));
    case "f4": return view.getFloat32(at, little);
    case "f8": return view.getFloat64(at, little);
    // astype(float32) of a complex array keeps the real part (with NumPy's ComplexWarning).
    case "c8": return view.getFloat32(at, little);
    case "c16": return view.getFloat64(at, little);
    default: throw new Error(`unknown code ${code}`);
  }
}

/** The header's dict literal, {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }. */
function parseHeader(header, name) {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (/'descr'\s*:\s*\[/.test(header)) {
    throw new NpyError(`${name}: expected a numeric array; got a structured dtype.`);
  }
  if (!descr || !fortran || !shape) {
    throw new NpyError(`${name}: not a readable .npy array (the header is not NumPy's: ${header.trim()}).`);
  }
  const dims = shape[1].split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (!dims.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new NpyError(`${name}: not a readable .npy array (bad shape ${shape[1]}).`);
  }
  return { descr: descr[1], fortranOrder: fortran[1] === "True", shape: dims };
}

/**
 * The array of a .npy file's bytes: {dtype (NumPy's name), kind, shape, data (a typed
 * array in C order; int64/uint64 as float64 numbers, bool as 0/1, complex as its real
 * part)}. NpyError naming the file for what np.load would refuse.
 */
export function readNpy(bytes, name) {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new NpyError(`${name}: not a readable .npy array (the magic string is not \\x93NUMPY).`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  if (major < 1 || major > 3) {
    throw new NpyError(`${name}: not a readable .npy array (format version ${major}.${bytes[7]} is unknown).`);
  }
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLength;
  if (start > bytes.length) throw new NpyError(`${name}: not a readable .npy array (truncated header).`);
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1")
    .decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const { descr, fortranOrder, shape } = parseHeader(header, name);
  const match = /^([<>|=]?)([a-zA-Z])(\d*)$/.exec(descr);
  if (match && match[2] === "O") {
    throw new NpyError(`${name}: holds Python objects; only plain numeric arrays are read (never unpickled).`);
  }
  const code = match ? `${match[2]}${match[3] || ""}`.replace(/^\?$/, "b1") : null;
  const type = match && (match[2] === "?" ? TYPES.b1 : TYPES[code]);
  if (!type) throw new NpyError(`${name}: expected a numeric array; got ${descr}.`);
  const typeCode = match[2] === "?" ? "b1" : code;
  const [kind, ArrayType, size] = type;
  const little = match[1] !== ">";
  const count = shape.reduce((n, d) => n * d, 1);
  if (start + count * size > bytes.length) {
    throw new NpyError(`${name}: not a readable .npy array (the data is shorter than its shape `
      + `(${shape.join(", ")}) needs).`);
  }
  const data = new ArrayType(count);
  // Fortran order: element k of the file is at the C index whose first axis varies fastest.
  const strides = shape.map((_, axis) => shape.slice(axis + 1).reduce((n, d) => n * d, 1));
  const index = new Array(shape.length).fill(0);
  for (let k = 0; k < count; k++) {
    let at = k;
    if (fortranOrder) {
      at = 0;
      for (let axis = 0; axis < shape.length; axis++) at += index[axis] * strides[axis];
      for (let axis = 0; axis < shape.length; axis++) { // next Fortran index
        if (++index[axis] < shape[axis]) break;
        index[axis] = 0;
      }
    }
    data[at] = readElement(view, start + k * size, typeCode, little);
  }
  return { dtype: NAMES[typeCode], kind, shape, data };
}
