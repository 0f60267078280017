package org.discomkd.edgedemo

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.net.Uri
import android.os.Bundle
import android.widget.Button
import android.widget.ImageView
import android.widget.TextView
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** The UI only: pick an image, show it and the top-3 classes. Inference runs on one
 *  background thread in [ImageClassifierHelper]. */
class MainActivity : AppCompatActivity() {

    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var classifier: ImageClassifierHelper? = null

    private lateinit var info: TextView
    private lateinit var image: ImageView
    private lateinit var result: TextView

    private val pickImage =
        registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri: Uri? ->
            if (uri != null) classify(uri)
        }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        info = findViewById(R.id.model_info)
        image = findViewById(R.id.image)
        result = findViewById(R.id.result)
        val pick = findViewById<Button>(R.id.pick)
        pick.isEnabled = false
        pick.setOnClickListener {
            pickImage.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }

        worker.execute {
            try {
                val helper = ImageClassifierHelper(this)
                classifier = helper
                val c = helper.card
                val text = "${c.modality}: ${c.inputShape[1]}x${c.inputShape[2]}x${c.inputShape[3]} " +
                    "${c.quantization ?: "?"}, ${helper.labels.size} classes"
                runOnUiThread {
                    info.text = text
                    pick.isEnabled = true
                }
            } catch (e: Exception) {
                runOnUiThread { info.text = getString(R.string.app_name) + ": " + e.message }
            }
        }
    }

    private fun classify(uri: Uri) {
        worker.execute {
            val helper = classifier ?: return@execute
            try {
                // Full resolution and no EXIF rotation, like Pillow in classify.py, so both
                // see the same pixels; ARGB_8888 = 8-bit sRGB.
                val options = BitmapFactory.Options().apply {
                    inPreferredConfig = Bitmap.Config.ARGB_8888
                }
                val bitmap = contentResolver.openInputStream(uri).use { stream ->
                    BitmapFactory.decodeStream(stream, null, options)
                } ?: throw IllegalArgumentException("not a readable image")
                val out = helper.classify(bitmap, topK = 3)
                val lines = out.categories.mapIndexed { rank, cat ->
                    String.format(Locale.US, "%d. %-12s %6.2f%%", rank + 1, cat.label, 100 * cat.probability)
                }
                val note = if (out.note != null) "\n${out.note}" else ""
                val text = lines.joinToString("\n") +
                    String.format(Locale.US, "\ninference %.2f ms", out.inferenceMs) + note
                runOnUiThread {
                    image.setImageBitmap(bitmap)
                    result.text = text
                }
            } catch (e: Exception) {
                runOnUiThread { result.text = "Error: ${e.message}" }
            }
        }
    }

    override fun onDestroy() {
        worker.execute { classifier?.close() }
        worker.shutdown()
        super.onDestroy()
    }
}
