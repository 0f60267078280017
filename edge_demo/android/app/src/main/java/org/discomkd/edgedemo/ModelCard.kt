package org.discomkd.edgedemo

import org.json.JSONException
import org.json.JSONObject

/**
 * The parts of an export's model_card.json this app uses: the same fields, and the same
 * checks, as edge_demo/classify.py. Parse errors are IllegalArgumentExceptions whose
 * message says what is wrong.
 */
class ModelCard(
    val modality: String,
    val kind: String,
    val modelFile: String,
    val quantization: String,
    /** [1, H, W, C] for images. */
    val inputShape: IntArray,
    val raw: String,
    val scale: Float,
    val offset: Float,
    val clip: FloatArray?,
    val classNames: List<String>,
) {
    /** True for the models this sample can feed from a photo: 8-bit RGB or grayscale images
     *  (classify.py's "8bit" pixels; depth, audio and vector models need the Pi demo). */
    val isEightBitImage: Boolean
        get() {
            val r = raw.lowercase()
            if (kind != "image" || inputShape.size != 4) return false
            val channels = inputShape[3]
            if ((r.contains("millimet") || r.contains("uint16")) && channels == 1) return false
            return (r.contains("8-bit") || r.contains("uint8")) && (channels == 1 || channels == 3)
        }

    fun imageInput(): InferenceContract.ImageInput {
        require(isEightBitImage) {
            "This sample classifies 8-bit RGB or grayscale image models; the bundled model " +
                "'$modality' is a $kind model (raw input: $raw). Use edge_demo/classify.py for it."
        }
        return InferenceContract.ImageInput(
            height = inputShape[1], width = inputShape[2], channels = inputShape[3],
            scale = scale, offset = offset, clip = clip,
        )
    }

    companion object {
        const val FORMAT_PREFIX = "discomkd-keras/model-card/"

        fun parse(text: String): ModelCard {
            val json = try {
                JSONObject(text)
            } catch (e: JSONException) {
                throw IllegalArgumentException("model_card.json is not valid JSON (${e.message}).")
            }
            try {
                val format = json.optString("format")
                require(format.startsWith(FORMAT_PREFIX)) {
                    "model_card.json: format '$format' is not a $FORMAT_PREFIX* card."
                }
                val input = json.getJSONObject("input")
                val shapeJson = input.getJSONArray("shape")
                val shape = IntArray(shapeJson.length()) { shapeJson.getInt(it) }
                val pre = json.getJSONObject("preprocessing")
                val clip = pre.optJSONArray("clip")?.let {
                    require(it.length() == 2) { "model_card.json: preprocessing.clip must be [low, high]." }
                    floatArrayOf(it.getDouble(0).toFloat(), it.getDouble(1).toFloat())
                }
                val names = json.optJSONArray("class_names")
                val card = ModelCard(
                    modality = json.getString("modality"),
                    kind = json.getString("kind"),
                    modelFile = json.getString("model_file"),
                    quantization = json.optString("quantization", "?"),
                    inputShape = shape,
                    raw = pre.optString("raw", ""),
                    // JSON numbers are doubles; the model input uses their float32 values,
                    // as classify.py does with np.float32(scale).
                    scale = pre.optDouble("scale", 1.0).toFloat(),
                    offset = pre.optDouble("offset", 0.0).toFloat(),
                    clip = clip,
                    classNames = if (names == null) emptyList()
                    else List(names.length()) { names.getString(it) },
                )
                if (card.kind == "image") {
                    for ((key, dim) in listOf("height" to shape.getOrNull(1), "width" to shape.getOrNull(2))) {
                        if (pre.has(key)) require(pre.getInt(key) == dim) {
                            "model_card.json: preprocessing.$key = ${pre.getInt(key)} but the input " +
                                "shape is ${shape.contentToString()}."
                        }
                    }
                }
                return card
            } catch (e: JSONException) {
                throw IllegalArgumentException("model_card.json is invalid: ${e.message}.")
            }
        }
    }
}
