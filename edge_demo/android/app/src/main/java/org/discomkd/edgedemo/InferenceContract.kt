package org.discomkd.edgedemo

import kotlin.math.abs
import kotlin.math.max
import kotlin.math.min

/**
 * The inference contract of an exported model, in plain Kotlin (no Android classes, so
 * it runs in JVM unit tests). Every step mirrors edge_demo/ (image_ops.py, preprocessing.py,
 * runtime.py and classify.py's top-k) line for line:
 *
 *  1. 8-bit pixels; a 1-channel model gets ITU-R 601 luma
 *     (19595 R + 38470 G + 7471 B + 32768) >> 16, as Pillow's convert("L").
 *  2. If the size differs from the model's (image_ops.fit): centre-crop to the model's
 *     aspect ratio unless the card's `preprocessing.resize.crop_to_aspect` is false, then
 *     resize as `preprocessing.resize.interpolation` says: a separable triangle ("bilinear")
 *     filter, half-pixel centres, widened by the scale factor when shrinking, rows first,
 *     then columns, in integer fixed point (22-bit integer weights, Long sums, rounded half
 *     up and clamped after each pass); or nearest neighbour.
 *  3. x = float32(raw) * float32(scale[c]) + float32(offset[c]) (one scale and offset per
 *     channel), clipped if the card says so.
 *  4. int8/uint8 inputs: q = rint(x / scale) + zero_point, clamped; outputs
 *     dequantized as (q - zero_point) * scale.
 *  5. Top-k: classes by descending probability, ties by lower index.
 *
 * Written for Kotlin 1.3 and later (no trailing commas, no `fun interface`), so that
 * Debian's kotlinc compiles it for the JVM test (edge_demo/android/README.md).
 */
object InferenceContract {

    /** What the card says about the input of an 8-bit image model. */
    class ImageInput(
        val height: Int,
        val width: Int,
        val channels: Int,
        /** float32 scale and offset, one per channel. */
        val scale: FloatArray,
        val offset: FloatArray,
        val clip: FloatArray?,
        /** `preprocessing.resize`: nearest neighbour instead of bilinear. */
        val nearest: Boolean = false,
        /** `preprocessing.resize`: centre-crop to the model's aspect ratio before resizing. */
        val cropToAspect: Boolean = true
    ) {
        init {
            require(scale.size == channels && offset.size == channels) {
                "scale and offset need one value per channel ($channels)"
            }
        }
    }

    /** Read access to decoded 8-bit pixels: value 0..255 at row y, column x, channel c. */
    interface Pixels {
        fun at(y: Int, x: Int, c: Int): Int
    }

    /** [Pixels] from a function of (y, x, c). */
    fun pixels(f: (Int, Int, Int) -> Int): Pixels = object : Pixels {
        override fun at(y: Int, x: Int, c: Int): Int = f(y, x, c)
    }

    fun luma(r: Int, g: Int, b: Int): Int = (19595 * r + 38470 * g + 7471 * b + 32768) ushr 16

    /** Android's packed ARGB pixels as RGB (3 channels) or luma (1 channel). */
    fun argbPixels(argb: IntArray, width: Int, channels: Int): Pixels =
        if (channels == 3) {
            pixels { y, x, c -> (argb[y * width + x] shr (16 - 8 * c)) and 0xFF }
        } else {
            pixels { y, x, _ ->
                val p = argb[y * width + x]
                luma((p shr 16) and 0xFF, (p shr 8) and 0xFF, p and 0xFF)
            }
        }

    data class Box(val top: Int, val left: Int, val height: Int, val width: Int)

    /** The largest centred window with the aspect ratio outW / outH. */
    fun centreCropBox(height: Int, width: Int, outH: Int, outW: Int): Box =
        if (height.toLong() * outW > width.toLong() * outH) {  // too tall
            val h = max(1, Math.rint(width.toDouble() * outH / outW).toInt())
            Box((height - h) / 2, 0, h, width)
        } else {
            val w = max(1, Math.rint(height.toDouble() * outW / outH).toInt())
            Box(0, (width - w) / 2, height, w)
        }

    /** Fraction bits of the resize weights: integer fixed point, as image_ops.BITS. */
    const val BITS = 22
    private const val HALF = 1L shl (BITS - 1)

    /** The integer weights of a resize pass from nIn to nOut pixels: output o reads inputs
     *  first[o], first[o] + 1, ... with weights[o] (at least one, all >= 0, summing to exactly
     *  1 shl BITS). image_ops.resize_bilinear's formulas, in Long arithmetic only (every
     *  division has a non-negative numerator, so `/` floors as Python's `//`):
     *  r[o][j] = max(0, 2M - |(2j + 1) nOut - (2o + 1) nIn|) with M = max(nIn, nOut),
     *  R = sum of r[o][j], S[k] = r[o][first] + ... + r[o][k - 1],
     *  C[k] = (S[k] * 2^(BITS+1) + R) / (2R), weight of input j = C[j + 1] - C[j]. */
    class Taps(val first: IntArray, val weights: Array<LongArray>)

    fun bilinearWeights(nIn: Int, nOut: Int): Taps {
        require(nIn >= 1 && nOut >= 1) {
            "cannot resize $nIn pixels to $nOut: sizes must be positive"
        }
        val m = max(nIn, nOut).toLong()
        val first = IntArray(nOut)
        val weights = Array(nOut) { o ->
            val centre2 = (2L * o + 1) * nIn
            // r > 0 exactly where |(2j + 1) nOut - centre2| < 2M: from j = lo to j = hi.
            val lo = (max(0L, centre2 - 2 * m + nOut) / (2L * nOut)).toInt()
            val hi = min(nIn - 1L, (centre2 + 2 * m - nOut - 1) / (2L * nOut)).toInt()
            val r = LongArray(hi - lo + 1) { k ->
                max(0L, 2 * m - abs((2L * (lo + k) + 1) * nOut - centre2))
            }
            val total = r.sum()
            var partial = 0L
            var previous = 0L
            first[o] = lo
            LongArray(r.size) { k ->
                partial += r[k]
                val cumulative = (partial * (2L shl BITS) + total) / (2 * total)
                val weight = cumulative - previous
                previous = cumulative
                weight
            }
        }
        return Taps(first, weights)
    }

    /** (acc + 2^(BITS-1)) >> BITS, rounded half up, clamped to 0..255. */
    private fun roundClip(acc: Long): Int = min(255L, max(0L, (acc + HALF) shr BITS)).toInt()

    /** Resize the window `box` of `src` to outH x outW; returns HWC values 0..255. The
     *  integer fixed point of image_ops.resize_bilinear: rows first, each rounded to 0..255,
     *  then columns; Long sums (below 2^30 for 8-bit pixels), so bit for bit the Python's. */
    fun resizeBilinear(src: Pixels, box: Box, channels: Int, outH: Int, outW: Int): IntArray {
        val w = box.width
        val ty = bilinearWeights(box.height, outH)
        val tx = bilinearWeights(w, outW)
        val rows = IntArray(outH * w * channels)  // rows first ...
        for (o in 0 until outH) {
            val top = box.top + ty.first[o]
            val weights = ty.weights[o]
            for (x in 0 until w) for (c in 0 until channels) {
                var acc = 0L
                for (k in weights.indices) acc += weights[k] * src.at(top + k, box.left + x, c)
                rows[(o * w + x) * channels + c] = roundClip(acc)
            }
        }
        val out = IntArray(outH * outW * channels)  // ... then columns
        for (p in 0 until outW) {
            val left = tx.first[p]
            val weights = tx.weights[p]
            for (o in 0 until outH) for (c in 0 until channels) {
                var acc = 0L
                for (k in weights.indices) acc += weights[k] * rows[(o * w + left + k) * channels + c]
                out[(o * outW + p) * channels + c] = roundClip(acc)
            }
        }
        return out
    }

    /** Source index of each of `nOut` outputs: floor((i + 0.5) * nIn / nOut), as
     *  image_ops.resize_nearest. */
    private fun nearestIndex(nIn: Int, nOut: Int): IntArray =
        IntArray(nOut) { i -> min(((i + 0.5) * nIn / nOut).toInt(), nIn - 1) }

    /** Nearest-neighbour resize of the window `box` of `src` to outH x outW (HWC). */
    fun resizeNearest(src: Pixels, box: Box, channels: Int, outH: Int, outW: Int): IntArray {
        val rows = nearestIndex(box.height, outH)
        val cols = nearestIndex(box.width, outW)
        return IntArray(outH * outW * channels) { i ->
            val c = i % channels
            val p = i / channels
            src.at(box.top + rows[p / outW], box.left + cols[p % outW], c)
        }
    }

    /** The raw 8-bit sample at the model's size (HWC, flattened) and image_ops.fit's note
     *  saying what was done to an image `height` x `width` (null: nothing, same size). */
    class Raw(val values: IntArray, val note: String?)

    fun rawInput(src: Pixels, height: Int, width: Int, spec: ImageInput): Raw {
        val c = spec.channels
        if (height == spec.height && width == spec.width) {
            return Raw(IntArray(height * width * c) { i -> src.at(i / c / width, (i / c) % width, i % c) }, null)
        }
        val box = if (spec.cropToAspect) centreCropBox(height, width, spec.height, spec.width)
        else Box(0, 0, height, width)
        val values = if (spec.nearest) resizeNearest(src, box, c, spec.height, spec.width)
        else resizeBilinear(src, box, c, spec.height, spec.width)
        val cropped = if (box.height != height || box.width != width) {
            ", centre-cropped to ${box.width}x${box.height} first to keep the aspect ratio"
        } else ""
        val how = if (spec.nearest) "nearest neighbour" else "bilinear"
        return Raw(values, "resized ${width}x$height -> ${spec.width}x${spec.height} ($how$cropped).")
    }

    /** preprocessing.scale_raw for 8-bit images: x = raw * scale[c] + offset[c] in float32,
     *  clipped to the card's clip if it has one. */
    fun scaleRaw(raw: IntArray, spec: ImageInput): FloatArray {
        val c = spec.channels
        val x = FloatArray(raw.size) { i -> raw[i].toFloat() * spec.scale[i % c] + spec.offset[i % c] }
        val clip = spec.clip
        if (clip != null) {
            for (i in x.indices) x[i] = min(clip[1], max(clip[0], x[i]))
        }
        return x
    }

    /** The float32 model input (HWC, flattened) of an image `height` x `width`, and the
     *  note of [rawInput] (null when the image had the model's size). */
    fun toModelInput(src: Pixels, height: Int, width: Int, spec: ImageInput): Pair<FloatArray, String?> {
        val raw = rawInput(src, height, width, spec)
        return scaleRaw(raw.values, spec) to raw.note
    }

    fun quantize(x: Float, scale: Float, zeroPoint: Int, low: Int, high: Int): Int =
        min(high.toDouble(), max(low.toDouble(), Math.rint((x / scale).toDouble()) + zeroPoint)).toInt()

    fun dequantize(q: Int, scale: Float, zeroPoint: Int): Float = (q - zeroPoint).toFloat() * scale

    /** Indices of the k largest probabilities, highest first, ties by lower index: the order
     *  of classify.py's np.argsort(-p, kind="stable") (-0.0 ties with 0.0, NaN comes last). */
    fun topK(probabilities: FloatArray, k: Int): List<Int> =
        probabilities.indices.sortedWith(Comparator { a, b ->
            val pa = probabilities[a]
            val pb = probabilities[b]
            when {
                pa.isNaN() != pb.isNaN() -> if (pa.isNaN()) 1 else -1
                pa > pb -> -1
                pa < pb -> 1
                else -> a.compareTo(b)
            }
        }).take(min(k, probabilities.size))
}
