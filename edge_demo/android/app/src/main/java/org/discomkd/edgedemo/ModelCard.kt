package org.discomkd.edgedemo

import org.json.JSONException
import org.json.JSONObject

/**
 * The parts of an export's model_card.json (format [FORMAT]) this app uses, with the same
 * field names as edge_demo/model_card.py, and its checks (and messages) of those fields.
 * The raw input is named by
 * `preprocessing.encoding` alone; `preprocessing.raw` is a description and is not read.
 * Parse errors are IllegalArgumentExceptions whose message says what is wrong.
 */
class ModelCard(
    val modality: String,
    val kind: String,
    val modelFile: String,
    val quantization: String,
    /** [1, H, W, C] for images. */
    val inputShape: IntArray,
    /** `preprocessing.encoding`: one of [ENCODINGS]. */
    val encoding: String,
    val scale: Float,
    val offset: Float,
    val clip: FloatArray?,
    val classNames: List<String>,
) {
    /** True for the models this sample can feed from a photo: 8-bit RGB or grayscale images
     *  (depth, audio and already-normalised models need the Pi demo). [parse] has checked
     *  that rgb8 comes with 3 channels and gray8 with 1. */
    val isEightBitImage: Boolean
        get() = kind == "image" && (encoding == "rgb8" || encoding == "gray8")

    fun imageInput(): InferenceContract.ImageInput {
        require(isEightBitImage) {
            "This sample classifies 8-bit RGB or grayscale image models; the bundled model " +
                "'$modality' has encoding $encoding (kind $kind). Use edge_demo/classify.py for it."
        }
        return InferenceContract.ImageInput(
            height = inputShape[1], width = inputShape[2], channels = inputShape[3],
            scale = scale, offset = offset, clip = clip,
        )
    }

    companion object {
        const val FORMAT = "discomkd-keras/model-card/v2"
        const val OLD_FORMAT = "discomkd-keras/model-card/v1"
        const val REEXPORT = "re-export the model with `discomkd-keras export`"

        /** What an encoding feeds: model kinds, and input channels (0: any). */
        class Encoding(val kinds: List<String>, val channels: Int)

        /** The encodings of model_card.ENCODINGS, in its order. */
        val ENCODINGS = linkedMapOf(
            "rgb8" to Encoding(listOf("image"), 3),
            "gray8" to Encoding(listOf("image"), 1),
            "depth_mm_uint16" to Encoding(listOf("image"), 1),
            "wav_pcm16" to Encoding(listOf("spectrogram"), 1),
            "float_raw" to Encoding(listOf("image", "vector"), 0),
            "bands_tiff" to Encoding(listOf("image"), 0),
            "array_npy" to Encoding(listOf("image", "vector"), 0),
        )

        private fun invalid(what: String) =
            IllegalArgumentException("model_card.json: invalid model card: $what.")

        fun parse(text: String): ModelCard {
            val json = try {
                JSONObject(text)
            } catch (e: JSONException) {
                throw IllegalArgumentException("model_card.json: the model card is not valid JSON (${e.message}).")
            }
            val format = json.optString("format")
            if (format == OLD_FORMAT) {
                throw IllegalArgumentException("model_card.json: $OLD_FORMAT is an old model card " +
                    "without an input encoding; $REEXPORT to get a $FORMAT card.")
            }
            require(format == FORMAT) {
                val what = if (json.has("format")) "unknown format '$format'" else "no 'format' entry"
                "model_card.json: $what; this reader understands $FORMAT cards ($REEXPORT)."
            }
            try {
                val input = json.getJSONObject("input")
                val shapeJson = input.getJSONArray("shape")
                val shape = IntArray(shapeJson.length()) { shapeJson.getInt(it) }
                val pre = json.getJSONObject("preprocessing")
                if (!pre.has("encoding")) throw invalid("no 'preprocessing.encoding' entry")
                val encoding = pre.getString("encoding")
                val fits = ENCODINGS[encoding]
                    ?: throw invalid("preprocessing.encoding '$encoding' is not one of ${ENCODINGS.keys.joinToString(", ")}")
                val kind = json.getString("kind")
                if (kind !in fits.kinds) {
                    val a = if (kind.isNotEmpty() && kind[0] in "aeiou") "an" else "a"
                    throw invalid("encoding '$encoding' is for ${fits.kinds.joinToString(" or ")} " +
                        "models, not $a $kind model")
                }
                if (kind == "image") {
                    if (shape.size != 4 || shape[0] != 1) {
                        throw invalid("input.shape must be [1, H, W, C] (batch 1) for an image model; " +
                            "got ${shape.contentToString()}")
                    }
                    if (fits.channels != 0 && shape[3] != fits.channels) {
                        throw invalid("encoding '$encoding' needs a ${fits.channels}-channel input; " +
                            "the input shape is ${shape.contentToString()}")
                    }
                    for ((key, dim) in listOf("height" to shape[1], "width" to shape[2])) {
                        if (pre.has(key) && pre.getInt(key) != dim) {
                            throw invalid("preprocessing.$key = ${pre.getInt(key)} but the input shape " +
                                "is ${shape.contentToString()}")
                        }
                    }
                }
                val clip = pre.optJSONArray("clip")?.let {
                    if (it.length() != 2) throw invalid("preprocessing.clip must be [low, high]")
                    floatArrayOf(it.getDouble(0).toFloat(), it.getDouble(1).toFloat())
                }
                val names = json.optJSONArray("class_names")
                return ModelCard(
                    modality = json.getString("modality"),
                    kind = kind,
                    modelFile = json.getString("model_file"),
                    quantization = json.optString("quantization", "?"),
                    inputShape = shape,
                    encoding = encoding,
                    // JSON numbers are doubles; the model input uses their float32 values,
                    // as edge_demo/preprocessing.py does with np.float32(scale).
                    scale = pre.optDouble("scale", 1.0).toFloat(),
                    offset = pre.optDouble("offset", 0.0).toFloat(),
                    clip = clip,
                    classNames = if (names == null) emptyList()
                    else List(names.length()) { names.getString(it) },
                )
            } catch (e: JSONException) {
                throw IllegalArgumentException("model_card.json: invalid model card: ${e.message}.")
            }
        }
    }
}
