"""Pixel operations of the device demo, in NumPy alone: luma, centre crop, resizes.

Each is specified exactly (integer luma, half-pixel centres, rounding) because the
Android sample (InferenceContract.kt) repeats them and its tests compare numbers.
"""

import functools

import numpy as np


def luma(rgb):
    """uint8 (H, W, 3) -> uint8 (H, W): ITU-R 601 luma in integer arithmetic, the same as
    Pillow's convert("L") and the Android sample: (19595 R + 38470 G + 7471 B + 32768) >> 16."""
    rgb = rgb.astype(np.uint32)
    return ((19595 * rgb[..., 0] + 38470 * rgb[..., 1] + 7471 * rgb[..., 2] + 32768) >> 16) \
        .astype(np.uint8)


def centre_crop_box(height, width, out_h, out_w):
    """(top, left, h, w): the largest centred window with the aspect ratio out_w/out_h."""
    if height * out_w > width * out_h:  # too tall
        h = max(1, int(round(width * out_h / out_w)))
        return (height - h) // 2, 0, h, width
    w = max(1, int(round(height * out_w / out_h)))
    return 0, (width - w) // 2, height, w


# ----------------------------------------------------------------------- bilinear resize
# Integer fixed point (see resize_bilinear): the weights are integers that every port
# (NumPy here, Kotlin in InferenceContract.kt, JavaScript) derives with integer
# arithmetic alone, so no port can round a tie differently from another.

BITS = 22  # fraction bits of the weights: Pillow's precision for 8-bit resampling
ONE = 1 << BITS
HALF = 1 << (BITS - 1)


@functools.lru_cache(maxsize=32)
def bilinear_weights(n_in, n_out):
    """(index, weights), both (n_out, taps) int64 and read-only: output o of a pass from
    n_in to n_out pixels is sum_t weights[o, t] * pixel[index[o, t]], the integer weights
    w[o][j] of resize_bilinear's docstring over the band of inputs j where r[o][j] > 0
    (index[o, t] = first + t), each row summing to exactly ONE = 1 << BITS. Rows with a
    narrower band than the widest are padded with zero weights that read the band's
    last input. Cached per size (a camera's frames, a data set's files)."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"cannot resize {n_in} pixels to {n_out}: sizes must be positive")
    m = max(n_in, n_out)
    centre2 = (2 * np.arange(n_out, dtype=np.int64) + 1) * n_in  # (2o + 1) * n_in
    # r[o][j] > 0 exactly when |(2j + 1) n_out - (2o + 1) n_in| < 2m: the first such j
    # is floor(((2o + 1) n_in - 2m + n_out) / (2 n_out)), the last
    # floor(((2o + 1) n_in + 2m - n_out - 1) / (2 n_out)), clipped to the image.
    first = np.maximum(0, (centre2 - 2 * m + n_out) // (2 * n_out))
    last = np.minimum(n_in - 1, (centre2 + 2 * m - n_out - 1) // (2 * n_out))
    taps = int((last - first).max()) + 1
    j = first[:, None] + np.arange(taps)
    r = np.maximum(0, 2 * m - np.abs((2 * j + 1) * n_out - centre2[:, None]))
    r[j > last[:, None]] = 0  # padding (and, past the image's edge, pixels that do not exist)
    cumulative = np.zeros((n_out, taps + 1), np.int64)
    np.cumsum(r, axis=1, out=cumulative[:, 1:])
    total = cumulative[:, -1:]
    if int(total.max()) >= 1 << (61 - BITS):  # S * 2^(BITS+1) would overflow int64
        cumulative, total = cumulative.astype(object), total.astype(object)
    rounded = (cumulative * (2 * ONE) + total) // (2 * total)
    weights = np.diff(rounded, axis=1).astype(np.int64)
    index = np.minimum(j, last[:, None])
    index.flags.writeable = False
    weights.flags.writeable = False
    return index, weights


def clear_weight_cache():
    """Forget the cached weights (benchmarks time the first call of a size with it)."""
    bilinear_weights.cache_clear()


def _accumulator(dtype):
    """The type holding a pass's sums of integer pixels of `dtype` exactly: int32 for 8-bit
    (|acc| <= 255 * 2^22 + 2^21 < 2^31), int64 for 16-bit (< 2^38) and 32-bit (<= 2^54),
    Python integers for 64-bit."""
    return {1: np.int32, 2: np.int64, 4: np.int64}.get(np.dtype(dtype).itemsize, object)


def _integer_pass(x, n_out, info):
    """One integer pass along axis 0 of x (n_in, a, b) -> (n_out, a, b) of x's type: each
    output's band of inputs gathered, one dot product per output over its taps (an exact
    integer sum, so the order of its terms does not matter), rounded half up and clipped."""
    index, weights = bilinear_weights(x.shape[0], n_out)
    accumulator = _accumulator(x.dtype)
    if accumulator is object:  # 64-bit pixels: Python integers, one tap at a time
        acc = _taps(x, index, weights.astype(object), object)
        return np.clip((acc + HALF) >> BITS, info.min, info.max).astype(x.dtype)
    band = x[index].reshape(n_out, index.shape[1], -1)  # (n_out, taps, a * b), a copy
    acc = np.einsum("ot,otk->ok", weights.astype(accumulator), band)
    acc += HALF
    acc >>= BITS  # an arithmetic shift: floor, also below zero
    np.clip(acc, info.min, info.max, out=acc)
    return acc.astype(x.dtype).reshape((n_out,) + x.shape[1:])


def _taps(x, index, weights, dtype):
    """sum_t weights[:, t] * x[index[:, t]] along axis 0 of x, in `dtype`, one tap at a time
    (t increasing: each output's inputs in increasing order)."""
    acc = np.zeros((len(index),) + x.shape[1:], dtype)
    broadcast = (len(index),) + (1,) * (x.ndim - 1)
    for t in range(index.shape[1]):
        acc += weights[:, t].reshape(broadcast) * x[index[:, t]].astype(dtype)
    return acc


def _float_pass(x, n_out):
    """One float pass along axis 0 of x, in float64, in the order specified for floats."""
    index, weights = bilinear_weights(x.shape[0], n_out)
    return _taps(x, index, weights * (1.0 / ONE), np.float64)  # w / 2^BITS: exact


def resize_bilinear(img, out_h, out_w):
    """(H, W, C) -> (out_h, out_w, C) of the same dtype: separable triangle filter (half-pixel
    centres, widened by the scale factor when shrinking: antialiasing, as Pillow's BILINEAR),
    rows first, then columns, in integer fixed point with BITS = 22 fraction bits.

    Weights of a pass from n_in to n_out pixels, integers only. With M = max(n_in, n_out),
    output o (0 <= o < n_out) and input j (0 <= j < n_in):

        r[o][j] = max(0, 2M - |(2j + 1) * n_out - (2o + 1) * n_in|)

    (2M times the triangle 1 - |(j + 1/2) - (o + 1/2) * n_in / n_out| / max(n_in / n_out, 1)),
    R[o] = sum_j r[o][j], S[o][k] = sum_{j < k} r[o][j] (S[o][0] = 0, S[o][n_in] = R[o]),

        C[o][k] = floor((S[o][k] * 2^(BITS+1) + R[o]) / (2 R[o]))   (S/R * 2^BITS, half up)
        w[o][j] = C[o][j+1] - C[o][j]

    so every w >= 0, w = 0 where r = 0, and each row sums to exactly 2^BITS (= C[o][n_in]).

    Integer pixels v (uint8 RGB, uint16 depth, integer TIFF bands). One pass:

        acc[o] = sum_j w[o][j] * v[j]                           (exact integer sum)
        out[o] = clip(floor((acc[o] + 2^(BITS-1)) / 2^BITS), type min, type max)

    i.e. (acc + 2^21) >> 22 with an arithmetic (flooring) shift: rounded half up, also for
    negative values. The rows pass runs on every column and channel and its output is
    rounded and clipped that way to the input's type; the columns pass runs on that. (The
    clip never acts: the weights are >= 0 and sum to 2^BITS, so an output lies between the
    smallest and largest input it reads; it is there so that no port has to rely on it.)

    Ranges, for ports: |acc| <= max|v| * 2^BITS, below 2^30 for 8-bit and 2^38 for 16-bit
    pixels; S * 2^(BITS+1) + 3R < 2^53 for sides up to 16384 pixels (the worst case: one
    output from all of them). So JavaScript Numbers are exact throughout, with
    Math.floor(a / b) in place of the weights' integer division (exact for integers a >= 0,
    b > 0 with a + b <= 2^53) and Math.floor((acc + 2^21) / 2^22) in place of the shift
    (JavaScript's >> cuts to 32 bits). Kotlin: Long.

    NumPy evaluates each pass without a Python loop over pixels or outputs: the band of
    inputs of every output gathered at once, then one integer dot product per output over
    its taps (np.einsum), in int32 for 8-bit pixels (|acc| <= 255 * 2^22 + 2^21 < 2^31),
    int64 for 16- and 32-bit ones (|acc| <= 2^54), Python integers for 64-bit ones (one tap
    at a time); integer sums are exact, so the order of their terms does not matter.

    Float pixels: the same weights as float64 values w[o][j] / 2^BITS (exact); each output
    is the float64 sum, starting from 0.0, of the products weight * pixel over its band in
    increasing j, each product and each sum rounded to nearest (no fused multiply-add; the
    zero weights change nothing); the rows pass stays float64 (no rounding) and the result
    is cast to the input's dtype. Finite values only (0 * inf is NaN)."""
    h, w, c = img.shape
    bilinear_weights(h, out_h), bilinear_weights(w, out_w)  # refuses sizes < 1 first
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        rows = img if out_h == h else _integer_pass(img, out_h, info)  # w[o][o] = ONE: identity
        if out_w == w:
            return np.array(rows, order="C")
        # The columns pass as a rows pass of the rows transposed to (W, C, out_h), copied:
        # gathering whole rows of a contiguous array is much faster than gathering from a
        # strided view, and NumPy copies this order several times faster than (W, out_h, C).
        both = _integer_pass(np.ascontiguousarray(rows.transpose(1, 2, 0)), out_w, info)
        return np.ascontiguousarray(both.transpose(2, 0, 1))
    rows = _float_pass(img, out_h)
    both = _float_pass(rows.transpose(1, 0, 2), out_w)
    return both.transpose(1, 0, 2).astype(img.dtype, order="C")


def resize_nearest(img, out_h, out_w):
    """Nearest neighbour (source pixel floor((i + 0.5) * in / out)): no new values, so
    missing depth (0) never blends into valid depth."""
    rows = np.minimum(((np.arange(out_h) + 0.5) * img.shape[0] / out_h).astype(np.int64),
                      img.shape[0] - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * img.shape[1] / out_w).astype(np.int64),
                      img.shape[1] - 1)
    return img[rows][:, cols]


def fit(raw, out_h, out_w, nearest=False, crop=True):
    """(pixels of size out_h x out_w, a note saying what was done or None).

    raw: (H, W) or (H, W, C). crop: centre-crop to the target aspect ratio first.
    nearest: nearest neighbour (depth) instead of the antialiased bilinear filter."""
    h, w = raw.shape[:2]
    if (h, w) == (out_h, out_w):
        return raw, None
    top, left, ch, cw = centre_crop_box(h, w, out_h, out_w) if crop else (0, 0, h, w)
    raw = raw[top:top + ch, left:left + cw]
    if nearest:
        raw = resize_nearest(raw, out_h, out_w)
    elif raw.ndim == 2:
        raw = resize_bilinear(raw[..., None], out_h, out_w)[..., 0]
    else:
        raw = resize_bilinear(raw, out_h, out_w)
    cropped = f", centre-cropped to {cw}x{ch} first to keep the aspect ratio" \
        if (ch, cw) != (h, w) else ""
    how = "nearest neighbour" if nearest else "bilinear"
    return raw, f"resized {w}x{h} -> {out_w}x{out_h} ({how}{cropped})."


def describe_mode(mode):
    """A Pillow image mode in words, for error messages."""
    return {"L": "8-bit grayscale", "LA": "8-bit grayscale+alpha", "1": "1-bit",
            "P": "palette (8-bit colour)", "RGB": "8-bit RGB", "RGBA": "8-bit RGBA",
            "CMYK": "CMYK", "YCbCr": "YCbCr", "I;16": "16-bit grayscale",
            "I;16B": "16-bit grayscale", "I;16L": "16-bit grayscale",
            "I": "32-bit integer", "F": "32-bit float"}.get(mode, f"{mode}-mode")
