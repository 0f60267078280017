"""Device side of the pipeline. The same files are three things: the
`discomkd_keras.edge_demo` package of the training side (which imports
spectrogram.py, model_card.py, runtime.py, preprocessing.py); the `discomkd_edge`
package that `pip install ./edge_demo` installs on a device (pyproject.toml here,
LiteRT + NumPy + Pillow, no TensorFlow), with its `discomkd-edge` command
(console.py); and plain scripts in a copied folder (`python classify.py ...`),
where the modules import each other as top-level modules.

classify.py is the Raspberry Pi / desktop command line for exported models (the
work behind `discomkd-edge classify` and `discomkd-edge camera`); model_card.py
defines and checks the model card (the exporter writes it with the same module),
runtime.py runs a .tflite model (also for the export verifier), preprocessing.py
and image_ops.py turn files into model inputs, camera.py reads camera frames,
spectrogram.py is the NumPy log-mel spectrogram shared with training; android/
holds a Kotlin sample."""
