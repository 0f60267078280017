"""`Run`: a trained (or training) run directory from Python, what the command
line's `evaluate`, `export`, `predict` and `train --resume` do, on one object.

    run = discomkd_keras.train("my-data/", epochs=20)      # or Run.open("runs/...")
    run.valid_f1                                           # {modality: best validation F1}
    run.predict("depth", ["a.png", "b.png"])               # class probabilities
    run.export()                                           # verified int8 TFLite per modality
"""

import json
from pathlib import Path

import numpy as np

from discomkd_keras.run_directory import (HISTORY, RESULTS, RunError, deployed_names, load_best,
                                          read_history, read_run)


class Run:
    """A run directory: config.json, history.csv, state.json, results.json and best/.

    A run trained from in-memory arrays keeps a fingerprint of them, not the
    data: `evaluate`, `export` and `resume` need `data=` (the same arrays) and
    say so in one line without it.
    """

    def __init__(self, path):
        self.path = Path(path)
        read_run(self.path)  # RunError (one line) if it is not a run directory
        self._loaded = {}  # {modality: (best file's mtime, classifier)}: one predict trace each

    @classmethod
    def open(cls, path):
        """The run in directory `path`."""
        return cls(path)

    def __repr__(self):
        return f"Run({str(self.path)!r})"

    # --- what the directory holds ----------------------------------------------------
    @property
    def config(self):
        """The resolved config (config.json): every setting the run was trained with."""
        return read_run(self.path)[0]

    @property
    def state(self):
        """The last checkpoint: epochs done, best epoch per modality, early stop."""
        return read_run(self.path)[1]

    @property
    def results(self):
        """Test figures per kept classifier (results.json), {} before the run finished."""
        path = self.path / RESULTS
        return json.loads(path.read_text()) if path.is_file() else {}

    @property
    def history(self):
        """One dict per epoch: losses, validation accuracy and F1 (val_<m>_f1), seconds."""
        return read_history(self.path / HISTORY)

    @property
    def modalities(self):
        return list(self.config["modalities"])

    @property
    def class_names(self):
        return list(self.config["class_names"])

    @property
    def valid_f1(self):
        """{modality: the validation weighted F1 its kept classifier was chosen for}."""
        return {m: best["f1"] for m, best in self.state["best"].items()}

    def classifier(self, modality):
        """The kept (best validation F1) classifier of `modality`, a keras.Model from
        inputs to class probabilities, loaded in safe mode."""
        self._check_modality(modality)
        from discomkd_keras.run_directory import best_path

        path = best_path(self.path, modality)
        stamp = path.stat().st_mtime_ns if path.exists() else None
        if self._loaded.get(modality, (None,))[0] != stamp or stamp is None:
            self._loaded[modality] = (stamp, load_best(self.path, modality)[0])
        return self._loaded[modality][1]

    # --- using it ----------------------------------------------------------------------
    def predict(self, modality, inputs, batch_size=None):
        """Class probabilities (N, K) of `inputs`: an array of the model's inputs (as the
        training data was given: (N, ...) or one sample), or files / folders, which are
        read with the run's own preprocessing (the device's readers)."""
        self._check_modality(modality)
        if isinstance(inputs, (str, Path)) or (
                isinstance(inputs, (list, tuple)) and inputs and
                all(isinstance(i, (str, Path)) for i in inputs)):
            from discomkd_keras.predict import predict_files

            paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
            rows = predict_files(self.path, paths, modality=modality, top_k=len(self.class_names))
            order = {c: i for i, c in enumerate(self.class_names)}
            out = np.zeros((len(rows), len(self.class_names)), np.float32)
            for r, row in enumerate(rows):
                for name, probability in row["topk"]:
                    out[r, order[name]] = probability
            return out
        from discomkd_keras.evaluation import predict_scores

        x = np.asarray(inputs, dtype=np.float32)
        shape = tuple(self.config["input_shapes"][modality])
        if x.shape == shape or (x.ndim == len(shape) - 1 and x.shape + (1,) == shape):
            x = x.reshape((1,) + shape)  # one sample
        elif x.ndim == len(shape) and x.shape[1:] + (1,) == shape:
            x = x[..., None]  # (N, H, W) grey images
        if x.shape[1:] != shape:
            raise ValueError(f"{modality} takes inputs of shape (N,) + {shape}; got {x.shape}.")
        return predict_scores(self.classifier(modality), x,
                              batch_size or self.config["batch_size"])

    def evaluate(self, data=None, max_points=400, log=print):
        """`discomkd-keras evaluate`: test figures, per-class scores, confusion matrices and
        the embedding map in RUN_DIR/evaluation/; returns the figures."""
        from discomkd_keras.evaluation import evaluate_run

        return evaluate_run(self.path, max_points=max_points, log=log, data=self._data(data))

    def export(self, modalities="all", quantize="int8", out_dir=None, data=None, overwrite=True,
               log=print, **options):
        """Export each of `modalities` ("all" or a list) as a verified TFLite model (the
        `export` command's checks); returns a list of {"modality", "folder", "model",
        "quantization", "agreement", "passed", "card"} (card: the model card as written).
        ExportError if a model fails its check (nothing is left at its path)."""
        from discomkd_keras.export.tflite_export import export_modalities

        names = self.modalities if modalities == "all" else (
            [modalities] if isinstance(modalities, str) else list(modalities))
        for m in names:
            self._check_modality(m)
        done = export_modalities(self.path, names, out_dir=out_dir, data=self._data(data), log=log,
                                 quantization=quantize, overwrite=overwrite, **options)
        return [{"modality": folder.name, "folder": folder, "model": folder / card["model_file"],
                 "quantization": card["quantization"],
                 "agreement": card["verification"].get("agreement"),
                 "passed": card["verification"].get("passed"), "card": card}
                for folder, card in done]

    def resume(self, data=None, log=print, verbose=1, callbacks=()):
        """Continue training from the last checkpoint (as `train --resume`); returns self."""
        from discomkd_keras.training import resume_run

        resume_run(self.path, log=log, verbose=verbose, data=self._data(data),
                   callbacks=callbacks)
        return self

    # --- helpers -----------------------------------------------------------------------
    def _check_modality(self, modality):
        names = deployed_names(self.config)
        if modality not in names:
            raise RunError(f"Unknown modality {modality!r}; {self.path} has: {', '.join(names)}.")

    def _data(self, data):
        """The run's dataset from `data` (in-memory arrays, checked against the run's
        fingerprints), None to read it from its spec; an arrays run without `data` is
        refused in one line."""
        spec = self.config["data"]
        if spec.get("source") != "arrays":
            if data is not None:
                raise RunError(f"{self.path} reads its data from {spec.get('directory') or spec['source']};"
                               " data= is only for runs trained from in-memory arrays.")
            return None
        from discomkd_keras.data.in_memory import check_same_arrays, refuse_to_load

        if data is None:
            refuse_to_load(spec)
        return check_same_arrays(spec, data, self.class_names)
