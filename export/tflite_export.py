"""Export one modality's best classifier from a run directory as a standalone
TFLite model, verified against its Keras twin before anything is written.

Path: Keras classifier (x -> class probabilities) -> SavedModel (keras.export.ExportArchive)
-> tf.lite.TFLiteConverter, with `supported_ops` always set explicitly
(builtins only: the device runtime has no Flex/Select-TF ops).

int8 is full-integer unless that model disagrees with Keras on the validation
split: then its input layers stay float (float_input_layers.py says why).

Writes OUT/<modality>/{<modality>.tflite, labels.txt, model_card.json}
through a temporary folder renamed into place.
"""

import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from discomkd_keras import run_directory
from discomkd_keras.model_cost import all_layers
from discomkd_keras.edge_demo import model_card, runtime
from discomkd_keras.export.float_input_layers import input_layer_ops, kept_float
from discomkd_keras.export.verification import DEFAULT_THRESHOLDS, verify
from discomkd_keras.methods import method_of

from discomkd_keras.choices import IO_TYPES, QUANTIZATIONS  # noqa: E402


class ExportError(ValueError):
    """A problem that stops an export; the message names it."""


def read_run(run_dir):
    """(config, state) of a run directory, or ExportError saying why it is not one."""
    try:
        return run_directory.read_run(run_dir)
    except run_directory.RunError as err:
        raise ExportError(str(err)) from None


def load_best_classifier(run_dir, modality):
    """(classifier, info) of a modality's best checkpoint, or ExportError."""
    try:
        return run_directory.load_best(run_dir, modality)
    except run_directory.RunError as err:
        raise ExportError(str(err)) from None


def as_float32(model):
    """The same model with every layer computing in float32.

    A classifier trained under mixed precision computes in float16, which the
    TFLite builtins do not take; its variables are float32 already, so the
    float32 twin is the same model built with float32 layers, plus its weights.
    A ModalityClassifier's config names no dtype policy (it takes the one in force):
    it is rebuilt under the float32 policy. A plain model (the best file of a run
    from before ModalityClassifier) is rebuilt from its config with the dtype
    policies replaced.
    """
    import keras

    from discomkd_keras.models.modality_classifier import ModalityClassifier

    if isinstance(model, ModalityClassifier):
        if all(layer.compute_dtype == "float32" for layer in all_layers(model)):
            return model
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("float32")
        try:
            twin = ModalityClassifier.from_config(model.get_config())
        finally:
            keras.config.set_dtype_policy(previous)
        twin.set_weights(model.get_weights())
        return twin

    def to_float32(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy" and isinstance(node.get("config"), dict):
                return {**node, "config": {**node["config"], "name": "float32"}}
            return {k: to_float32(v) for k, v in node.items()}
        if isinstance(node, list):
            return [to_float32(v) for v in node]
        return node

    config = keras.saving.serialize_keras_object(model)
    if to_float32(config) == config:
        return model
    twin = keras.saving.deserialize_keras_object(to_float32(config))
    twin.set_weights(model.get_weights())
    return twin


def probability_model(classifier, modality):
    """What a device runs, in float32: x -> class probabilities. A ModalityClassifier
    gives them already; the best file of a run from before it holds a plain model
    giving logits, which gets its softmax here (the legacy path)."""
    import keras

    from discomkd_keras.models.modality_classifier import ModalityClassifier

    classifier = as_float32(classifier)
    if isinstance(classifier, ModalityClassifier):
        return classifier
    x = keras.Input(classifier.input_shape[1:], name=modality)
    return keras.Model(x, keras.layers.Softmax(name="probabilities")(classifier(x, training=False)))


def keras_probabilities(model, x, batch_size=128):
    """Direct (eager) calls in batches: a fresh model per export would otherwise
    trace a new predict function each time."""
    import keras

    out = [keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=False))
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0,), np.float32)


def _unsupported_ops(message):
    found = re.findall(r"^\s*(tf\.[A-Za-z0-9_]+)\(", message, flags=re.MULTILINE)
    return sorted(set(found))


def convert(model, quantization, representative=None, io_type="float32", per_tensor=False,
            float_nodes=()):
    """Keras model (batch-1 float input) -> TFLite flatbuffer bytes.

    per_tensor: one int8 scale per weight tensor instead of one per output
    channel, for convolutions (TF 2.21's full-integer quantizer keeps dense
    layers per-channel even with its dense-layer switch, set here too).
    Per-channel parameters are stored as a float32 scale plus an int64 zero
    point per channel: 12 bytes a channel, about 14 % of an int8
    dscnn branch (9,648 channels). Per-tensor drops them at some accuracy.

    float_nodes: int8 only: the output tensor names of ops to keep in float
    (`float_input_layers.input_layer_ops`); the converter adds the (de)quantize ops.
    """
    import keras
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ExportError(f"Unknown quantization {quantization!r}; expected one of {QUANTIZATIONS}.")
    if io_type not in IO_TYPES:
        raise ExportError(f"Unknown I/O type {io_type!r}; expected one of {IO_TYPES}.")
    if per_tensor and quantization not in ("int8", "dynamic"):
        raise ExportError(f"--per-tensor applies to int8 and dynamic quantization, not {quantization}.")
    if io_type != "float32" and quantization != "int8":
        raise ExportError(f"--io {io_type} needs --quantize int8 (integer I/O exists only for "
                          "full-integer models).")
    if float_nodes and quantization != "int8":
        raise ExportError(f"Layers kept in float apply to int8 quantization, not {quantization}.")
    spec = keras.InputSpec(shape=(1,) + tuple(model.input_shape[1:]), dtype="float32")
    with tempfile.TemporaryDirectory() as saved_model_dir:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[spec])
        archive.write_out(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        # Never Flex: LiteRT on the device runs builtin ops only.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if per_tensor:
            # The converter's only switch for it; present since TF 2.6, checked so
            # that a future TF without it fails loudly instead of going per-channel.
            if not hasattr(converter, "_experimental_disable_per_channel"):
                raise ExportError("This TensorFlow's converter has no per-tensor weight "
                                  "quantization switch; export without --per-tensor.")
            converter._experimental_disable_per_channel = True  # convolutions
            if hasattr(converter, "_experimental_disable_per_channel_quantization_for_dense_layers"):
                converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        if quantization == "int8":
            if representative is None or len(representative) == 0:
                raise ExportError("Full-integer quantization needs a representative data set, "
                                  "and it is empty.")
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if float_nodes:  # the layers kept in float run as float builtins
                converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
            converter.representative_dataset = lambda: ([r[None].astype(np.float32)]
                                                        for r in representative)
            converter.inference_input_type = getattr(tf, io_type)
            converter.inference_output_type = getattr(tf, io_type)
        try:
            # The converter's C++ progress lines ("fully_quantize: 0, ...") go straight to
            # stderr; its failures come back as the exception below, with their message.
            with runtime.quiet_native_stderr(), \
                    kept_float(float_nodes) if float_nodes else contextlib.nullcontext():
                return converter.convert()
        except Exception as err:  # the converter raises many types; the message is what matters
            text = str(err)
            ops = _unsupported_ops(text)
            detail = f"ops not supported as TFLite builtins: {', '.join(ops)}" if ops \
                else text.strip().splitlines()[-1] if text.strip() else type(err).__name__
            raise ExportError(f"TFLite conversion ({quantization}) failed: {detail}") from None


def _agreement(flatbuffer, model, x):
    """Argmax agreement of a TFLite model with its Keras twin on the rows `x`."""
    keras_pred = keras_probabilities(model, x).argmax(1)
    return float(np.mean(runtime.Classifier(flatbuffer).predict(x).argmax(1) == keras_pred))


def _check_writable(directory):
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise ExportError(f"Cannot write to output folder {directory}: {err.strerror or err}.") from None


def require_converter():
    """ExportError unless TensorFlow's converter and the LiteRT interpreter can run here."""
    import importlib.util

    import keras

    missing = [m for m in ("tensorflow", "ai_edge_litert") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError("Export needs TensorFlow and ai-edge-litert (missing here: "
                          f"{', '.join(missing)}): pip install 'discomkd-keras[tensorflow]'. "
                          "A run trained on JAX exports from such an environment.")
    if keras.backend.backend() != "tensorflow":
        raise ExportError(f"Export runs on the TensorFlow backend, not {keras.backend.backend()}: "
                          "unset KERAS_BACKEND for this command (the .keras files are the same).")


def export_modality(run_dir, modality, out_dir=None, **options):
    """Convert, verify and write one modality; return its model card (a dict).
    Options: see `_export_modality`. A failed export leaves nothing behind: not
    even the output folders it created."""
    made = _missing_dirs(Path(out_dir) if out_dir else Path(run_dir) / "export")
    try:
        return _export_modality(run_dir, modality, out_dir=out_dir, **options)
    except BaseException:
        for folder in made:  # deepest first; only the ones still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _missing_dirs(folder):
    """`folder` and its parents that do not exist yet, deepest first."""
    return [p for p in [folder, *folder.parents] if not p.exists()]


def _remove_stale_temporaries(out_dir, modality):
    """Temporary folders of exports killed before their rename (SIGKILL, power loss)."""
    for tmp in out_dir.glob(f".{modality}.*.tmp"):
        try:
            pid = int(tmp.name.split(".")[-2])
            os.kill(pid, 0)  # still running: its folder
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def _export_modality(run_dir, modality, quantization="int8", out_dir=None, io_type="float32",
                    representative_size=300, threshold=None, overwrite=False, data=None, seed=0,
                    per_tensor=False, float_input_layers=None, log=print):
    """Convert, verify and write one modality; return its model card (a dict).

    float_input_layers (int8): None (the default) keeps the model full-integer unless
    it agrees with the Keras classifier on less than `threshold` of the validation
    split, and then converts it again with its input layers in float
    (`float_input_layers.py`); True always keeps them in float; False never
    (`export --integer-only`)."""
    from discomkd_keras.data import load_data

    run_dir = Path(run_dir)
    config, state = read_run(run_dir)
    # Faults of the run come first: they hold on every backend and environment.
    if method_of(config).joint:
        raise ExportError(f"{run_dir} is a multi-modal teacher run: it has no single-modality "
                          "classifier to export (distil students from it: --method kd --teacher).")
    if modality not in config["modalities"]:
        raise ExportError(f"Unknown modality {modality!r}; this run has: "
                          f"{', '.join(config['modalities'])}.")
    require_converter()
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS[quantization] if quantization in DEFAULT_THRESHOLDS else 0.98
    if not 0.0 <= threshold <= 1.0:
        raise ExportError(f"--threshold must lie in [0, 1]; got {threshold}.")
    out_dir = Path(out_dir) if out_dir else run_dir / "export"
    target = out_dir / modality
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists; pass --overwrite to replace it.")
    _check_writable(out_dir)
    if int(representative_size) < 1 and quantization == "int8":
        raise ExportError("--representative-size must be >= 1 for int8 (the representative "
                          "data set would be empty).")

    classifier, best = load_best_classifier(run_dir, modality)
    # `export --check` compares it: a card belongs to exactly this checkpoint file.
    checkpoint_sha256 = run_directory.file_sha256(run_directory.best_path(run_dir, modality))
    data = data if data is not None else load_data(config["data"])
    x_train, _ = data.split(modality, "train")
    rows = np.random.default_rng(seed).permutation(len(x_train))[: int(representative_size)]
    representative = x_train[np.sort(rows)]

    model = probability_model(classifier, modality)
    started = time.perf_counter()
    flatbuffer = convert(model, quantization, representative, io_type, per_tensor)
    log(f"[{modality}] converted ({quantization}, {io_type} I/O) in "
        f"{time.perf_counter() - started:.1f}s: {len(flatbuffer) / 1024:.1f} KiB")
    float_ops = []
    if quantization == "int8" and float_input_layers is not False:
        keep = float_input_layers
        if keep is None:  # chosen on the validation split: the test split only verifies
            x_valid, _ = data.split(modality, "valid")
            rows = x_valid if len(x_valid) else representative
            agreement = _agreement(flatbuffer, model, rows)
            keep = agreement < threshold
            if keep:
                log(f"[{modality}] full-integer int8 agrees with Keras on {agreement:.4f} of the "
                    f"{'validation split' if len(x_valid) else 'representative rows'} "
                    f"(< {threshold}): its input layers stay float")
        if keep:
            float_ops = input_layer_ops(flatbuffer)
            flatbuffer = convert(model, quantization, representative, io_type, per_tensor,
                                 float_nodes=[name for _, name in float_ops])
            log(f"[{modality}] converted (int8, {len(float_ops)} input-layer ops in float): "
                f"{len(flatbuffer) / 1024:.1f} KiB")
    ops = runtime.op_names(flatbuffer)

    x_test, y_test = data.split(modality, "test")
    keras_probs = keras_probabilities(model, x_test)
    report = verify(flatbuffer, x_test, y_test, keras_probs, data.num_classes, threshold)
    if not report["passed"]:
        how = (f"{quantization}, its input layers in float" if float_ops
               else f"{quantization}, full-integer" if quantization == "int8" else quantization)
        raise ExportError(f"[{modality}] verification failed: argmax agreement "
                          f"{report['agreement']:.4f} < threshold {threshold} "
                          f"({how}); nothing was written.")

    tflite = runtime.Classifier(flatbuffer)
    source = {"run": run_dir.resolve().name, "checkpoint": f"{run_directory.BEST_DIR}/{modality}.keras",
              "checkpoint_sha256": checkpoint_sha256, "epoch": best["epoch"],
              "valid_weighted_f1": best["f1"], "dataset": config["dataset"],
              "encoder": config["encoders"].get(modality), "versions": config["versions"]}
    try:
        card = model_card.build_card(
            modality=modality, kind=config["kinds"][modality], model_file=f"{modality}.tflite",
            class_names=config["class_names"], quantization=quantization,
            weight_scales=("per-tensor" if per_tensor else "per-channel")
            if quantization in ("int8", "dynamic") else None,
            input_tensor=_tensor_card(tflite.input, "NHWC" if len(tflite.input["shape"]) == 4 else "NF"),
            output_tensor=dict(_tensor_card(tflite.output, "NK"), meaning="class probabilities (softmax)"),
            preprocessing=_card_preprocessing(config, data, modality), source=source,
            file_size_bytes=len(flatbuffer), parameters=int(classifier.count_params()), ops=ops,
            representative_samples=int(len(representative)) if quantization == "int8" else 0,
            verification=report)
        if quantization == "int8":
            card["integer_only"] = not float_ops
            card["float_ops"] = [{"op": op, "output": name} for op, name in float_ops]
        card_text = model_card.card_json(card)
    except model_card.ModelCardError as err:
        raise ExportError(f"[{modality}] {err}") from None

    # Written whole in a temporary folder, then renamed: a kill leaves nothing at `target`.
    _remove_stale_temporaries(out_dir, modality)
    tmp = Path(tempfile.mkdtemp(prefix=f".{modality}.", suffix=f".{os.getpid()}.tmp", dir=out_dir))
    try:
        (tmp / card["model_file"]).write_bytes(flatbuffer)
        (tmp / card["labels_file"]).write_text("\n".join(config["class_names"]) + "\n")
        (tmp / model_card.CARD_FILE).write_text(card_text)
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return card


def _card_preprocessing(config, data, modality):
    """The run's recorded preprocessing of the modality. Runs trained before the data
    sources named their input encoding lack `encoding`; it comes from the data source
    then (the same code read the same data)."""
    recorded = dict(config["preprocessing"].get(modality, {}))
    if "encoding" not in recorded:
        current = data.preprocessing.get(modality, {})
        if "encoding" in current:
            recorded["encoding"] = current["encoding"]
    return recorded


def _replace_dir(new, target):
    """Move `new` to `target`; an existing `target` is swapped out, then deleted."""
    if target.exists():
        old = target.with_name(f".{target.name}.old.{os.getpid()}")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)


def _tensor_card(details, layout):
    scale, zero_point = details["quantization"]
    return {"name": details["name"], "shape": [int(d) for d in details["shape"]],
            "layout": layout, "dtype": np.dtype(details["dtype"]).name,
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)}
            if details["dtype"] != np.float32 else None}


def export_modalities(run_dir, modality, out_dir=None, log=print, on_export=None, **options):
    """`discomkd-keras export` and `Run.export`: export one modality, a list of them or "all"
    (the data loaded once); return [(folder, card)], one per modality, after calling
    `on_export(folder, card)` as each is written (a list, not a generator: nothing is left
    unexported by a caller that does not iterate). `options` go to `export_modality`."""
    from discomkd_keras.data import load_data

    config, _ = read_run(run_dir)
    modalities = (config["modalities"] if modality == "all"
                  else [modality] if isinstance(modality, str) else list(modality))
    data = options.pop("data", None)
    if data is None and len(modalities) > 1:
        data = load_data(config["data"])
    done = []
    for m in modalities:
        card = export_modality(run_dir, m, out_dir=out_dir, data=data, log=log, **options)
        done.append(((Path(out_dir) if out_dir else Path(run_dir) / "export") / m, card))
        if on_export is not None:
            on_export(*done[-1])
    return done
