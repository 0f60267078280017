"""Pixel operations of the device demo, in NumPy alone: luma, centre crop, resizes.

Each is specified exactly (integer luma, half-pixel centres, rounding) because the
Android sample (InferenceContract.kt) repeats them and its tests compare numbers.
"""

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


def _bilinear_weights(n_in, n_out):
    """(n_out, n_in) rows of a triangle filter: half-pixel centres, widened by the scale
    factor when shrinking (antialiasing, as Pillow's BILINEAR), rows summing to 1."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    pixels = np.arange(n_in) + 0.5
    w = np.maximum(0.0, 1.0 - np.abs(pixels[None, :] - centres[:, None]) / support)
    # Each row's sum left to right, as the Android sample sums it: NumPy's own sum
    # reduces pairwise, which can differ in the last bit, and a rounding tie downstream
    # turns that bit into a pixel value.
    total = np.zeros(n_out)
    for j in range(n_in):
        total += w[:, j]
    return w / total[:, None]


def _filter_axis0(img, weights):
    """weights (n_out, n_in) applied along axis 0, one output row at a time over the
    band of input rows it touches (a camera frame is never converted whole to float).
    Each output is accumulated in input order, one multiply and one add at a time (no
    BLAS: its dot products may fuse multiply-adds or reorder them), so every device
    that follows the same order gets the same pixels, ties included."""
    out = np.zeros((len(weights),) + img.shape[1:], np.float64)
    for o, w in enumerate(weights):
        nonzero = np.flatnonzero(w)
        for i in range(nonzero[0], nonzero[-1] + 1):
            out[o] += w[i] * img[i].astype(np.float64)
    return out


def resize_bilinear(img, out_h, out_w):
    """(H, W, C) -> (out_h, out_w, C) of the same dtype: separable triangle filter, rows
    first, then columns. Integer pixels (uint8 RGB, uint16 bands) are rounded half up
    and clamped to their type's range; float pixels are only cast back."""
    rows = _filter_axis0(img, _bilinear_weights(img.shape[0], out_h))          # (out_h, W, C)
    both = _filter_axis0(rows.transpose(1, 0, 2), _bilinear_weights(img.shape[1], out_w))
    both = both.transpose(1, 0, 2)
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        return np.clip(np.floor(both + 0.5), info.min, info.max).astype(img.dtype)
    return both.astype(img.dtype)


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
