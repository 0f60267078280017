"""Converter side of the pipeline (installed as `discomkd_keras.export`):
one modality's best classifier -> a verified, quantized `.tflite` + model card."""

from discomkd_keras.export.tflite_export import (  # noqa: F401
    IO_TYPES, QUANTIZATIONS, ExportError, export_modalities, export_modality, read_run)
from discomkd_keras.export.verification import DEFAULT_THRESHOLDS, check_export, format_report  # noqa: F401
