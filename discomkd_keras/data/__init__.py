"""Data sources. Each returns a validated `MultiModalDataset`; `load_data`
rebuilds one from the JSON-able spec stored in a run's config, so that
`--resume` and `evaluate` see exactly the data the run was trained on."""

from discomkd_keras.choices import SOURCES
from discomkd_keras.data.multimodal_dataset import DataError, MultiModalDataset


def load_data(spec):
    """spec: {"source": one of SOURCES, **that loader's keyword arguments}."""
    spec = dict(spec)
    source = spec.pop("source", None)
    modalities = spec.pop("modalities", None)
    if source == "synthetic-rgbd":
        from discomkd_keras.data.synthetic_rgbd import load_synthetic_rgbd
        data = load_synthetic_rgbd(**spec)
    elif source == "released":
        from discomkd_keras.data.released_layout import load_released_layout
        return load_released_layout(modalities=modalities, **spec)
    elif source == "files":
        from discomkd_keras.data.file_layouts import load_files
        return load_files(modalities=modalities, **spec)
    elif source == "arrays":  # in-memory data of the Python API: not on disk
        from discomkd_keras.data.in_memory import refuse_to_load
        refuse_to_load(spec)
    elif source == "av-mnist":
        from discomkd_keras.data.av_mnist import load_av_mnist
        data = load_av_mnist(**spec)
    else:
        raise DataError(f"Unknown data source {source!r}; expected one of {SOURCES}.")
    return data.select(modalities) if modalities else data


__all__ = ["DataError", "MultiModalDataset", "SOURCES", "load_data"]
