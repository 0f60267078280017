package org.discomkd.edgedemo

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Test

/**
 * The Kotlin contract against numbers printed by edge_demo/image_ops.py and runtime.py for the
 * same synthetic image, so that the app and the Pi demo stay identical:
 *
 *   y, x = np.mgrid[0:7, 0:10]
 *   img = np.stack([(x*37 + y*11) % 256, (x*5 + y*53) % 256, (x*x + 3*y*y) % 256], -1)
 *   centre_crop_box(7, 10, 3, 3); resize_bilinear(crop, 3, 3); luma(...)
 *   resize_bilinear(img[:2, :3], 3, 4); bilinear_weights(4, 2), bilinear_weights(2, 3)
 *   quantize([0, .5, 1, 0.00196078431372549], 1/255, -128, int8)
 */
class InferenceContractTest {

    private val width = 10
    private val height = 7
    private val image = InferenceContract.pixels { y, x, c ->
        when (c) {
            0 -> (x * 37 + y * 11) % 256
            1 -> (x * 5 + y * 53) % 256
            else -> (x * x + 3 * y * y) % 256
        }
    }

    @Test
    fun centreCropKeepsTheModelsAspectRatio() {
        assertEquals(InferenceContract.Box(0, 1, 7, 7), InferenceContract.centreCropBox(height, width, 3, 3))
        assertEquals(InferenceContract.Box(1, 0, 4, 4), InferenceContract.centreCropBox(6, 4, 2, 2))
    }

    @Test
    fun shrinkingMatchesThePiDemo() {
        val box = InferenceContract.centreCropBox(height, width, 3, 3)
        val rgb = InferenceContract.resizeBilinear(image, box, 3, 3, 3)
        assertArrayEquals(
            intArrayOf(78, 54, 8, 157, 65, 21, 145, 76, 42, 102, 153, 34, 177, 164, 47, 137, 175, 68,
                126, 80, 85, 190, 91, 98, 83, 102, 119),
            rgb
        )
        val luma = IntArray(9) { InferenceContract.luma(rgb[3 * it], rgb[3 * it + 1], rgb[3 * it + 2]) }
        assertArrayEquals(intArrayOf(56, 87, 93, 124, 155, 151, 94, 121, 98), luma)
    }

    @Test
    fun growingMatchesThePiDemo() {
        val out = InferenceContract.resizeBilinear(image, InferenceContract.Box(0, 0, 2, 3), 3, 3, 4)
        assertArrayEquals(
            intArrayOf(0, 0, 0, 23, 3, 1, 51, 7, 2, 74, 10, 4, 6, 27, 2, 29, 30, 3, 57, 34, 4, 80,
                37, 6, 11, 53, 3, 34, 56, 4, 62, 60, 5, 85, 63, 7),
            out
        )
    }

    @Test
    fun resizeWeightsAreTheIntegersOfThePiDemo() {
        // image_ops.bilinear_weights(4, 2): r = 6, 6, 2 (3/7, 3/7, 1/7 of 2^22, rounded so that
        // the cumulative sums land on round(S / R * 2^22)); (2, 3): 1, 1/2 + 1/2, 1.
        val down = InferenceContract.bilinearWeights(4, 2)
        assertArrayEquals(intArrayOf(0, 1), down.first)
        assertArrayEquals(longArrayOf(1797559, 1797559, 599186), down.weights[0])
        assertArrayEquals(longArrayOf(599186, 1797559, 1797559), down.weights[1])
        val up = InferenceContract.bilinearWeights(2, 3)
        assertArrayEquals(intArrayOf(0, 0, 1), up.first)
        assertArrayEquals(longArrayOf(4194304), up.weights[0])
        assertArrayEquals(longArrayOf(2097152, 2097152), up.weights[1])
        assertArrayEquals(longArrayOf(4194304), up.weights[2])
        for (nIn in 1..40) for (nOut in 1..40) {
            for (row in InferenceContract.bilinearWeights(nIn, nOut).weights) {
                assertEquals(1L shl InferenceContract.BITS, row.sum())
            }
        }
    }

    @Test
    fun eachResizePassRoundsHalfUp() {
        // [[0, 1], [1, 2]] -> 3x3, as tests/test_image_resize.py: the rows pass gives 0.5 -> 1 and
        // 1.5 -> 2, the columns pass then (1 + 2) / 2 -> 2 where the exact mean is 1.
        val tiny = InferenceContract.pixels { y, x, _ -> y + x }
        assertArrayEquals(intArrayOf(0, 1, 1, 1, 2, 2, 1, 2, 2),
            InferenceContract.resizeBilinear(tiny, InferenceContract.Box(0, 0, 2, 2), 1, 3, 3))
    }

    @Test
    fun theCardsResizePolicyMatchesThePiDemo() {
        // image_ops.fit(img, 3, 3, crop=False) and fit(img, 3, 3, nearest=True)
        val one = FloatArray(3) { 1f }
        val cases = listOf(
            Triple(InferenceContract.ImageInput(3, 3, 3, one, FloatArray(3), null, cropToAspect = false),
                intArrayOf(64, 52, 8, 156, 68, 26, 83, 83, 62, 88, 151, 34, 168, 167, 52, 95, 168, 88,
                    112, 78, 85, 161, 94, 103, 92, 97, 139),
                "resized 10x7 -> 3x3 (bilinear)."),
            Triple(InferenceContract.ImageInput(3, 3, 3, one, FloatArray(3), null, nearest = true),
                intArrayOf(85, 63, 7, 159, 73, 19, 233, 83, 39, 107, 169, 31, 181, 179, 43, 255, 189, 63,
                    129, 19, 79, 203, 29, 91, 21, 39, 111),
                "resized 10x7 -> 3x3 (nearest neighbour, centre-cropped to 7x7 first to keep the " +
                    "aspect ratio).")
        )
        for ((spec, values, note) in cases) {
            val raw = InferenceContract.rawInput(image, height, width, spec)
            assertArrayEquals(values, raw.values)
            assertEquals(note, raw.note)
        }
    }

    @Test
    fun scaleAndOffsetPerChannel() {
        val spec = InferenceContract.ImageInput(1, 1, 3, floatArrayOf(1f, 0.5f, 0.25f),
            floatArrayOf(0f, -1f, 2f), null)
        val x = InferenceContract.scaleRaw(intArrayOf(8, 8, 8), spec)
        assertArrayEquals(floatArrayOf(8f, 3f, 4f), x, 0f)
    }

    @Test
    fun scaleOffsetClipAndQuantization() {
        val spec = InferenceContract.ImageInput(7, 10, 3, FloatArray(3) { 1f / 255f }, FloatArray(3),
            floatArrayOf(0f, 0.5f))
        val (x, note) = InferenceContract.toModelInput(image, height, width, spec)
        assertEquals(null, note)
        assertEquals(7 * 10 * 3, x.size)
        assertEquals(37f * (1f / 255f), x[3], 0f)      // row 0, column 1, red
        assertEquals(0.5f, x.fold(0f) { a, b -> maxOf(a, b) }, 0f)  // clipped
        val q = floatArrayOf(0f, 0.5f, 1f, 0.00196078431372549f).map {
            InferenceContract.quantize(it, 1f / 255f, -128, -128, 127)
        }
        assertEquals(listOf(-128, -1, 127, -128), q)
        assertEquals(0.5f, InferenceContract.dequantize(-128 + 128, 1f / 256f, -128), 0f)
    }

    @Test
    fun topKIsDescendingWithTiesByIndex() {
        assertEquals(listOf(2, 0, 3), InferenceContract.topK(floatArrayOf(0.3f, 0.1f, 0.4f, 0.3f), 3))
    }
}
