package org.discomkd.edgedemo

import org.json.JSONArray
import org.json.JSONObject
import java.io.File
import kotlin.system.exitProcess

/**
 * ModelCard.kt and InferenceContract.kt against the Python side, on the JVM, without Android
 * and without JUnit: tests/test_android_contract.py writes the cards of the Python tests
 * (tests/helpers.card_fields, tests/test_model_card.bad_cards) with edge_demo/model_card.py,
 * and what model_card.py, preprocessing.py, runtime.py and classify.py make of them, into a
 * fixture file; this program reads the same card files and compares.
 *
 *   java -cp contract.jar:com.android.json.jar org.discomkd.edgedemo.ContractTestKt FIXTURE.json
 *
 * Exit status 0 if every check passed, 1 otherwise (the failures are listed), 2 on bad usage.
 */

private var checks = 0
private val failures = mutableListOf<String>()

private fun check(ok: Boolean, what: () -> String) {
    checks++
    if (!ok) failures.add(what())
}

private fun <T> same(where: String, expected: T, actual: T) =
    check(expected == actual) { "$where: expected <$expected>, got <$actual>" }

private fun ints(a: JSONArray) = IntArray(a.length()) { a.getInt(it) }

/** float32 values written by Python as the doubles they are exactly. */
private fun floats(a: JSONArray) = FloatArray(a.length()) { a.getDouble(it).toFloat() }

private fun strings(a: JSONArray) = List(a.length()) { a.getString(it) }

/** Bit-exact float32 comparison (0.0 and -0.0 differ, NaN equals NaN). */
private fun sameFloats(where: String, expected: FloatArray, actual: FloatArray) {
    if (expected.size != actual.size) {
        check(false) { "$where: expected ${expected.size} values, got ${actual.size}" }
        return
    }
    val bad = expected.indices.firstOrNull { expected[it].toRawBits() != actual[it].toRawBits() }
    check(bad == null) { "$where: first difference at [$bad]: expected ${expected[bad!!]}, got ${actual[bad]}" }
}

private fun sameInts(where: String, expected: IntArray, actual: IntArray) {
    val bad = if (expected.size != actual.size) -1
    else expected.indices.firstOrNull { expected[it] != actual[it] }
    check(bad == null) {
        if (bad == -1) "$where: expected ${expected.size} values, got ${actual.size}"
        else "$where: first difference at [$bad]: expected ${expected[bad!!]}, got ${actual[bad]}"
    }
}

private fun refusal(block: () -> Any?): String? =
    try {
        block()
        null
    } catch (e: IllegalArgumentException) {
        e.message ?: ""
    }

private class Export(val card: ModelCard, val labels: List<String>)

private fun readExport(dir: String): Export {
    val card = ModelCard.parse(File(dir, ModelCard.CARD_FILE).readText())
    val labelsFile = File(dir, card.labelsFile)
    val text = if (labelsFile.isFile) labelsFile.readText() else null
    return Export(card, card.labels(text, labelsFile.path))
}

private fun checkTensor(where: String, expected: JSONObject, actual: ModelCard.Tensor) {
    sameInts("$where.shape", ints(expected.getJSONArray("shape")), actual.shape)
    same("$where.dtype", expected.getString("dtype"), actual.dtype)
    val scale = if (expected.isNull("scale")) null else expected.getDouble("scale").toFloat()
    same("$where.scale", scale, actual.scale)
    same("$where.zero_point", if (expected.isNull("zero_point")) null else expected.getInt("zero_point"), actual.zeroPoint)
}

/** The parsed fields of each valid card, and its labels as read_export gives them. */
private fun checkCards(cases: JSONArray, exports: MutableMap<String, Export>) {
    for (i in 0 until cases.length()) {
        val case = cases.getJSONObject(i)
        val name = case.getString("name")
        val expected = case.getJSONObject("expect")
        val export = try {
            readExport(case.getString("dir"))
        } catch (e: IllegalArgumentException) {
            check(false) { "card $name: refused: ${e.message}" }
            continue
        }
        exports[name] = export
        val card = export.card
        same("$name modality", expected.getString("modality"), card.modality)
        same("$name kind", expected.getString("kind"), card.kind)
        same("$name model_file", expected.getString("model_file"), card.modelFile)
        same("$name labels_file", expected.getString("labels_file"), card.labelsFile)
        same("$name class_names", strings(expected.getJSONArray("class_names")), card.classNames)
        same("$name quantization", if (expected.isNull("quantization")) null else expected.getString("quantization"),
            card.quantization)
        checkTensor("$name input", expected.getJSONObject("input"), card.input)
        checkTensor("$name output", expected.getJSONObject("output"), card.output)
        same("$name encoding", expected.getString("encoding"), card.encoding)
        if (!expected.isNull("scale")) {
            sameFloats("$name scale", floats(expected.getJSONArray("scale")), card.scale)
            sameFloats("$name offset", floats(expected.getJSONArray("offset")), card.offset)
        }
        val clip = if (expected.isNull("clip")) null else floats(expected.getJSONArray("clip"))
        if (clip == null) same("$name clip", null, card.clip)
        else sameFloats("$name clip", clip, card.clip ?: FloatArray(0))
        same("$name interpolation", expected.getString("interpolation"), card.interpolation)
        same("$name crop_to_aspect", expected.getBoolean("crop_to_aspect"), card.cropToAspect)
        same("$name labels", strings(expected.getJSONArray("labels")), export.labels)
        val takesPixels = expected.getBoolean("takes_pixels")
        same("$name isEightBitImage", takesPixels, card.isEightBitImage)
        val refused = refusal { card.imageInput() }
        if (takesPixels) {
            same("$name imageInput refused", null, refused)
        } else {
            check(refused != null && refused.contains("'${card.modality}' has encoding ${card.encoding}")) {
                "$name: imageInput() of a ${card.encoding} model: expected a refusal, got <$refused>"
            }
        }
    }
}

/** Every bad card is refused with model_card.py's message. */
private fun checkBadCards(cases: JSONArray) {
    for (i in 0 until cases.length()) {
        val case = cases.getJSONObject(i)
        val name = case.getString("name")
        val expected = case.getString("message")
        val actual = refusal { ModelCard.parse(case.getString("text")) }
        if (case.getBoolean("exact")) {
            same("bad card '$name'", expected, actual)
        } else {
            check(actual != null && actual.startsWith(expected)) {
                "bad card '$name': expected a message starting <$expected>, got <$actual>"
            }
        }
    }
}

/** labels.txt that does not fit the card: read_export's message. */
private fun checkBadLabels(cases: JSONArray) {
    for (i in 0 until cases.length()) {
        val case = cases.getJSONObject(i)
        same("labels of ${case.getString("dir")}", case.getString("message"),
            refusal { readExport(case.getString("dir")) })
    }
}

private fun range(dtype: String): IntArray = when (dtype) {
    "int8" -> intArrayOf(-128, 127)
    "uint8" -> intArrayOf(0, 255)
    else -> throw IllegalArgumentException("no integer range for $dtype")
}

/** Photos (as Android's ARGB pixels) -> raw sample, note, float input, quantized input. */
private fun checkInputs(cases: JSONArray, exports: Map<String, Export>) {
    for (i in 0 until cases.length()) {
        val case = cases.getJSONObject(i)
        val export = exports[case.getString("card")] ?: continue  // already reported
        val height = case.getInt("height")
        val width = case.getInt("width")
        val where = "input ${case.getString("card")} ${width}x$height"
        val rgb = ints(case.getJSONArray("rgb"))
        val argb = IntArray(height * width) { p ->
            (0xFF shl 24) or (rgb[3 * p] shl 16) or (rgb[3 * p + 1] shl 8) or rgb[3 * p + 2]
        }
        val spec = export.card.imageInput()
        val pixels = InferenceContract.argbPixels(argb, width, spec.channels)
        val raw = InferenceContract.rawInput(pixels, height, width, spec)
        sameInts("$where raw", ints(case.getJSONArray("raw")), raw.values)
        same("$where note", if (case.isNull("note")) null else case.getString("note"), raw.note)
        val x = InferenceContract.scaleRaw(raw.values, spec)
        sameFloats("$where x", floats(case.getJSONArray("x")), x)
        val (again, note) = InferenceContract.toModelInput(pixels, height, width, spec)
        sameFloats("$where toModelInput", x, again)
        same("$where toModelInput note", raw.note, note)
        if (!case.isNull("q")) {
            val tensor = export.card.input
            val (low, high) = range(tensor.dtype)
            val q = IntArray(x.size) { InferenceContract.quantize(x[it], tensor.scale!!, tensor.zeroPoint!!, low, high) }
            sameInts("$where quantized", ints(case.getJSONArray("q")), q)
        }
    }
}

/** Model outputs -> dequantized probabilities -> classify.py's top-k with the labels. */
private fun checkOutputs(cases: JSONArray, exports: Map<String, Export>) {
    for (i in 0 until cases.length()) {
        val case = cases.getJSONObject(i)
        val export = exports[case.getString("card")] ?: continue
        val where = "output ${case.getString("card")} #$i"
        val probabilities = if (case.isNull("q")) {
            floats(case.getJSONArray("probabilities"))
        } else {
            val tensor = export.card.output
            val q = ints(case.getJSONArray("q"))
            FloatArray(q.size) { InferenceContract.dequantize(q[it], tensor.scale!!, tensor.zeroPoint!!) }
        }
        sameFloats("$where probabilities", floats(case.getJSONArray("probabilities")), probabilities)
        val top = InferenceContract.topK(probabilities, case.getInt("k"))
        val expected = case.getJSONArray("top_k")
        same("$where top-k indices", List(expected.length()) { expected.getJSONObject(it).getInt("index") }, top)
        same("$where top-k labels", List(expected.length()) { expected.getJSONObject(it).getString("label") },
            top.map { export.labels[it] })
        sameFloats("$where top-k probabilities",
            FloatArray(expected.length()) { expected.getJSONObject(it).getDouble("probability").toFloat() },
            FloatArray(top.size) { probabilities[top[it]] })
    }
}

fun main(args: Array<String>) {
    if (args.size != 1) {
        System.err.println("usage: ContractTestKt FIXTURE.json")
        exitProcess(2)
    }
    val fixture = JSONObject(File(args[0]).readText())
    val exports = mutableMapOf<String, Export>()
    checkCards(fixture.getJSONArray("cards"), exports)
    checkBadCards(fixture.getJSONArray("bad_cards"))
    checkBadLabels(fixture.getJSONArray("bad_labels"))
    checkInputs(fixture.getJSONArray("inputs"), exports)
    checkOutputs(fixture.getJSONArray("outputs"), exports)
    println("ContractTest: $checks checks, ${failures.size} failed")
    for (failure in failures.take(40)) println("FAIL $failure")
    if (failures.size > 40) println("... and ${failures.size - 40} more")
    exitProcess(if (failures.isEmpty()) 0 else 1)
}
