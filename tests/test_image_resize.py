"""edge_demo/image_ops.resize_bilinear in integer fixed point: the integers of its docstring,
hand-computed cases, a plain-Python evaluation of the formulas for every dtype path, and
Pillow's BILINEAR within one grey level."""

import numpy as np
import pytest
from PIL import Image

from discomkd_keras.edge_demo import image_ops
from discomkd_keras.edge_demo.image_ops import BITS, ONE, bilinear_weights, resize_bilinear

HALF = 1 << (BITS - 1)


# ------------------------------------------------ the docstring's formulas in Python integers


def reference_weights(n_in, n_out):
    """Dense (n_out rows of n_in) integer weights, written from the docstring alone."""
    m = max(n_in, n_out)
    rows = []
    for o in range(n_out):
        r = [max(0, 2 * m - abs((2 * j + 1) * n_out - (2 * o + 1) * n_in)) for j in range(n_in)]
        total, partial, cumulative = sum(r), 0, [0]
        for value in r:
            partial += value
            cumulative.append((partial * 2 ** (BITS + 1) + total) // (2 * total))
        rows.append([cumulative[j + 1] - cumulative[j] for j in range(n_in)])
    return rows


def dense(n_in, n_out):
    """bilinear_weights(n_in, n_out) scattered into dense rows, as Python integers."""
    index, weights = bilinear_weights(n_in, n_out)
    rows = [[0] * n_in for _ in range(n_out)]
    for o in range(n_out):
        for j, w in zip(index[o].tolist(), weights[o].tolist()):
            rows[o][j] += w
    return rows


def reference_pass(lines, weights, low, high):
    """One integer pass over a list of per-input values (each a list): round half up, clip."""
    out = []
    for row in weights:
        acc = [sum(w * line[k] for w, line in zip(row, lines)) for k in range(len(lines[0]))]
        out.append([min(high, max(low, (a + HALF) >> BITS)) for a in acc])
    return out


def reference_resize(img, out_h, out_w):
    """The integer fixed point of the docstring in Python integers: rows, round and clip,
    then columns, round and clip."""
    h, w, c = img.shape
    info = np.iinfo(img.dtype)
    values = img.tolist()  # Python ints
    # rows pass: the inputs are the image rows, each flattened (w * c values)
    rows = reference_pass([sum(row, []) for row in values], reference_weights(h, out_h),
                          info.min, info.max)
    # columns pass: the inputs are the columns of the rows pass, each flattened (out_h * c)
    columns = [[rows[o][x * c + ch] for o in range(out_h) for ch in range(c)] for x in range(w)]
    out = reference_pass(columns, reference_weights(w, out_w), info.min, info.max)
    return np.array([[[out[p][o * c + ch] for ch in range(c)] for p in range(out_w)]
                     for o in range(out_h)], dtype=img.dtype).reshape(out_h, out_w, c)


def reference_float(img, out_h, out_w):
    """The float path of the docstring in Python floats: weights w / 2^BITS, each output
    summed from 0.0 in increasing input order, rows kept in float64, cast at the end."""
    def one_pass(lines, weights):  # lines: per input, a list of floats
        return [[sum_in_order([w / ONE * line[k] for w, line in zip(row, lines)])
                 for k in range(len(lines[0]))] for row in weights]

    def sum_in_order(products):
        acc = 0.0
        for p in products:
            acc += p
        return acc

    h, w, c = img.shape
    values = [[float(v) for v in row.ravel()] for row in img.astype(np.float64)]
    rows = one_pass(values, reference_weights(h, out_h))
    columns = [[rows[o][x * c + ch] for o in range(out_h) for ch in range(c)] for x in range(w)]
    out = one_pass(columns, reference_weights(w, out_w))
    both = np.array(out).reshape(out_w, out_h, c).transpose(1, 0, 2)
    return both.astype(img.dtype)


# ------------------------------------------------------------------------------- weights


def test_weights_are_the_docstring_integers_and_sum_to_exactly_one():
    sizes = [(n_in, n_out) for n_in in range(1, 26) for n_out in range(1, 26)]
    sizes += [(640, 64), (480, 64), (640, 224), (1920, 128), (1080, 128), (7, 1000), (333, 1)]
    for n_in, n_out in sizes:
        rows = dense(n_in, n_out)
        assert rows == reference_weights(n_in, n_out), (n_in, n_out)
        assert all(sum(row) == ONE for row in rows), (n_in, n_out)
        index, weights = bilinear_weights(n_in, n_out)
        assert weights.min() >= 0 and index.min() >= 0 and index.max() < n_in


def test_weights_stay_exact_for_long_sides():
    """The docstring's bound: numerator plus denominator of the weights' division,
    S * 2^(BITS+1) + R + 2R, stays below 2^53 (exact for JavaScript Numbers) for sides up to
    16384 pixels, the worst case being one output from all of them."""
    n = 16384
    r = [max(0, 2 * n - abs((2 * j + 1) - n)) for j in range(n)]
    assert sum(r) * 2 ** (BITS + 1) + 3 * sum(r) < 2 ** 53
    index, weights = bilinear_weights(n, 1)
    assert int(weights.sum()) == ONE and weights.shape == (1, n)
    assert dense(n, 1) == reference_weights(n, 1)


def test_tiny_cases_by_hand():
    # 4 -> 2: output 0 is centred on 1.0 (input centres 0.5, 1.5, 2.5, 3.5), support 2:
    # r = 2M - |(2j + 1) * 2 - 4| with M = 4 gives 6, 6, 2, 0: weights 3/7, 3/7, 1/7, and
    # round(S / 14 * 2^22) = 0, 1797559, 3595118, 4194304 gives the integers.
    index, weights = bilinear_weights(4, 2)
    assert index.tolist() == [[0, 1, 2], [1, 2, 3]]
    assert weights.tolist() == [[1797559, 1797559, 599186], [599186, 1797559, 1797559]]
    # (1797559 * 10 + 1797559 * 20 + 599186 * 30 + 2^21) >> 22 = 73999502 >> 22 = 17 (120/7 =
    # 17.14); (599186 * 20 + 1797559 * 30 + 1797559 * 40 + 2^21) >> 22 = 33 (230/7 = 32.86).
    line = np.array([[[10], [20], [30], [40]]], np.uint8)
    assert resize_bilinear(line, 1, 2).ravel().tolist() == [17, 33]
    # 2 -> 3: outputs centred on 1/3, 1, 5/3 input pixels: 1, 1/2 + 1/2, 1 (padding taps 0).
    index, weights = bilinear_weights(2, 3)
    assert weights.tolist() == [[ONE, 0], [ONE // 2, ONE // 2], [ONE, 0]]
    assert index.tolist() == [[0, 0], [0, 1], [1, 1]]
    # Ties round half up: 127.5 -> 128, 32767.5 -> 32768, 1.5 -> 2, -2.5 -> -2 (not -3).
    for values, dtype, expected in (([0, 255], np.uint8, [0, 128, 255]),
                                    ([0, 65535], np.uint16, [0, 32768, 65535]),
                                    ([1, 2], np.uint8, [1, 2, 2]),
                                    ([-3, -2], np.int8, [-3, -2, -2])):
        line = np.array(values, dtype)[None, :, None]
        assert resize_bilinear(line, 1, 3).ravel().tolist() == expected
        assert resize_bilinear(line.transpose(1, 0, 2), 3, 1).ravel().tolist() == expected


def test_each_pass_rounds_before_the_next():
    """[[0, 1], [1, 2]] -> 3x3: the rows pass makes the middle row [1, 2] (0.5 and 1.5 rounded
    up), so the centre is (1 + 2) / 2 -> 2 where the exact mean of the four is 1."""
    img = np.array([[0, 1], [1, 2]], np.uint8)[..., None]
    assert resize_bilinear(img, 3, 3)[..., 0].tolist() == [[0, 1, 1], [1, 2, 2], [1, 2, 2]]


# --------------------------------------------------------------------- every dtype's path


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32,
                                   np.int64, np.uint64])
def test_every_integer_path_is_the_docstring_arithmetic(dtype):
    """8-bit (int32 sums), 16- and 32-bit (int64) and 64-bit (Python integers, one tap at a
    time) evaluations against the formulas in Python integers, extremes included."""
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    shapes = ((7, 10, 3, 3, 3), (2, 3, 3, 3, 4), (5, 5, 1, 13, 7), (1, 1, 2, 3, 5), (9, 1, 4, 2, 1),
              (4, 6, 5, 4, 9), (13, 21, 3, 13, 5), (31, 9, 1, 6, 5))
    for h, w, c, out_h, out_w in shapes:
        img = rng.integers(info.min, info.max, (h, w, c), dtype=dtype, endpoint=True)
        img[0, 0] = info.max
        img[-1, -1] = info.min
        out = resize_bilinear(img, out_h, out_w)
        assert out.dtype == dtype and out.shape == (out_h, out_w, c)
        np.testing.assert_array_equal(out, reference_resize(img, out_h, out_w))


def test_a_cropped_window_resizes_like_a_copy_of_it():
    """fit() passes a centre-cropped view (rows not contiguous): the same pixels as a copy."""
    rng = np.random.default_rng(4)
    for dtype in (np.uint8, np.uint16):
        img = rng.integers(0, np.iinfo(dtype).max, (48, 64, 3), dtype=dtype, endpoint=True)
        view = img[:, 8:56]
        assert not view.flags.c_contiguous
        copy = np.ascontiguousarray(view)
        for out_h, out_w in ((10, 10), (48, 10), (10, 48), (60, 70)):
            np.testing.assert_array_equal(resize_bilinear(view, out_h, out_w),
                                          resize_bilinear(copy, out_h, out_w))
        np.testing.assert_array_equal(resize_bilinear(view, 10, 10), reference_resize(copy, 10, 10))


def test_float_pixels_follow_the_specified_order():
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        for h, w, out_h, out_w in ((7, 10, 3, 3), (2, 3, 3, 4), (9, 4, 9, 2), (5, 5, 5, 5)):
            img = rng.normal(size=(h, w, 2)).astype(dtype)
            out = resize_bilinear(img, out_h, out_w)
            assert out.dtype == dtype
            np.testing.assert_array_equal(out, reference_float(img, out_h, out_w))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8, np.int16, np.int32, np.uint64])
def test_constant_images_stay_constant(dtype):
    """Each weight row sums to exactly 2^BITS: a constant image resizes to itself, at the
    type's extremes too (0 and 65535 for 16-bit depth)."""
    info = np.iinfo(dtype)
    for value in (info.min, info.max, 0):
        for h, w, c, out_h, out_w in ((480, 640, 1, 64, 64), (7, 10, 3, 33, 2), (1, 1, 1, 5, 3)):
            if np.dtype(dtype).itemsize > 2 and h > 100:
                continue  # the one-tap-at-a-time paths: small images keep the test quick
            img = np.full((h, w, c), value, dtype)
            out = resize_bilinear(img, out_h, out_w)
            assert out.dtype == dtype and (out == value).all(), (value, h, w, out_h, out_w)


def test_sizes_below_one_are_refused():
    with pytest.raises(ValueError, match="sizes must be positive"):
        resize_bilinear(np.zeros((4, 4, 1), np.uint8), 0, 2)
    with pytest.raises(ValueError, match="sizes must be positive"):
        bilinear_weights(0, 3)


# ----------------------------------------------------------------------------- Pillow


@pytest.mark.parametrize("size,out", [((480, 640), (64, 64)), ((480, 640), (224, 224)),
                                      ((7, 10), (3, 3)), ((37, 53), (16, 16)), ((31, 9), (6, 5)),
                                      ((2, 3), (3, 4)), ((16, 16), (61, 40)),
                                      ((100, 80), (224, 224)), ((13, 200), (5, 40)),
                                      ((1, 1), (4, 3))])
def test_agrees_with_pillow_bilinear_within_one_grey_level(size, out):
    """Pillow's BILINEAR is the same triangle filter, but resizes columns first, then rows, and
    rounds its own 22-bit weights one by one. The tolerance, 1 grey level: each side rounds
    its first pass to 8 bits (an error of at most 1/2 level, which the second pass's weights,
    summing to 1, pass on at most whole), so before its last rounding each side is within
    1/2 level of the exact filter E (plus the weights' quantisation, below 0.001 level
    here), and rounding half up then gives floor(E) or floor(E) + 1 on both sides. Measured:
    about 1 value in 10 differs, always by 1."""
    rng = np.random.default_rng(sum(size) + sum(out))
    y, x = np.mgrid[0:size[0], 0:size[1]]
    images = [rng.integers(0, 256, size + (3,), dtype=np.uint8),
              np.stack([(x * 7 + y * 3) % 256, (x * x + y) % 256, (x * y) % 256],
                       -1).astype(np.uint8),
              (rng.integers(0, 2, size) * 255).astype(np.uint8)]  # gray, 0 or 255: sharp edges
    for img in images:
        ours = image_ops.resize_bilinear(img if img.ndim == 3 else img[..., None], *out)
        pillow = np.asarray(Image.fromarray(img).resize(out[::-1], Image.BILINEAR))
        pillow = pillow if pillow.ndim == 3 else pillow[..., None]
        assert np.abs(ours.astype(int) - pillow.astype(int)).max() <= 1
