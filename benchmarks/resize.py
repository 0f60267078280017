"""Resizing speed: edge_demo/image_ops.resize_bilinear against the code it replaced and Pillow.

    python benchmarks/resize.py [--repeats 100] [--seed 0] [--out benchmarks/results/resize.md]

Cases: uint8 RGB 640x480 -> 64x64, 640x480 -> 224x224, 1920x1080 -> 128x128 and uint16
depth 640x480 -> 64x64, each a random image from --seed. Timed per call with
time.perf_counter, the methods interleaved within each repeat (in an order drawn anew
from --seed each time) so that a busy moment on a shared machine falls on all of them
alike, each timed on the second of two calls in a row (see time_case); the table gives
the median over --repeats, the spread (25th-75th percentile), the fastest call and the
ratios of medians.

Methods:
  previous   previous_resize_bilinear below: image_ops.resize_bilinear as it was before the
             integer fixed-point version (float64 weights, Python loops over output rows
             and input rows), kept here verbatim so that the figure can be re-measured.
  new        image_ops.resize_bilinear: integer fixed point, one gather and one np.einsum
             integer dot product per pass (weights cached per size, as for a camera's frames).
  new, cold  the same with its weight cache emptied before every call.
  Pillow     Image.resize(size, Image.BILINEAR) on an Image already made (what Pillow's C
             code costs), and with Image.fromarray / np.asarray around it (what the same
             NumPy-in, NumPy-out job costs with Pillow).

Also printed: how far the new pixels are from the previous ones and from Pillow's.
"""

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from discomkd_keras.edge_demo import image_ops  # noqa: E402


# --------------------------------------------------------------- the code before this change
# image_ops.py's bilinear resize before the integer fixed-point version, unchanged.

def previous_bilinear_weights(n_in, n_out):
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


def previous_filter_axis0(img, weights):
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


def previous_resize_bilinear(img, out_h, out_w):
    """(H, W, C) -> (out_h, out_w, C) of the same dtype: separable triangle filter, rows
    first, then columns. Integer pixels (uint8 RGB, uint16 bands) are rounded half up
    and clamped to their type's range; float pixels are only cast back."""
    rows = previous_filter_axis0(img, previous_bilinear_weights(img.shape[0], out_h))
    both = previous_filter_axis0(rows.transpose(1, 0, 2),
                                 previous_bilinear_weights(img.shape[1], out_w))
    both = both.transpose(1, 0, 2)
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        return np.clip(np.floor(both + 0.5), info.min, info.max).astype(img.dtype)
    return both.astype(img.dtype)


# --------------------------------------------------------------------------- the benchmark

CASES = [  # (name, input shape (H, W[, C]), dtype, (out_h, out_w))
    ("RGB 640x480 -> 64x64", (480, 640, 3), np.uint8, (64, 64)),
    ("RGB 640x480 -> 224x224", (480, 640, 3), np.uint8, (224, 224)),
    ("RGB 1920x1080 -> 128x128", (1080, 1920, 3), np.uint8, (128, 128)),
    ("depth 640x480 -> 64x64 (uint16)", (480, 640), np.uint16, (64, 64)),
]
METHODS = ("previous", "new", "new, cold", "Pillow", "Pillow from/to NumPy")


def methods_for(img, out_h, out_w):
    """name -> a call doing that method's resize of img (H, W[, C]) to out_h x out_w."""
    hwc = img if img.ndim == 3 else img[..., None]
    pil = Image.fromarray(img)

    def cold():
        image_ops.clear_weight_cache()
        return image_ops.resize_bilinear(hwc, out_h, out_w)

    return {
        "previous": lambda: previous_resize_bilinear(hwc, out_h, out_w),
        "new": lambda: image_ops.resize_bilinear(hwc, out_h, out_w),
        "new, cold": cold,
        "Pillow": lambda: pil.resize((out_w, out_h), Image.BILINEAR),
        "Pillow from/to NumPy": lambda: np.asarray(
            Image.fromarray(img).resize((out_w, out_h), Image.BILINEAR)),
    }


def time_case(img, out_h, out_w, repeats, rng):
    """name -> list of seconds per call. Each repeat visits the methods in a new random
    order, and times each one's second of two calls in a row: a call right after another
    method's pays for that method's freed memory (page faults on fresh allocations; up to
    twice the time for the new code just after the previous code's large arrays), so each
    figure is a method's steady state, as in a camera loop or a data set's decode."""
    calls = methods_for(img, out_h, out_w)
    seconds = {name: [] for name in calls}
    names = list(calls)
    for _ in range(repeats):
        for name in rng.permutation(names):
            calls[name]()
            start = time.perf_counter()
            calls[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def agreement(img, out_h, out_w):
    """(new vs previous, new vs Pillow): (largest |difference|, share of values differing)."""
    hwc = img if img.ndim == 3 else img[..., None]
    new = image_ops.resize_bilinear(hwc, out_h, out_w).astype(np.int64)
    old = previous_resize_bilinear(hwc, out_h, out_w).astype(np.int64)
    pil = np.asarray(Image.fromarray(img).resize((out_w, out_h), Image.BILINEAR)).astype(np.int64)
    pil = pil if pil.ndim == 3 else pil[..., None]
    return [(int(np.abs(new - other).max()), float((new != other).mean())) for other in (old, pil)]


def ms(values):
    return 1e3 * float(np.median(values))


def spread(values):
    low, high = np.percentile(values, [25, 75])
    return f"{1e3 * low:.3f}-{1e3 * high:.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "resize.md")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    rows, notes = [], []
    for name, shape, dtype, (out_h, out_w) in CASES:
        img = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
        seconds = time_case(img, out_h, out_w, args.repeats, rng)
        (old_max, old_share), (pil_max, pil_share) = agreement(img, out_h, out_w)
        med = {m: ms(seconds[m]) for m in METHODS}
        for m in METHODS:
            rows.append(f"| {name} | {m} | {med[m]:.3f} | {spread(seconds[m])} "
                        f"| {1e3 * min(seconds[m]):.3f} "
                        f"| {med['previous'] / med[m]:.2f} | {med['Pillow'] / med[m]:.2f} |")
        notes.append(f"| {name} | {old_max} ({100 * old_share:.1f} %) "
                     f"| {pil_max} ({100 * pil_share:.1f} %) |")
        print(f"{name}: " + ", ".join(f"{m} {med[m]:.3f} ms" for m in METHODS)
              + f"; new vs previous max {old_max}, vs Pillow max {pil_max}", flush=True)

    arguments = sys.argv[1:] if argv is None else argv
    command = " ".join(["python benchmarks/resize.py"] + [shlex.quote(a) for a in arguments])
    text = "\n".join([
        "# Bilinear resize: integer fixed point against the previous code and Pillow",
        "",
        f"Command: `{command}` (from the repository root, venv active)  ",
        f"Date: {datetime.date.today().isoformat()}  ",
        f"Machine: 2 shared CPU cores (other jobs ran at the same time), {platform.machine()}, "
        f"{os.cpu_count()} CPUs seen, Python {platform.python_version()}, NumPy {np.__version__}, "
        f"Pillow {Image.__version__}  ",
        f"Images: random, seed {args.seed}; {args.repeats} repeats per method and case, the "
        "methods in a random order within each repeat (from the same seed), each timed on "
        "the second of two calls in a row (its steady state: a call right after another "
        "method pays for that one's freed memory).",
        "",
        "Milliseconds per call: median, 25th-75th percentile and fastest call; speed-ups are "
        "ratios of medians (previous / method, Pillow / method: above 1 is faster than that "
        "one).",
        "",
        "| case | method | median ms | spread ms | fastest ms | x previous | x Pillow |",
        "|---|---|---:|---|---:|---:|---:|",
        *rows,
        "",
        "Methods: *previous* is `previous_resize_bilinear` in benchmarks/resize.py, the code "
        "before the integer fixed-point version (float64 weights, Python loops per output "
        "row); *new* is `edge_demo/image_ops.resize_bilinear` with its per-size weights "
        "cached (a camera's frames, a data set's files), *new, cold* empties that cache "
        "before every call; *Pillow* is `Image.resize(size, Image.BILINEAR)` on an Image "
        "already made, *Pillow from/to NumPy* adds `Image.fromarray` and `np.asarray`.",
        "",
        "Pixels (same random images): largest difference of the new values and the share "
        "of values that differ.",
        "",
        "| case | new vs previous | new vs Pillow |",
        "|---|---|---|",
        *notes,
        "",
    ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
