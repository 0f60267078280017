import json
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from discomkd_keras.cli import main
from discomkd_keras.data import load_data
from discomkd_keras.edge_demo import model_card
from discomkd_keras.edge_demo.runtime import Classifier
from discomkd_keras.export import ExportError, export_modality
from discomkd_keras.run_directory import file_sha256
from helpers import write_released

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="TFLite conversion needs the TensorFlow backend")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    # 28x28 and D = 64: enough weights that the int8 file is about a quarter of float32.
    data_dir = write_released(root / "data", n_per_class=60, image=(3, 28, 28))
    run_dir = root / "run"
    result = CliRunner().invoke(main, [
        "train", "--data-dir", str(data_dir), "--run-dir", str(run_dir), "--epochs", "6",
        "--encoder", "rgb=lenet", "--feature-dim", "64", "--batch-size", "32", "--lr", "3e-3",
        "--quiet"])
    assert result.exit_code == 0, result.output
    return run_dir


def keras_probs(run_dir, modality, x):
    clf = keras.saving.load_model(run_dir / "best" / f"{modality}.keras", safe_mode=True)
    return np.asarray(clf.predict(x, verbose=0))  # a ModalityClassifier: probabilities


def test_float32_matches_keras_and_card_is_consistent(run, tmp_path):
    card = export_modality(run, "rgb", quantization="float32", out_dir=tmp_path, log=lambda *_: None)
    folder = tmp_path / "rgb"
    assert sorted(p.name for p in folder.iterdir()) == ["labels.txt", "model_card.json", "rgb.tflite"]
    text = (folder / "model_card.json").read_text()
    assert json.loads(text) == card
    assert model_card.read_export(folder) == (card, ["0", "1", "2"])
    assert (folder / "labels.txt").read_text().splitlines() == ["0", "1", "2"]

    config = json.loads((run / "config.json").read_text())
    x, y = load_data(config["data"]).split("rgb", "test")
    tflite = Classifier(folder / "rgb.tflite").predict(x)
    np.testing.assert_allclose(tflite, keras_probs(run, "rgb", x), atol=1e-5)
    v = card["verification"]
    assert v["agreement"] == 1.0 and v["passed"] and v["samples"] == len(y) == 36
    assert v["tflite_accuracy"] == v["keras_accuracy"]

    tflite = Classifier(folder / "rgb.tflite")
    inp, out = tflite.input, tflite.output
    assert card["input"]["shape"] == list(inp["shape"]) == [1, 28, 28, 3]
    assert card["input"]["name"] == inp["name"] and card["input"]["dtype"] == "float32"
    assert card["output"]["shape"] == list(out["shape"]) == [1, 3]
    assert card["file_size_bytes"] == (folder / "rgb.tflite").stat().st_size
    assert card["format"] == "discomkd-keras/model-card/v2"
    assert card["preprocessing"]["encoding"] == "float_raw" and card["kind"] == "image"
    assert card["preprocessing"]["scale"] == 1.0
    # The source names the run and its checkpoint, never a path of this machine.
    source = card["source"]
    assert source["epoch"] == json.loads((run / "best" / "rgb.json").read_text())["epoch"]
    assert (source["run"], source["checkpoint"]) == ("run", "best/rgb.keras")
    assert source["checkpoint_sha256"] == file_sha256(run / "best" / "rgb.keras")
    assert "run_dir" not in source and "data" not in source
    for path in (run.resolve(), run.resolve().parent):
        assert str(path) not in text and json.dumps(str(path))[1:-1] not in text
    # Builtins only: no Flex (Select TF) or custom ops.
    assert card["ops"] and all(op.isupper() and not op.startswith(("FLEX", "CUSTOM")) for op in card["ops"])
    assert "CONV_2D" in card["ops"] and "SOFTMAX" in card["ops"]


@pytest.mark.parametrize("io_type", ["float32", "int8", "uint8"])
def test_int8_agrees_with_keras(run, tmp_path, io_type):
    card = export_modality(run, "rgb", quantization="int8", io_type=io_type, out_dir=tmp_path,
                           representative_size=100, log=lambda *_: None)
    v = card["verification"]
    assert v["agreement"] >= 0.98 and v["passed"]
    assert card["representative_samples"] == 100
    inp = Classifier(tmp_path / "rgb" / "rgb.tflite").input
    assert card["input"]["dtype"] == np.dtype(inp["dtype"]).name == io_type
    if io_type != "float32":
        scale, zero_point = inp["quantization"]
        assert card["input"]["quantization"] == {"scale": pytest.approx(scale), "zero_point": zero_point}
    sizes = card["file_size_bytes"]
    f32 = export_modality(run, "rgb", quantization="float32", out_dir=tmp_path / "f32",
                          log=lambda *_: None)["file_size_bytes"]
    assert sizes < 0.4 * f32  # int8 weights: about a quarter of float32


def test_int8_per_tensor_has_one_scale_per_convolution_kernel(run, tmp_path):
    kwargs = dict(quantization="int8", representative_size=100, log=lambda *_: None)
    channel = export_modality(run, "rgb", out_dir=tmp_path / "c", **kwargs)
    tensor = export_modality(run, "rgb", out_dir=tmp_path / "t", per_tensor=True, **kwargs)
    assert (channel["weight_scales"], tensor["weight_scales"]) == ("per-channel", "per-tensor")
    assert tensor["verification"]["agreement"] >= 0.98

    def most_conv_scales(path):  # convolution kernels are the 4-D int8 tensors
        details = Classifier(path).interpreter.get_tensor_details()
        return max(len(d["quantization_parameters"]["scales"]) for d in details
                   if len(d["shape"]) == 4 and d["dtype"] == np.int8)

    assert most_conv_scales(tmp_path / "c" / "rgb" / "rgb.tflite") > 1
    assert most_conv_scales(tmp_path / "t" / "rgb" / "rgb.tflite") == 1
    # Each dropped channel saved its float32 scale and int64 zero point.
    assert tensor["file_size_bytes"] < channel["file_size_bytes"]
    with pytest.raises(ExportError, match="--per-tensor applies to int8 and dynamic"):
        export_modality(run, "rgb", quantization="float16", out_dir=tmp_path / "f", per_tensor=True,
                        log=lambda *_: None)
    assert not (tmp_path / "f" / "rgb").exists()


def test_modality_all_and_overwrite(run, tmp_path):
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(run), "--modality", "all", "--out", str(out),
                                  "--quantize", "dynamic"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["rgb", "vec"]
    assert "argmax agreement" in result.output
    before = (out / "vec" / "model_card.json").read_text()
    result = runner.invoke(main, ["export", str(run), "--modality", "vec", "--out", str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (out / "vec" / "model_card.json").read_text() == before
    result = runner.invoke(main, ["export", str(run), "--modality", "vec", "--out", str(out),
                                  "--overwrite", "--quantize", "float16"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "vec" / "model_card.json").read_text())["quantization"] == "float16"
    assert sorted(p.name for p in out.iterdir()) == ["rgb", "vec"]  # no temp folders left

    # OUT is not under the run: the check needs RUN_DIR.
    result = runner.invoke(main, ["export", str(run), "--check", str(out / "vec")])
    assert result.exit_code == 0 and "PASS" in result.output, result.output
    # A model that does not match its card's Keras twin fails the check.
    (out / "vec" / "vec.tflite").write_bytes((out / "rgb" / "rgb.tflite").read_bytes())
    result = runner.invoke(main, ["export", str(run), "--check", str(out / "vec")])
    assert result.exit_code == 2, result.output
    assert "Error:" in result.output and "not this modality's model" in result.output


def test_check_finds_the_run_and_its_checkpoint(run, tmp_path):
    import shutil

    mine = tmp_path / "mine"
    shutil.copytree(run, mine)
    runner = CliRunner()
    assert runner.invoke(main, ["export", str(mine), "--modality", "vec", "--quantize",
                                "float32"]).exit_code == 0
    folder = mine / "export" / "vec"
    # The default export location RUN_DIR/export/<modality>: no RUN_DIR needed.
    result = runner.invoke(main, ["export", "--check", str(folder)])
    assert result.exit_code == 0 and "PASS" in result.output, result.output
    # A check below its threshold: the report, then one Error: line and exit 2, as any
    # other export problem (README, "Exit status").
    from discomkd_keras.export import verification
    real = verification.verify
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(verification, "verify", lambda *a: dict(real(*a), passed=False))
        result = runner.invoke(main, ["export", "--check", str(folder)])
    assert result.exit_code == 2 and "argmax agreement" in result.output
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {folder} failed its check against the run (see above); export it again.")

    def check_error(*args):
        result = runner.invoke(main, ["export", *map(str, args), "--check", str(elsewhere)])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        return result.output.strip()

    elsewhere = shutil.copytree(folder, tmp_path / "models" / "vec")
    assert check_error() == (
        f"Error: {elsewhere} is not in its run's export folder ({tmp_path} is not a run directory) "
        f"and was exported from run 'mine'; pass the run directory: discomkd-keras export RUN_DIR "
        f"--check {elsewhere}.")
    assert check_error(tmp_path) == (f"Error: {tmp_path} is not a run directory (no config.json); "
                                     f"{elsewhere} was exported from run 'mine'.")
    assert runner.invoke(main, ["export", str(mine), "--check", str(elsewhere)]).exit_code == 0
    renamed = shutil.copytree(mine, tmp_path / "renamed")
    assert check_error(renamed) == (
        f"Error: {elsewhere} was exported from run 'mine', not from {renamed} ('renamed'); "
        f"pass the run directory: discomkd-keras export RUN_DIR --check {elsewhere}.")
    sha = model_card.read_export(folder)[0]["source"]["checkpoint_sha256"]
    with open(mine / "best" / "vec.keras", "ab") as f:
        f.write(b"\0")
    assert check_error(mine) == (
        f"Error: The run's best classifier changed since this export: {mine / 'best' / 'vec.keras'} "
        f"is not the checkpoint (sha256 {sha[:12]}...) that {elsewhere} was exported from; "
        "re-export it.")


def test_run_without_recorded_encoding_gets_the_data_sources(run, tmp_path):
    """Runs trained before the data sources named their encoding still export a v2 card."""
    import shutil

    old = shutil.copytree(run, tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    for pre in config["preprocessing"].values():
        del pre["encoding"]
    (old / "config.json").write_text(json.dumps(config))
    card = export_modality(old, "vec", quantization="float32", out_dir=tmp_path / "o",
                           log=lambda *_: None)
    assert card["preprocessing"]["encoding"] == "float_raw" and card["kind"] == "vector"


def test_bad_inputs_write_nothing(run, tmp_path):
    out = tmp_path / "out"
    cases = [
        (dict(run_dir=run, modality="depth"), "Unknown modality 'depth'; this run has: rgb, vec"),
        (dict(run_dir=tmp_path, modality="rgb"), "is not a run directory"),
        (dict(run_dir=run, modality="rgb", representative_size=0), "representative"),
        (dict(run_dir=run, modality="rgb", quantization="float16", io_type="int8"), "needs --quantize int8"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ExportError, match=message):
            export_modality(out_dir=out, log=lambda *_: None, **kwargs)
    assert not out.exists() or not any(out.iterdir())

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="Cannot write to output folder"):
        export_modality(run, "rgb", out_dir=blocker / "sub", log=lambda *_: None)


def test_missing_and_corrupt_checkpoints(run, tmp_path):
    import shutil

    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    (broken / "best" / "vec.keras").unlink()
    with pytest.raises(ExportError, match="no best checkpoint for 'vec'"):
        export_modality(broken, "vec", out_dir=tmp_path / "o", log=lambda *_: None)
    (broken / "best" / "rgb.keras").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ExportError, match="not a valid .keras file"):
        export_modality(broken, "rgb", out_dir=tmp_path / "o", log=lambda *_: None)
    assert not (tmp_path / "o" / "rgb").exists()
    result = CliRunner().invoke(main, ["export", str(broken), "--modality", "rgb",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.output.startswith("Error:")
    assert len(result.output.strip().splitlines()) == 1


def test_mac_count_matches_hand_computation():
    from discomkd_keras.model_cost import count_macs

    inner_in = keras.Input((5, 5, 4))
    inner = keras.Model(inner_in, keras.layers.DepthwiseConv2D(3, padding="same")(inner_in))
    x = keras.Input((5, 5, 2))
    y = keras.layers.Conv2D(4, 3, padding="same")(x)          # 5*5 * 3*3*2 * 4 = 1800
    y = inner(y)                                               # 5*5 * 3*3*4     =  900
    y = keras.layers.Conv2D(4, 3, strides=2, padding="valid")(y)  # 2*2 * 3*3*4*4 = 576
    y = keras.layers.Dense(3)(keras.layers.Flatten()(y))       # 16 * 3          =   48
    assert count_macs(keras.Model(x, y)) == 1800 + 900 + 576 + 48


def test_mixed_precision_classifier_exports_as_float32(tmp_path):
    from discomkd_keras.export.tflite_export import as_float32, convert, probability_model
    from discomkd_keras.models.discomkd import DisCoMKD

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = DisCoMKD({"a": (12, 12, 1), "b": (4,)}, 3, encoders={"a": "lenet"}, feature_dim=8)
        clf = model.classifier("a")
        # The training process keeps its policy: a classifier loaded there computes in float16.
        clf.save(tmp_path / "a.keras")
        loaded = keras.saving.load_model(tmp_path / "a.keras", safe_mode=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert {layer.compute_dtype for layer in loaded.layers} == {"float16", "float32"}
    assert loaded.layers[-1].compute_dtype == "float32"  # the softmax
    twin = as_float32(loaded)
    assert {layer.compute_dtype for layer in twin.layers} == {"float32"}
    x = np.random.default_rng(0).normal(size=(4, 12, 12, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(twin(x)), np.asarray(loaded(x)), rtol=2e-2, atol=2e-2)
    probs = probability_model(loaded, "a")
    assert {layer.compute_dtype for layer in probs.layers} == {"float32"}
    tflite = Classifier(convert(probs, "float32")).predict(x)
    np.testing.assert_allclose(tflite, np.asarray(probs(x)), atol=1e-5)
    # A process in float32 (export's) loads the file in float32 from the start.
    in_float32 = keras.saving.load_model(tmp_path / "a.keras", safe_mode=True)
    assert {layer.compute_dtype for layer in in_float32.layers} == {"float32"}
    assert as_float32(in_float32) is in_float32


def test_legacy_best_file_of_logits_gets_its_softmax_in_export(tmp_path):
    """Runs from before ModalityClassifier kept plain models giving logits."""
    from discomkd_keras.export.tflite_export import probability_model

    x_in = keras.Input((4,), name="a")
    legacy = keras.Model(x_in, keras.layers.Dense(3, name="a_classifier")(x_in), name="a_classifier")
    legacy.save(tmp_path / "a.keras")
    loaded = keras.saving.load_model(tmp_path / "a.keras", safe_mode=True)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    probs = np.asarray(probability_model(loaded, "a")(x))
    logits = np.asarray(loaded(x), dtype=np.float64)
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
