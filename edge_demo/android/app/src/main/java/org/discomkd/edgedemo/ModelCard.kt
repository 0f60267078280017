package org.discomkd.edgedemo

import org.json.JSONArray
import org.json.JSONException
import org.json.JSONObject
import org.json.JSONTokener

/**
 * An export's model_card.json (format [FORMAT]) as edge_demo/model_card.py reads it.
 * [parse] makes the checks of model_card.validate_card, in its order and with its one-line
 * messages, and keeps the fields this app uses; [labels] reads labels.txt as
 * model_card.read_export does. The raw input is named by `preprocessing.encoding` alone;
 * `preprocessing.raw` is a description and is not read. Errors are
 * IllegalArgumentExceptions whose message says what is wrong.
 *
 * JSON is read with org.json: Android's own on a device; on the JVM, Debian's
 * libandroid-json-java (the same code) or json.org's. Plain Kotlin 1.3 otherwise, so
 * Debian's kotlinc compiles it for the JVM test (edge_demo/android/README.md).
 */
class ModelCard(
    val modality: String,
    val kind: String,
    val modelFile: String,
    val labelsFile: String,
    val classNames: List<String>,
    /** The card's `quantization` (e.g. "int8"); null if the card has none. */
    val quantization: String?,
    val input: Tensor,
    val output: Tensor,
    /** `preprocessing.encoding`: one of [ENCODINGS]. */
    val encoding: String,
    /** `preprocessing.scale` and `offset` as float32, one per channel (per feature); a
     *  single number stands for every channel. Spectrogram cards: 1 and 0 (unused). */
    val scale: FloatArray,
    val offset: FloatArray,
    /** `preprocessing.clip` [low, high] as float32, or null. */
    val clip: FloatArray?,
    /** `preprocessing.resize.interpolation`, with preprocessing.py's default: "nearest" for
     *  depth, "bilinear" otherwise. */
    val interpolation: String,
    /** `preprocessing.resize.crop_to_aspect` (default true). */
    val cropToAspect: Boolean
) {
    /** A TFLite tensor as the card describes it; scale and zero point for int8/uint8 only. */
    class Tensor(val shape: IntArray, val dtype: String, val scale: Float?, val zeroPoint: Int?)

    /** What an encoding feeds: model kinds, and input channels (0: any). */
    class Encoding(val kinds: List<String>, val channels: Int)

    /** [1, H, W, C] for images. */
    val inputShape: IntArray
        get() = input.shape

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
            nearest = interpolation == "nearest", cropToAspect = cropToAspect
        )
    }

    /**
     * The class names, as model_card.read_export gives them: the non-empty stripped lines of
     * the labels file (its text), or the card's class names where there is no such file
     * (null); their number must be the output size. `where` names the file in the message.
     */
    fun labels(labelsText: String?, where: String = labelsFile): List<String> {
        val labels = labelsText?.lines()?.map { it.trim() }?.filter { it.isNotEmpty() } ?: classNames
        val classes = output.shape.last()
        require(labels.size == classes) {
            "$where has ${labels.size} labels but the card's output has $classes classes; the " +
                "folder mixes files of different exports."
        }
        return labels
    }

    companion object {
        const val FORMAT = "discomkd-keras/model-card/v2"
        const val OLD_FORMAT = "discomkd-keras/model-card/v1"
        const val CARD_FILE = "model_card.json"
        const val REEXPORT = "re-export the model with `discomkd-keras export`"
        const val DEPTH = "depth_mm_uint16"
        val KINDS = listOf("image", "spectrogram", "vector")
        val TENSOR_DTYPES = listOf("float32", "int8", "uint8")
        val INTERPOLATIONS = listOf("bilinear", "nearest")

        /** The encodings of model_card.ENCODINGS, in its order. */
        val ENCODINGS = linkedMapOf(
            "rgb8" to Encoding(listOf("image"), 3),
            "gray8" to Encoding(listOf("image"), 1),
            DEPTH to Encoding(listOf("image"), 1),
            "wav_pcm16" to Encoding(listOf("spectrogram"), 1),
            "float_raw" to Encoding(listOf("image", "vector"), 0),
            "bands_tiff" to Encoding(listOf("image"), 0),
            "array_npy" to Encoding(listOf("image", "vector"), 0)
        )

        fun parse(text: String): ModelCard {
            val value = try {
                val tokens = JSONTokener(text)
                val value = tokens.nextValue()
                if (tokens.nextClean() != '\u0000') throw JSONException("extra data after the JSON value")
                value
            } catch (e: JSONException) {
                throw IllegalArgumentException("$CARD_FILE: the model card is not valid JSON (${e.message}).")
            }
            if (value !is JSONObject) throw invalid("expected a JSON object, not ${typeName(value)}")
            return validated(value)
        }

        // ------------------------------------------------------------------ validation

        private enum class Type(val words: String) {
            OBJECT("an object"), LIST("a list"), STRING("a string"), INTEGER("an integer"),
            NUMBER("a number"), BOOLEAN("true or false")
        }

        private class Field(val key: String, val type: Type, val required: Boolean)

        /** model_card._TOP and _SOURCE: (key, type, required). */
        private val TOP = listOf(
            Field("modality", Type.STRING, true), Field("kind", Type.STRING, true),
            Field("model_file", Type.STRING, true), Field("labels_file", Type.STRING, true),
            Field("class_names", Type.LIST, true), Field("input", Type.OBJECT, true),
            Field("output", Type.OBJECT, true), Field("preprocessing", Type.OBJECT, true),
            Field("source", Type.OBJECT, true), Field("quantization", Type.STRING, false),
            Field("weight_scales", Type.STRING, false), Field("file_size_bytes", Type.INTEGER, false),
            Field("parameters", Type.INTEGER, false), Field("ops", Type.LIST, false),
            Field("representative_samples", Type.INTEGER, false),
            Field("verification", Type.OBJECT, false)
        )
        private val SOURCE = listOf(
            Field("run", Type.STRING, true), Field("checkpoint_sha256", Type.STRING, true),
            Field("epoch", Type.INTEGER, true), Field("valid_weighted_f1", Type.NUMBER, false),
            Field("dataset", Type.STRING, false), Field("encoder", Type.STRING, false),
            Field("versions", Type.OBJECT, false)
        )
        private val SHA256 = Regex("[0-9a-f]{64}")

        private fun invalid(what: String) =
            IllegalArgumentException("$CARD_FILE: invalid model card: $what.")

        private fun isNull(v: Any?) = v == null || v == JSONObject.NULL

        /** Python's isinstance for JSON values: a boolean is no number, an integer is a number. */
        private fun isA(v: Any?, type: Type): Boolean = when (type) {
            Type.OBJECT -> v is JSONObject
            Type.LIST -> v is JSONArray
            Type.STRING -> v is String
            Type.INTEGER -> v is Int || v is Long || v is java.math.BigInteger
            Type.NUMBER -> v is Number
            Type.BOOLEAN -> v is Boolean
        }

        private fun typeName(v: Any?): String = when {
            isNull(v) -> "null"
            v is Boolean -> Type.BOOLEAN.words
            isA(v, Type.INTEGER) -> Type.INTEGER.words
            else -> Type.values().firstOrNull { isA(v, it) }?.words ?: v!!.javaClass.simpleName
        }

        private fun number(v: Any?): Double = (v as Number).toDouble()

        /** Python's dict.get(key, default): a present null stays null. */
        private fun getOr(obj: JSONObject, key: String, default: Any): Any? =
            if (obj.has(key)) obj.opt(key) else default

        private fun items(array: JSONArray): List<Any?> = List(array.length()) { array.opt(it) }

        /** pathlib's Path(p).name for '/'-separated paths. */
        private fun pathName(p: String): String =
            p.split('/').lastOrNull { it.isNotEmpty() && it != "." } ?: ""

        private fun a(word: String) = (if (word.isNotEmpty() && word[0] in "aeiou") "an " else "a ") + word

        /** A JSON value as Python's str() writes it in model_card.py's messages. */
        private fun pyStr(v: Any?): String = if (v is String) v else pyRepr(v)

        /** A JSON value as Python's repr() writes it (floats in Python's notation). */
        internal fun pyRepr(v: Any?): String = when {
            isNull(v) -> "None"
            v is Boolean -> if (v) "True" else "False"
            v is String -> if ('\'' in v && '"' !in v) "\"$v\"" else "'" + v.replace("\\", "\\\\")
                .replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "'"
            v is JSONArray -> items(v).joinToString(", ", "[", "]") { pyRepr(it) }
            v is JSONObject -> v.keys().asSequence().toList()
                .joinToString(", ", "{", "}") { pyRepr(it) + ": " + pyRepr(v.opt(it)) }
            v is Double || v is Float -> pyFloat((v as Number).toDouble())
            else -> v.toString()
        }

        private fun pyFloat(d: Double): String {
            if (d.isNaN()) return "nan"
            if (d.isInfinite()) return if (d > 0) "inf" else "-inf"
            if (d == 0.0) return if (1.0 / d < 0) "-0.0" else "0.0"
            val magnitude = Math.abs(d)
            if (magnitude >= 1e-4 && magnitude < 1e16) {
                val plain = java.math.BigDecimal(d.toString()).stripTrailingZeros().toPlainString()
                return if ('.' in plain) plain else "$plain.0"
            }
            val (mantissa, exponent) = d.toString().split('E').let { it[0] to it[1].toInt() }
            val digits = mantissa.removeSuffix(".0")
            return digits + "e" + (if (exponent < 0) "-" else "+") + Math.abs(exponent).toString().padStart(2, '0')
        }

        private fun checkFields(obj: JSONObject, fields: List<Field>, prefix: String) {
            for (field in fields) {
                val value = obj.opt(field.key)
                if (isNull(value) && !field.required) continue
                if (!obj.has(field.key)) throw invalid("no '$prefix${field.key}' entry")
                if (!isA(value, field.type)) {
                    throw invalid("'$prefix${field.key}' must be ${field.type.words}, not ${typeName(value)}")
                }
            }
        }

        /** model_card._check_tensor: the tensor's shape, dtype and quantization, checked. */
        private fun tensor(t: JSONObject, name: String): Tensor {
            val shape = t.opt("shape")
            if (!(shape is JSONArray && shape.length() > 0 &&
                    items(shape).all { isA(it, Type.INTEGER) && number(it) > 0 })) {
                throw invalid("$name.shape must be a list of positive integers; got ${pyRepr(shape)}")
            }
            val dtype = t.opt("dtype")
            if (!(dtype is String && dtype in TENSOR_DTYPES)) {
                throw invalid("$name.dtype ${pyRepr(dtype)} is not one of ${TENSOR_DTYPES.joinToString(", ")}")
            }
            val dims = IntArray(shape.length()) { (shape.get(it) as Number).toInt() }
            if (dtype == "float32") return Tensor(dims, dtype, null, null)
            val q = t.opt("quantization")
            if (!(q is JSONObject && isA(q.opt("scale"), Type.NUMBER) && number(q.opt("scale")) > 0 &&
                    isA(q.opt("zero_point"), Type.INTEGER))) {
                throw invalid("$name.quantization must be {scale > 0, zero_point} for a $dtype tensor")
            }
            return Tensor(dims, dtype, number(q.opt("scale")).toFloat(), (q.get("zero_point") as Number).toInt())
        }

        private fun validated(card: JSONObject): ModelCard {
            val format = card.opt("format")
            if (format == OLD_FORMAT) {
                throw IllegalArgumentException("$CARD_FILE: $OLD_FORMAT is an old model card " +
                    "without an input encoding; $REEXPORT to get a $FORMAT card.")
            }
            if (format != FORMAT) {
                val what = if (isNull(format)) "no 'format' entry" else "unknown format ${pyRepr(format)}"
                throw IllegalArgumentException("$CARD_FILE: $what; this reader understands $FORMAT cards ($REEXPORT).")
            }
            checkFields(card, TOP, "")
            val source = card.getJSONObject("source")
            checkFields(source, SOURCE, "source.")
            val run = source.getString("run")
            if (run.isEmpty() || pathName(run) != run) {
                throw invalid("source.run must be the run directory's name, not a path")
            }
            if (!SHA256.matches(source.getString("checkpoint_sha256"))) {
                throw invalid("source.checkpoint_sha256 must be 64 lowercase hex digits")
            }
            val kind = card.getString("kind")
            if (kind !in KINDS) throw invalid("kind ${pyRepr(kind)} is not one of ${KINDS.joinToString(", ")}")
            val modelFile = card.getString("model_file")
            if (pathName(modelFile) != modelFile || modelFile.isEmpty()) {
                throw invalid("model_file ${pyRepr(modelFile)} must be a file name in the export folder")
            }
            val names = items(card.getJSONArray("class_names"))
            if (names.isEmpty() || !names.all { it is String }) {
                throw invalid("class_names must be a non-empty list of strings")
            }
            val input = tensor(card.getJSONObject("input"), "input")
            val shape = input.shape
            val rank = if (kind == "vector") 2 else 4
            if (shape.size != rank || shape[0] != 1) {
                val layout = if (rank == 2) "[1, F]" else "[1, H, W, C]"
                throw invalid("input.shape must be $layout (batch 1) for ${a(kind)} model; " +
                    "got ${shape.contentToString()}")
            }
            val output = tensor(card.getJSONObject("output"), "output")
            if (!output.shape.contentEquals(intArrayOf(1, names.size))) {
                throw invalid("output.shape must be [1, ${names.size}] (batch 1, one probability per " +
                    "class name); got ${output.shape.contentToString()}")
            }
            val pre = card.getJSONObject("preprocessing")
            checkPreprocessing(pre, kind, shape)

            val encoding = pre.getString("encoding")
            val channels = shape.last()
            val image = kind != "spectrogram"  // spectrograms use mean and std instead
            val resize = pre.optJSONObject("resize")
            val interpolation = resize?.takeIf { it.has("interpolation") }?.getString("interpolation")
                ?: if (encoding == DEPTH) "nearest" else "bilinear"
            val clip = pre.opt("clip")
            return ModelCard(
                modality = card.getString("modality"),
                kind = kind,
                modelFile = modelFile,
                labelsFile = card.getString("labels_file"),
                classNames = names.map { it as String },
                quantization = if (isNull(card.opt("quantization"))) null else card.getString("quantization"),
                input = input,
                output = output,
                encoding = encoding,
                // JSON numbers are doubles; the model input uses their float32 values, as
                // preprocessing.scale_raw does with np.asarray(scale, np.float32).
                scale = if (image) perChannel(pre, "scale", 1.0, channels) else FloatArray(channels) { 1f },
                offset = if (image) perChannel(pre, "offset", 0.0, channels) else FloatArray(channels),
                clip = if (image && clip is JSONArray) floatArrayOf(
                    number(clip.get(0)).toFloat(), number(clip.get(1)).toFloat()) else null,
                interpolation = interpolation,
                cropToAspect = resize?.takeIf { it.has("crop_to_aspect") }?.getBoolean("crop_to_aspect") ?: true
            )
        }

        private fun perChannel(pre: JSONObject, key: String, default: Double, channels: Int): FloatArray {
            val value = pre.opt(key)
            return when (value) {
                is JSONArray -> FloatArray(channels) { number(value.get(it)).toFloat() }
                is Number -> FloatArray(channels) { value.toFloat() }
                else -> FloatArray(channels) { default.toFloat() }
            }
        }

        /** model_card._check_preprocessing. */
        private fun checkPreprocessing(pre: JSONObject, kind: String, shape: IntArray) {
            val encoding = pre.opt("encoding")
            if (isNull(encoding)) throw invalid("no 'preprocessing.encoding' entry")
            val fits = (encoding as? String)?.let { ENCODINGS[it] }
                ?: throw invalid("preprocessing.encoding ${pyRepr(encoding)} is not one of " +
                    ENCODINGS.keys.joinToString(", "))
            if (kind !in fits.kinds) {
                throw invalid("encoding ${pyRepr(encoding)} is for ${fits.kinds.joinToString(" or ")} " +
                    "models, not ${a(kind)} model")
            }
            if (fits.channels != 0 && kind == "image" && shape[3] != fits.channels) {
                throw invalid("encoding ${pyRepr(encoding)} needs a ${fits.channels}-channel input; " +
                    "the input shape is ${shape.contentToString()}")
            }
            if (pre.has("raw") && pre.opt("raw") !is String) {
                throw invalid("preprocessing.raw (a description) must be a string")
            }
            if (kind == "spectrogram") {
                val spec = pre.opt("spectrogram")
                if (!(spec is JSONObject && isA(spec.opt("expected_rate"), Type.INTEGER) &&
                        number(spec.opt("expected_rate")) > 0)) {
                    throw invalid("preprocessing.spectrogram must be an object with expected_rate > 0")
                }
                if (!(isA(pre.opt("mean"), Type.NUMBER) && isA(pre.opt("std"), Type.NUMBER) &&
                        number(pre.opt("std")) > 0)) {
                    throw invalid("preprocessing.mean and preprocessing.std (> 0) must be numbers")
                }
                return
            }
            for (key in listOf("scale", "offset")) {  // one number, or one per channel (per feature)
                val value = pre.opt(key)
                if (value is JSONArray) {
                    if (value.length() != shape.last() || !items(value).all { isA(it, Type.NUMBER) }) {
                        throw invalid("preprocessing.$key must be a number or ${shape.last()} numbers " +
                            "(one per channel); got ${pyRepr(value)}")
                    }
                } else if (pre.has(key) && !isA(value, Type.NUMBER)) {
                    throw invalid("preprocessing.$key must be a number, not ${typeName(value)}")
                }
            }
            val resize = pre.opt("resize")
            if (!isNull(resize) && !(resize is JSONObject &&
                    getOr(resize, "interpolation", "bilinear") in INTERPOLATIONS &&
                    isA(getOr(resize, "crop_to_aspect", true), Type.BOOLEAN))) {
                throw invalid("preprocessing.resize must be {interpolation: " +
                    "${INTERPOLATIONS.joinToString(" or ")}, crop_to_aspect: true or false}; got ${pyRepr(resize)}")
            }
            val decode = pre.opt("depth_decode")
            if (!isNull(decode)) {
                val bits = if (decode is JSONObject) getOr(decode, "rotate_right_bits", 0) else null
                val perUnit = if (decode is JSONObject) getOr(decode, "mm_per_unit", 1.0) else null
                if (!(encoding == DEPTH && decode is JSONObject &&
                        isA(bits, Type.INTEGER) && number(bits) >= 0 && number(bits) < 16 &&
                        isA(perUnit, Type.NUMBER) && number(perUnit) > 0)) {
                    throw invalid("preprocessing.depth_decode must be {rotate_right_bits: 0..15, " +
                        "mm_per_unit > 0} on a depth_mm_uint16 model; got ${pyRepr(decode)}")
                }
            }
            val clip = pre.opt("clip")
            if (!isNull(clip) && !(clip is JSONArray && clip.length() == 2 &&
                    items(clip).all { isA(it, Type.NUMBER) } && number(clip.get(0)) <= number(clip.get(1)))) {
                throw invalid("preprocessing.clip must be [low, high] with low <= high; got ${pyRepr(clip)}")
            }
            if (kind == "image") {
                for ((key, dim) in listOf("height" to shape[1], "width" to shape[2])) {
                    if (pre.has(key) && !pyEquals(pre.opt(key), dim)) {
                        throw invalid("preprocessing.$key = ${pyStr(pre.opt(key))} but the input shape " +
                            "is ${shape.contentToString()}")
                    }
                }
            }
        }

        /** Python's `value == dim` for a JSON value and an integer. */
        private fun pyEquals(value: Any?, dim: Int): Boolean = when (value) {
            is Boolean -> (if (value) 1 else 0) == dim
            is Number -> value.toDouble() == dim.toDouble()
            else -> false
        }
    }
}
