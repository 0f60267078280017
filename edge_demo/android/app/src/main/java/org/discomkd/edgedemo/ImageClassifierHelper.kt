package org.discomkd.edgedemo

import android.content.Context
import android.graphics.Bitmap
import android.os.SystemClock
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import java.io.Closeable
import java.io.FileInputStream
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/**
 * Loads one export folder from assets/<assetDir>/ (model_card.json, labels.txt and the
 * .tflite the card names) and classifies bitmaps with it, following [InferenceContract]:
 * the same preprocessing, quantization and top-k as edge_demo/classify.py.
 *
 * Not thread-safe: call [classify] from one background thread.
 */
class ImageClassifierHelper(
    context: Context,
    assetDir: String = "model",
    threads: Int = 4
) : Closeable {

    data class Category(val label: String, val index: Int, val probability: Float)

    /** `note`: what was done to fit the image to the model (as classify.py's note), or null. */
    data class Result(val categories: List<Category>, val inferenceMs: Double, val note: String?)

    val card: ModelCard
    val labels: List<String>
    private val input: InferenceContract.ImageInput
    private val interpreter: Interpreter

    init {
        val assets = context.assets
        val cardText = try {
            assets.open("$assetDir/model_card.json").bufferedReader().use { it.readText() }
        } catch (e: IOException) {
            throw IllegalStateException(
                "assets/$assetDir/model_card.json is missing: copy the files of one export " +
                    "folder (OUT/<modality>/) into app/src/main/assets/$assetDir/ and rebuild."
            )
        }
        card = ModelCard.parse(cardText)
        input = card.imageInput()
        // As model_card.read_export: the card's labels file, or its class names without one.
        val labelsText = try {
            assets.open("$assetDir/${card.labelsFile}").bufferedReader().use { it.readText() }
        } catch (e: IOException) {
            null
        }
        labels = card.labels(labelsText, "assets/$assetDir/${card.labelsFile}")
        val model = try {
            mapAsset(context, "$assetDir/${card.modelFile}")
        } catch (e: IOException) {
            throw IllegalStateException("assets/$assetDir/${card.modelFile} (named by the card) is " +
                "missing or compressed in the APK (${e.message}).")
        }
        interpreter = Interpreter(model, Interpreter.Options().setNumThreads(threads))
        try {
            val actual = interpreter.getInputTensor(0).shape()
            check(actual.contentEquals(card.inputShape)) {
                "The model's input shape ${actual.contentToString()} does not match the card's " +
                    "${card.inputShape.contentToString()}: the assets mix files of different exports."
            }
            val k = interpreter.getOutputTensor(0).shape().last()
            check(k == labels.size) {
                "The model has $k outputs but there are ${labels.size} labels: the assets mix " +
                    "files of different exports."
            }
        } catch (e: IllegalStateException) {
            interpreter.close()
            throw e
        }
    }

    /** Top-k classes of an image (any size; ARGB_8888 or convertible to it). */
    fun classify(bitmap: Bitmap, topK: Int = 3): Result {
        val argbBitmap = if (bitmap.config == Bitmap.Config.ARGB_8888) bitmap
        else bitmap.copy(Bitmap.Config.ARGB_8888, false)
        val w = argbBitmap.width
        val h = argbBitmap.height
        val argb = IntArray(w * h)
        argbBitmap.getPixels(argb, 0, w, 0, 0, w, h)
        val pixels = InferenceContract.argbPixels(argb, w, input.channels)
        val (x, note) = InferenceContract.toModelInput(pixels, h, w, input)

        val started = SystemClock.elapsedRealtimeNanos()
        val inTensor = interpreter.getInputTensor(0)
        val inBuffer = ByteBuffer.allocateDirect(inTensor.numBytes()).order(ByteOrder.nativeOrder())
        when (inTensor.dataType()) {
            DataType.FLOAT32 -> x.forEach { inBuffer.putFloat(it) }
            DataType.INT8 -> {
                val q = inTensor.quantizationParams()
                x.forEach { inBuffer.put(InferenceContract.quantize(it, q.scale, q.zeroPoint, -128, 127).toByte()) }
            }
            DataType.UINT8 -> {
                val q = inTensor.quantizationParams()
                x.forEach { inBuffer.put(InferenceContract.quantize(it, q.scale, q.zeroPoint, 0, 255).toByte()) }
            }
            else -> error("Unsupported input type ${inTensor.dataType()}.")
        }
        inBuffer.rewind()
        val outTensor = interpreter.getOutputTensor(0)
        val outBuffer = ByteBuffer.allocateDirect(outTensor.numBytes()).order(ByteOrder.nativeOrder())
        interpreter.run(inBuffer, outBuffer)
        outBuffer.rewind()
        val k = outTensor.shape().last()
        val probabilities = when (outTensor.dataType()) {
            DataType.FLOAT32 -> FloatArray(k) { outBuffer.getFloat() }
            DataType.INT8 -> {
                val q = outTensor.quantizationParams()
                FloatArray(k) { InferenceContract.dequantize(outBuffer.get().toInt(), q.scale, q.zeroPoint) }
            }
            DataType.UINT8 -> {
                val q = outTensor.quantizationParams()
                FloatArray(k) {
                    InferenceContract.dequantize(outBuffer.get().toInt() and 0xFF, q.scale, q.zeroPoint)
                }
            }
            else -> error("Unsupported output type ${outTensor.dataType()}.")
        }
        val ms = (SystemClock.elapsedRealtimeNanos() - started) / 1e6
        val categories = InferenceContract.topK(probabilities, topK).map {
            Category(labels[it], it, probabilities[it])
        }
        return Result(categories, ms, note)
    }

    override fun close() = interpreter.close()

    private fun mapAsset(context: Context, path: String): MappedByteBuffer =
        context.assets.openFd(path).use { fd ->
            FileInputStream(fd.fileDescriptor).channel.use { channel ->
                channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            }
        }
}
