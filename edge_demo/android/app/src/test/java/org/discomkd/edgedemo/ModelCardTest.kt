package org.discomkd.edgedemo

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/**
 * ModelCard against cards shaped like those `discomkd-keras export` writes (v2), and the
 * messages edge_demo/model_card.py gives for the same bad cards.
 */
class ModelCardTest {

    private fun card(
        encoding: String? = "rgb8",
        shape: String = "[1, 16, 16, 3]",
        kind: String = "image",
        format: String = ModelCard.FORMAT,
        raw: String = "8-bit RGB image, HxWx3"
    ): String {
        val enc = if (encoding == null) "" else "\"encoding\": \"$encoding\","
        return """
            {"format": "$format", "modality": "rgb", "kind": "$kind", "model_file": "rgb.tflite",
             "labels_file": "labels.txt", "class_names": ["a", "b", "c"], "quantization": "int8",
             "input": {"name": "x", "shape": $shape, "dtype": "uint8",
                       "quantization": {"scale": 0.5, "zero_point": 3}},
             "output": {"name": "y", "shape": [1, 3], "dtype": "float32", "quantization": null},
             "preprocessing": {$enc "raw": "$raw", "layout": "HWC", "scale": 0.00392156862745098,
                               "offset": 0.0, "height": 16, "width": 16},
             "source": {"run": "my-run", "checkpoint_sha256": "${"0".repeat(64)}", "epoch": 3}}
        """.trimIndent()
    }

    private fun refused(text: String): String {
        try {
            ModelCard.parse(text)
        } catch (e: IllegalArgumentException) {
            return e.message ?: ""
        }
        fail("the card was accepted")
        return ""
    }

    @Test
    fun readsAnRgb8Card() {
        val c = ModelCard.parse(card())
        assertEquals("rgb8", c.encoding)
        assertTrue(c.isEightBitImage)
        assertArrayEquals(intArrayOf(1, 16, 16, 3), c.inputShape)
        assertEquals(listOf("a", "b", "c"), c.classNames)
        val input = c.imageInput()
        assertEquals(3, input.channels)
        assertArrayEquals(FloatArray(3) { 1f / 255f }, input.scale, 0f)
    }

    @Test
    fun readsPerChannelScaleAndTheResizePolicy() {
        val text = card().replace("\"scale\": 0.00392156862745098,",
            "\"scale\": [0.5, 0.25, 1], \"offset\": [0, -1, 2.5], " +
                "\"resize\": {\"interpolation\": \"nearest\", \"crop_to_aspect\": false},")
            .replace("\"offset\": 0.0, ", "")
        val c = ModelCard.parse(text)
        assertArrayEquals(floatArrayOf(0.5f, 0.25f, 1f), c.scale, 0f)
        assertArrayEquals(floatArrayOf(0f, -1f, 2.5f), c.offset, 0f)
        assertEquals("nearest", c.interpolation)
        assertFalse(c.cropToAspect)
        val input = c.imageInput()
        assertTrue(input.nearest)
        assertFalse(input.cropToAspect)
        // Without a resize entry: bilinear with a centre crop (nearest for depth).
        assertEquals("bilinear", ModelCard.parse(card()).interpolation)
        assertTrue(ModelCard.parse(card()).cropToAspect)
        assertEquals("nearest", ModelCard.parse(card("depth_mm_uint16", "[1, 16, 16, 1]")).interpolation)
        assertEquals(
            "model_card.json: invalid model card: preprocessing.scale must be a number or 3 numbers " +
                "(one per channel); got [0.5, 0.25].",
            refused(card().replace("0.00392156862745098", "[0.5, 0.25]"))
        )
    }

    @Test
    fun labelsComeFromTheLabelsFileOrTheCard() {
        val c = ModelCard.parse(card())
        assertEquals(listOf("cat", "dog", "bird"), c.labels(" cat\ndog\n\nbird \n"))
        assertEquals(listOf("a", "b", "c"), c.labels(null))
        try {
            c.labels("cat\ndog\n", "assets/model/labels.txt")
            fail("two labels for three classes were accepted")
        } catch (e: IllegalArgumentException) {
            assertEquals("assets/model/labels.txt has 2 labels but the card's output has 3 classes; " +
                "the folder mixes files of different exports.", e.message)
        }
    }

    @Test
    fun theEncodingDecidesNotTheDescription() {
        assertTrue(ModelCard.parse(card("gray8", "[1, 16, 16, 1]", raw = "")).isEightBitImage)
        // The free text says 8-bit; the encoding says depth: depth it is.
        val depth = ModelCard.parse(card("depth_mm_uint16", "[1, 16, 16, 1]", raw = "8-bit"))
        assertFalse(depth.isEightBitImage)
        try {
            depth.imageInput()
            fail("a depth model was accepted")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!.contains("'rgb' has encoding depth_mm_uint16 (kind image)"))
        }
        assertFalse(ModelCard.parse(card("float_raw")).isEightBitImage)
    }

    @Test
    fun oldAndUnknownFormatsAreRefused() {
        assertEquals(
            "model_card.json: discomkd-keras/model-card/v1 is an old model card without an input " +
                "encoding; re-export the model with `discomkd-keras export` to get a " +
                "discomkd-keras/model-card/v2 card.",
            refused(card(encoding = null, format = "discomkd-keras/model-card/v1"))
        )
        assertEquals(
            "model_card.json: unknown format 'discomkd-keras/model-card/v3'; this reader " +
                "understands discomkd-keras/model-card/v2 cards (re-export the model with " +
                "`discomkd-keras export`).",
            refused(card(format = "discomkd-keras/model-card/v3"))
        )
        assertEquals(
            "model_card.json: no 'format' entry; this reader understands " +
                "discomkd-keras/model-card/v2 cards (re-export the model with `discomkd-keras export`).",
            refused(card().replace("\"format\": \"${ModelCard.FORMAT}\", ", ""))
        )
    }

    @Test
    fun badEncodingsAreRefused() {
        val prefix = "model_card.json: invalid model card: "
        assertEquals(prefix + "no 'preprocessing.encoding' entry.", refused(card(encoding = null)))
        assertEquals(
            prefix + "preprocessing.encoding 'jpeg' is not one of rgb8, gray8, depth_mm_uint16, " +
                "wav_pcm16, float_raw, bands_tiff, array_npy.",
            refused(card("jpeg"))
        )
        assertEquals(
            prefix + "encoding 'gray8' needs a 1-channel input; the input shape is [1, 16, 16, 3].",
            refused(card("gray8"))
        )
        assertEquals(
            prefix + "encoding 'wav_pcm16' is for spectrogram models, not an image model.",
            refused(card("wav_pcm16"))
        )
        assertEquals(
            prefix + "input.shape must be [1, H, W, C] (batch 1) for an image model; got [2, 16, 16, 3].",
            refused(card(shape = "[2, 16, 16, 3]"))
        )
        assertEquals(
            prefix + "preprocessing.height = 16 but the input shape is [1, 28, 16, 3].",
            refused(card(shape = "[1, 28, 16, 3]"))
        )
    }
}
