package org.discomkd.edgedemo

import kotlin.math.abs
import kotlin.math.floor
import kotlin.math.max
import kotlin.math.min

/**
 * The inference contract of an exported model, in plain Kotlin (no Android classes, so
 * it runs in JVM unit tests). Every step mirrors edge_demo/ (image_ops.py, preprocessing.py,
 * runtime.py and classify.py's top-k) line for line:
 *
 *  1. 8-bit pixels; a 1-channel model gets ITU-R 601 luma
 *     (19595 R + 38470 G + 7471 B + 32768) >> 16, as Pillow's convert("L").
 *  2. If the size differs from the model's: centre-crop to the model's aspect ratio,
 *     then a separable triangle ("bilinear") filter, half-pixel centres, widened by the
 *     scale factor when shrinking; rows first, then columns; rounded half up, clamped.
 *  3. x = float32(raw) * float32(scale) + float32(offset), clipped if the card says so.
 *  4. int8/uint8 inputs: q = rint(x / scale) + zero_point, clamped; outputs
 *     dequantized as (q - zero_point) * scale.
 *  5. Top-k: classes by descending probability, ties by lower index.
 */
object InferenceContract {

    /** What the card says about the input of an 8-bit image model. */
    data class ImageInput(
        val height: Int,
        val width: Int,
        val channels: Int,
        val scale: Float,
        val offset: Float,
        val clip: FloatArray?,
    )

    /** Read access to decoded 8-bit pixels: value 0..255 at row y, column x, channel c. */
    fun interface Pixels {
        fun at(y: Int, x: Int, c: Int): Int
    }

    fun luma(r: Int, g: Int, b: Int): Int = (19595 * r + 38470 * g + 7471 * b + 32768) ushr 16

    /** Android's packed ARGB pixels as RGB (3 channels) or luma (1 channel). */
    fun argbPixels(argb: IntArray, width: Int, channels: Int): Pixels =
        if (channels == 3) {
            Pixels { y, x, c -> (argb[y * width + x] shr (16 - 8 * c)) and 0xFF }
        } else {
            Pixels { y, x, _ ->
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

    /** (nOut x nIn) triangle-filter weights, each row summing to 1. */
    fun bilinearWeights(nIn: Int, nOut: Int): Array<DoubleArray> {
        val scale = nIn.toDouble() / nOut
        val support = max(scale, 1.0)
        return Array(nOut) { o ->
            val centre = (o + 0.5) * scale
            val row = DoubleArray(nIn) { j -> max(0.0, 1.0 - abs(j + 0.5 - centre) / support) }
            val sum = row.sum()
            for (j in row.indices) row[j] /= sum
            row
        }
    }

    private fun band(weights: DoubleArray): IntRange {
        val lo = weights.indexOfFirst { it != 0.0 }
        val hi = weights.indexOfLast { it != 0.0 }
        return lo..hi
    }

    /** Resize the window `box` of `src` to outH x outW; returns HWC values 0..255. */
    fun resizeBilinear(src: Pixels, box: Box, channels: Int, outH: Int, outW: Int): IntArray {
        val h = box.height
        val w = box.width
        val wy = bilinearWeights(h, outH)
        val wx = bilinearWeights(w, outW)
        val rows = DoubleArray(outH * w * channels)  // rows first ...
        for (o in 0 until outH) {
            for (j in band(wy[o])) {
                val weight = wy[o][j]
                for (x in 0 until w) for (c in 0 until channels) {
                    rows[(o * w + x) * channels + c] += weight * src.at(box.top + j, box.left + x, c)
                }
            }
        }
        val out = IntArray(outH * outW * channels)  // ... then columns
        for (p in 0 until outW) {
            val cols = band(wx[p])
            for (o in 0 until outH) for (c in 0 until channels) {
                var acc = 0.0
                for (j in cols) acc += wx[p][j] * rows[(o * w + j) * channels + c]
                out[(o * outW + p) * channels + c] = min(255.0, max(0.0, floor(acc + 0.5))).toInt()
            }
        }
        return out
    }

    /** The float32 model input (HWC, flattened) of an image `height` x `width`.
     *  Returns the input and whether it had to be resized. */
    fun toModelInput(src: Pixels, height: Int, width: Int, spec: ImageInput): Pair<FloatArray, Boolean> {
        val c = spec.channels
        val resized = height != spec.height || width != spec.width
        val raw: IntArray = if (resized) {
            resizeBilinear(src, centreCropBox(height, width, spec.height, spec.width), c,
                spec.height, spec.width)
        } else {
            IntArray(height * width * c) { i -> src.at(i / c / width, (i / c) % width, i % c) }
        }
        val x = FloatArray(raw.size) { i -> raw[i].toFloat() * spec.scale + spec.offset }
        spec.clip?.let { (low, high) ->
            for (i in x.indices) x[i] = min(high, max(low, x[i]))
        }
        return x to resized
    }

    fun quantize(x: Float, scale: Float, zeroPoint: Int, low: Int, high: Int): Int =
        min(high.toDouble(), max(low.toDouble(), Math.rint((x / scale).toDouble()) + zeroPoint)).toInt()

    fun dequantize(q: Int, scale: Float, zeroPoint: Int): Float = (q - zeroPoint).toFloat() * scale

    /** Indices of the k largest probabilities, highest first, ties by lower index. */
    fun topK(probabilities: FloatArray, k: Int): List<Int> =
        probabilities.indices.sortedWith(compareByDescending<Int> { probabilities[it] }.thenBy { it })
            .take(min(k, probabilities.size))
}
