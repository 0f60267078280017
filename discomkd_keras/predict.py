"""`discomkd-keras predict`: classify files on the host, with a run's Keras
classifiers or with an export folder's TFLite models.

TARGET is either

- a run directory (config.json): each modality's best/<modality>.keras, fed the
  float input that the device's `Preprocessor` makes of a file under the run's
  own recorded preprocessing (the reader training used: the same input, bit for
  bit); or
- an export folder, as `discomkd-keras export` writes it: one modality's folder
  (<modality>.tflite, labels.txt, model_card.json) or the folder holding one such
  folder per modality (`export --modality all`). It runs through edge_demo's model
  card, preprocessing and LiteRT runtime, as the device does, and never imports
  TensorFlow or Keras.

Which modality a file goes to follows from its encoding: a .wav to the audio
modality, a 16-bit PNG to the depth modality, an 8-bit PNG or JPEG to the 8-bit
image modality (an RGB file to a grey one if there is no RGB one: the grey reader
converts it), a TIFF to the bands modality, a .npy to the modality whose sample
shape it has. A file that two modalities could take needs `modality=`. Files of a
type no modality takes are ignored (counted) when met in a folder and refused when
named; a file of a taken type but of another encoding (an 8-bit PNG where the only
image modality is 16-bit depth), or an unreadable one, is refused: a DataError
naming the file and why. A target that is no run or export folder is a RunError
or a ModelCardError. Nothing is predicted until every file has been routed.
"""

import os
from collections import Counter
from pathlib import Path

import numpy as np

from discomkd_keras import run_directory
from discomkd_keras.data import DataError
from discomkd_keras.edge_demo import model_card, preprocessing, runtime
from discomkd_keras.edge_demo.model_card import ModelCardError
from discomkd_keras.edge_demo.preprocessing import InputError, Preprocessor
from discomkd_keras.methods import method_of
from discomkd_keras.run_directory import RunError

__all__ = ["Predictions", "predict_files", "predict_against", "open_target", "csv_text",
           "format_row"]

# Files turned into model inputs (and held in memory) at a time, per modality.
CHUNK_FILES = 1024
# An image file's encoding, read from its header (Pillow mode): the words for messages.
IMAGE_WORDS = {"rgb8": "an 8-bit RGB image", "gray8": "an 8-bit grey image",
               preprocessing.DEPTH: "a 16-bit PNG (depth)"}
IMAGE_ENCODINGS = tuple(IMAGE_WORDS)


class Predictions(list):
    """The rows of `predict_files`, one per sample ({path, modality, top1, probability,
    topk}), in input order; `ignored`: the files met in folders that no modality of the
    target takes; `notes`: what preprocessing did to some inputs, {note: how many inputs};
    `target`: "run" or "export"."""

    def __init__(self, rows=(), ignored=(), notes=None, target=None):
        super().__init__(rows)
        self.ignored = list(ignored)
        self.notes = dict(notes or {})
        self.target = target


# --------------------------------------------------------------------------- targets


class _Head:
    """One modality of a target: its Preprocessor, class names and probabilities."""

    def __init__(self, modality, card, class_names, notes, probabilities):
        self.modality = modality
        self.card = card
        self.class_names = list(class_names)
        self.pre = Preprocessor(card, warn=lambda message: _note(notes, message))
        self._probabilities = probabilities  # (N, ...) float inputs -> (N, K), lazily loaded

    @property
    def encoding(self):
        return self.pre.encoding

    def suffixes(self):
        return self.pre.suffixes()

    def load(self, path):
        """[(name, float input)] of one file; DataError naming it if it cannot be read."""
        try:
            return self.pre.load(path)
        except InputError as err:
            raise DataError(str(err)) from None

    def probabilities(self, x):
        return np.asarray(self._probabilities(x), np.float32)


def _note(notes, message):
    """Count a preprocessing note by what it says, without the input's name."""
    general = message.split(": ", 1)[-1]
    notes[general] = notes.get(general, 0) + 1


class _Target:
    def __init__(self, kind, path, heads):
        self.kind, self.path, self.heads = kind, Path(path), heads
        self.label = f"this {'run' if kind == 'run' else 'export'}"
        self.class_names = next(iter(heads.values())).class_names


def open_target(target, notes=None):
    """The run directory or export folder `target` as (kind, {modality: head});
    models are loaded on first use. RunError / ModelCardError say what is wrong."""
    target = Path(target)
    notes = {} if notes is None else notes
    if not target.exists():
        raise RunError(f"{target} does not exist (expected a run directory or an export folder).")
    if run_directory.is_run(target):
        return _run_target(target, notes)
    if (target / model_card.CARD_FILE).is_file():
        folders = [target]
    elif target.is_dir():
        folders = sorted(p for p in target.iterdir()
                         if not p.name.startswith(".") and (p / model_card.CARD_FILE).is_file())
    else:
        folders = []
    if not folders:
        raise RunError(f"{target} is neither a run directory (no {run_directory.CONFIG}) nor an "
                       f"export folder (no {model_card.CARD_FILE}, nor folders holding one as "
                       "`discomkd-keras export --modality all` writes them).")
    return _export_target(target, folders, notes)


def _run_target(run_dir, notes):
    config, _ = run_directory.read_run(run_dir)
    if method_of(config).joint:
        raise RunError(f"{run_dir} is a multi-modal teacher run: it has no single-modality "
                       "classifier to predict with (its students do: --method kd --teacher).")
    heads = {}
    for m in config["modalities"]:
        pre = config["preprocessing"].get(m, {})
        if "encoding" not in pre:
            raise RunError(f"{run_dir}/{run_directory.CONFIG} records no input encoding for {m!r} "
                           "(a run from before encodings were recorded): export it "
                           f"(discomkd-keras export {run_dir} --modality {m}) and predict from "
                           "the export folder.")
        card = {"preprocessing": pre, "kind": config["kinds"][m],
                "input": {"shape": [1, *config["input_shapes"][m]]}}
        heads[m] = _Head(m, card, config["class_names"], notes, _keras_probabilities(run_dir, m))
    return _Target("run", run_dir, heads)


def _keras_probabilities(run_dir, modality):
    """x -> probabilities of the run's best classifier of `modality`, loaded on first call
    (in float32, a softmax added to a legacy best file's logits, as export does)."""
    model = []

    def probabilities(x):
        from discomkd_keras.export.tflite_export import keras_probabilities, probability_model

        if not model:
            classifier, _ = run_directory.load_best(run_dir, modality)
            model.append(probability_model(classifier, modality))
        return keras_probabilities(model[0], np.asarray(x, np.float32))

    return probabilities


def _export_target(root, folders, notes):
    heads, first = {}, None
    threads = max(1, min(4, os.cpu_count() or 1))
    for folder in folders:
        card, labels = model_card.read_export(folder)
        m = card["modality"]
        if m in heads:
            raise ModelCardError(f"{root}: two export folders hold modality {m!r} "
                                 f"({heads[m].folder.name}, {folder.name}); keep one.")
        if first is not None and labels != first[1]:
            raise ModelCardError(f"{folder}: its classes ({', '.join(labels)}) differ from those "
                                 f"of {first[0]} ({', '.join(first[1])}): the folders come from "
                                 "different runs.")
        first = first or (folder, labels)
        heads[m] = _Head(m, card, labels, notes, _tflite_probabilities(folder, card, labels,
                                                                       threads))
        heads[m].folder = folder
    return _Target("export", root, heads)


def _tflite_probabilities(folder, card, labels, threads):
    """x -> probabilities of an export folder's model, opened on first call; batch 1 per
    invocation, as on the device."""
    model = []

    def probabilities(x):
        if not model:
            try:
                model.append(runtime.open_export(folder, card, labels, threads))
            except runtime.ModelFileError as err:
                raise ModelCardError(str(err)) from None
        return model[0].predict(x)

    return probabilities


# --------------------------------------------------------------------------- files


def collect(inputs, recursive=True):
    """[(path, named)]: files named as they are (named=True) and the files of folders,
    walked in sorted order (recursively unless `recursive` is False), hidden files and
    folders skipped. A name that does not exist is a DataError."""
    out, seen = [], set()

    def add(path, named):
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.append((path, named))

    if not inputs:
        raise DataError("No inputs: give files or folders to classify.")
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            for top, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
                for name in sorted(files):
                    if not name.startswith("."):
                        add(Path(top) / name, False)
        elif item.exists():
            add(item, True)
        else:
            raise DataError(f"{item}: no such file or folder.")
    return out


def _image_encoding(path):
    """rgb8, gray8 or depth, from the file's header (as training tells a modality's)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError("Pillow is not installed: pip install pillow") from None
    try:
        with Image.open(path) as im:
            mode = im.mode
    except (UnidentifiedImageError, OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else "unknown error"
        raise DataError(f"{path}: not a readable image ({type(err).__name__}: {first}).") from None
    if mode in preprocessing.DEPTH_MODES:
        return preprocessing.DEPTH
    return "gray8" if mode in ("L", "LA", "1") else "rgb8"


def _npy_shape(path):
    try:
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    except Exception as err:  # a damaged header raises many types
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{path}: not a readable .npy array ({first}).") from None


def _npy_fits(head, shape):
    if head.encoding == preprocessing.AUDIO:
        return len(shape) in (1, 2)
    shapes = head.pre._sample_shapes()
    return shape in shapes or (len(shape) >= 1 and shape[1:] in shapes)


def _accepted(target):
    return "; ".join(f"{m}: {', '.join(h.suffixes())}" for m, h in target.heads.items())


def _ambiguous(path, what, candidates, target):
    names = list(candidates)
    return DataError(f"{path}: {what} fits {len(names)} modalities of {target.label}, "
                     f"{', '.join(names[:-1])} and {names[-1]}: choose one with --modality "
                     f"({' or '.join(names)}).")


def route(target, files, modality=None):
    """([(path, modality)], [ignored paths]): each file's modality, by its encoding
    (or `modality`); see the module's docstring."""
    routed, ignored = [], []
    for path, named in files:
        suffix = path.suffix.lower()
        takers = [m for m, h in target.heads.items()
                  if (modality is None or m == modality) and suffix in h.suffixes()]
        if not takers:
            if not named:
                ignored.append(path)
                continue
            what = f"{suffix} files" if suffix else "files without a suffix"
            if modality is not None:
                raise DataError(f"{path}: modality {modality} takes no {what} (it takes "
                                f"{', '.join(target.heads[modality].suffixes())}).")
            raise DataError(f"{path}: no modality of {target.label} takes {what} "
                            f"({_accepted(target)}).")
        if modality is not None:  # its reader says why if the file does not fit
            routed.append((path, modality))
            continue
        routed.append((path, _choose(target, path, suffix, takers)))
    return routed, ignored


def _choose(target, path, suffix, takers):
    """The one modality among `takers` (which take the suffix) that the file's encoding fits."""
    heads = target.heads
    if suffix in preprocessing.IMAGE_SUFFIXES:
        encoding = _image_encoding(path)
        fits = [m for m in takers if heads[m].encoding == encoding]
        if not fits and encoding == "rgb8":  # a grey modality's reader converts RGB to luma
            fits = [m for m in takers if heads[m].encoding == "gray8"]
        if not fits:
            images = "; ".join(f"{m}: {heads[m].pre.describe()}" for m in heads
                               if heads[m].encoding in IMAGE_ENCODINGS)
            raise DataError(f"{path}: {IMAGE_WORDS[encoding]}, which no modality of "
                            f"{target.label} takes ({images}).")
        if len(fits) > 1:
            raise _ambiguous(path, IMAGE_WORDS[encoding], fits, target)
        return fits[0]
    if len(takers) == 1:
        return takers[0]
    if suffix == ".npy":
        shape = _npy_shape(path)
        fits = [m for m in takers if heads[m].encoding != preprocessing.AUDIO
                and _npy_fits(heads[m], shape)]
        fits = fits or [m for m in takers if _npy_fits(heads[m], shape)]
        if not fits:
            wanted = "; ".join(f"{m}: {heads[m].pre.describe()}" for m in takers)
            raise DataError(f"{path}: a .npy array of shape {shape}, which fits no modality of "
                            f"{target.label} ({wanted}).")
        if len(fits) > 1:
            raise _ambiguous(path, f"a .npy array of shape {shape}", fits, target)
        return fits[0]
    what = {".wav": "a WAV file"}.get(suffix, f"a {suffix} file")
    raise _ambiguous(path, what, takers, target)


# --------------------------------------------------------------------------- predicting


def _rows(target, routed, top_k):
    """Rows of the routed files, in their order; each modality's files in few batches."""
    per_file = [None] * len(routed)
    by_modality = {}
    for i, (_, m) in enumerate(routed):
        by_modality.setdefault(m, []).append(i)
    for m, indices in by_modality.items():
        head = target.heads[m]
        k = min(top_k, len(head.class_names))
        for start in range(0, len(indices), CHUNK_FILES):
            chunk = indices[start:start + CHUNK_FILES]
            samples = [head.load(routed[i][0]) for i in chunk]
            xs = [x for file_samples in samples for _, x in file_samples]
            probs = head.probabilities(np.stack(xs)) if xs else np.zeros((0, 0), np.float32)
            row = 0
            for i, file_samples in zip(chunk, samples):
                per_file[i] = []
                for name, _ in file_samples:
                    per_file[i].append(_row(name, m, probs[row], head.class_names, k))
                    row += 1
    return [r for rows in per_file for r in rows]


def _row(name, modality, probs, class_names, k):
    order = np.argsort(-probs, kind="stable")[:k]
    topk = [(class_names[j], float(probs[j])) for j in order]
    return {"path": name, "modality": modality, "top1": topk[0][0],
            "probability": topk[0][1], "topk": topk}


def _check_options(target, modality, top_k):
    if int(top_k) < 1:
        raise DataError(f"top_k must be at least 1; got {top_k}.")
    if modality is not None and modality not in target.heads:
        raise DataError(f"Unknown modality {modality!r}; {target.label} has: "
                        f"{', '.join(target.heads)}.")


def predict_files(target, inputs, modality=None, top_k=3, recursive=True):
    """Classify files with a run directory's Keras classifiers or an export folder's
    TFLite models (TARGET: see the module's docstring).

    inputs: files or folders (walked recursively unless `recursive` is False; hidden
    files skipped). modality: send every file to this modality (required where two
    modalities could take a file). Returns `Predictions`: a list of rows
    {"path", "modality", "top1", "probability", "topk": [(class, probability), ...]}
    (top_k of them, most probable first), one per sample in input order (a batch .npy
    gives "path[i]" rows), with `.ignored` and `.notes`. Raises DataError (an input),
    RunError or ModelCardError (the target)."""
    notes = {}
    target = open_target(target, notes)
    _check_options(target, modality, top_k)
    routed, ignored = _route_inputs(target, inputs, modality, recursive)
    return Predictions(_rows(target, routed, int(top_k)), ignored, notes, target.kind)


def _route_inputs(target, inputs, modality, recursive):
    files = collect(inputs, recursive)
    routed, ignored = route(target, files, modality)
    if not routed:
        types = Counter(p.suffix.lower() or "(none)" for p in ignored)
        found = (f"{len(ignored)} file{'s' if len(ignored) != 1 else ''} of other types ("
                 + ", ".join(f"{s} {n}" for s, n in types.most_common()) + ")") if ignored \
            else "no files"
        takes = (f"modality {modality} takes {', '.join(target.heads[modality].suffixes())}"
                 if modality else f"{target.label} takes {_accepted(target)}")
        raise DataError(f"Nothing to classify in {', '.join(str(i) for i in inputs)}: found "
                        f"{found}; {takes}.")
    return routed, ignored


def predict_against(run_dir, export_dir, inputs, modality=None, top_k=3, recursive=True):
    """The run's predictions (as `predict_files`) and the export's on the same files,
    for every modality the export holds, with their top-1 agreement.

    Returns (rows, summary): rows are the run's `Predictions`; summary {"agree", "total",
    "by_modality": {m: (agree, total)}, "differences": [(path, modality, (run class,
    probability), (export class, probability))], "not_compared": {m: files},
    "other_checkpoint": [modalities exported from another checkpoint than the run's
    best file], "export_rows": the export's rows}."""
    notes = {}
    run = open_target(run_dir, notes)
    if run.kind != "run":
        raise RunError(f"{run_dir}: --against compares a run directory (config.json) with an "
                       "export folder; this is an export folder.")
    export = open_target(export_dir, {})
    if export.kind != "export":
        raise ModelCardError(f"{export_dir}: not an export folder (no {model_card.CARD_FILE}); "
                             "--against takes what `discomkd-keras export` wrote.")
    if export.class_names != run.class_names:
        raise ModelCardError(f"{export_dir}: its classes ({', '.join(export.class_names)}) "
                             f"differ from the run's ({', '.join(run.class_names)}): it was "
                             "exported from another run.")
    _check_options(run, modality, top_k)
    routed, ignored = _route_inputs(run, inputs, modality, recursive)
    rows = Predictions(_rows(run, routed, int(top_k)), ignored, notes, "run")

    compared = [(p, m) for p, m in routed if m in export.heads]
    not_compared = dict(Counter(m for _, m in routed if m not in export.heads))
    if not compared:
        raise ModelCardError(f"{export_dir} holds no classifier of these inputs' modalities "
                             f"({', '.join(sorted(not_compared))}); it has: "
                             f"{', '.join(export.heads)}.")
    other_checkpoint = []
    for m in sorted({m for _, m in compared}):
        sha = export.heads[m].card["source"]["checkpoint_sha256"]
        best = run_directory.best_path(run_dir, m)
        if best.is_file() and run_directory.file_sha256(best) != sha:
            other_checkpoint.append(m)
    export_rows = _rows(export, compared, int(top_k))
    keras_rows = {(r["path"], r["modality"]): r for r in rows}
    agree, by_modality, differences = 0, {}, []
    for e in export_rows:
        r = keras_rows[(e["path"], e["modality"])]
        same = r["top1"] == e["top1"]
        agree += same
        a, n = by_modality.get(e["modality"], (0, 0))
        by_modality[e["modality"]] = (a + same, n + 1)
        if not same:
            differences.append((e["path"], e["modality"], (r["top1"], r["probability"]),
                                (e["top1"], e["probability"])))
    return rows, {"agree": agree, "total": len(export_rows), "by_modality": by_modality,
                  "differences": differences, "not_compared": not_compared,
                  "other_checkpoint": other_checkpoint, "export_rows": export_rows}


# --------------------------------------------------------------------------- output


def format_topk(topk, sep=";", decimals=6):
    return sep.join(f"{c}:{p:.{decimals}f}" for c, p in topk)


def csv_text(rows):
    """The CSV of rows: path, modality, top1, probability, topk ("class:prob;class:prob")."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "modality", "top1", "probability", "topk"])
    for r in rows:
        writer.writerow([r["path"], r["modality"], r["top1"], f"{r['probability']:.6f}",
                         format_topk(r["topk"])])
    return buffer.getvalue()


def format_row(row, path_width=0):
    """One line: path, modality, top-1 and its probability, the top-k."""
    topk = ", ".join(f"{c} {p:.3f}" for c, p in row["topk"])
    return (f"{row['path']:<{path_width}}  {row['modality']}  {row['top1']} "
            f"{row['probability']:.3f}  [top-{len(row['topk'])}: {topk}]")
