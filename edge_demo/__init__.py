"""Device side of the pipeline: a Raspberry Pi / desktop classifier for exported models
(classify.py), the NumPy log-mel spectrogram shared with training (spectrogram.py),
and an Android sample (android/). Installed as `discomkd_keras.edge_demo`; on a
device the folder is used as it is, without this package."""
