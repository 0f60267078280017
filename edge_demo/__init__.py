"""Device side of the pipeline, installed as `discomkd_keras.edge_demo`; on a device the
folder is used as it is, without this package. classify.py is a Raspberry Pi / desktop
command line for exported models; model_card.py defines and checks the model card
(the exporter writes it with the same module), runtime.py runs a .tflite model (also
for the export verifier), preprocessing.py and image_ops.py turn files into model
inputs, camera.py reads camera frames, spectrogram.py is the NumPy log-mel spectrogram
shared with training; android/ holds a Kotlin sample."""
