"""edge_demo/runtime.py: the one interpreter wrapper (device demo, export verifier,
bench-export), on a tiny converted model."""

import json

import keras
import numpy as np
import pytest

from discomkd_keras.edge_demo import model_card, runtime
from discomkd_keras.edge_demo.runtime import Classifier, ModelFileError
from helpers import card_fields

needs_tf = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                              reason="TFLite conversion needs the TensorFlow backend")


def test_quantize_and_dequantize_match_the_android_sample():
    """The numbers of InferenceContractTest.kt: round half to even, clamped."""
    x = np.array([0, 0.5, 1, 0.00196078431372549], np.float32)
    assert runtime.quantize(x, 1 / 255, -128, np.int8).tolist() == [-128, -1, 127, -128]
    # 0.5 / float32(1/255) is 127.4999...: below the tie, as the int8 row shows (-128 + 127).
    assert runtime.quantize(x, 1 / 255, 0, np.uint8).tolist() == [0, 127, 255, 0]
    assert runtime.dequantize(np.array([0], np.int8), 1 / 256, -128).tolist() == [0.5]


def test_garbage_is_not_a_model(tmp_path):
    with pytest.raises(ModelFileError, match=r"^the model bytes: not a loadable TFLite model \("):
        Classifier(b"not a flatbuffer")
    (tmp_path / "m.tflite").write_bytes(b"\0" * 64)
    with pytest.raises(ModelFileError, match=f"^{tmp_path / 'm.tflite'}: not a loadable TFLite model"):
        Classifier(tmp_path / "m.tflite")


@pytest.fixture(scope="module")
def tiny():
    """(keras probability model, float32 bytes, int8 bytes with uint8 I/O, inputs)."""
    from discomkd_keras.export.tflite_export import convert

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 1))
    y = keras.layers.Conv2D(2, 3, activation="relu")(inputs)
    y = keras.layers.Dense(3)(keras.layers.Flatten()(y))
    model = keras.Model(inputs, keras.layers.Softmax()(y))
    x = np.random.default_rng(0).uniform(size=(20, 4, 4, 1)).astype(np.float32)
    return model, convert(model, "float32"), convert(model, "int8", x, io_type="uint8"), x


@needs_tf
def test_float_and_integer_io_give_probabilities(tiny):
    model, f32, int8, x = tiny
    want = np.asarray(model(x))
    f32_model = Classifier(f32)
    assert (f32_model.input_shape, f32_model.num_classes) == ((4, 4, 1), 3)
    np.testing.assert_allclose(f32_model.predict(x), want, atol=1e-6)
    q = Classifier(int8, num_threads=2)
    assert q.input["dtype"] == np.uint8 and q.threads == 2
    probs, ms = q.timed(x[0])
    assert probs.dtype == np.float32 and probs.shape == (3,) and ms > 0
    np.testing.assert_allclose(q.predict(x), want, atol=0.05)  # 8-bit probabilities
    assert f32_model.predict(x[:0]).shape == (0, 3)
    assert runtime.op_names(f32) == ["CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]


@needs_tf
def test_open_export_checks_the_model_against_its_card(tiny, tmp_path):
    _, f32, _, _ = tiny
    card = model_card.build_card(**card_fields(
        input_tensor={"name": "x", "shape": [1, 4, 4, 1], "dtype": "float32"},
        preprocessing={"encoding": "gray8"}))
    labels = ["a", "b", "c"]
    with pytest.raises(ModelFileError, match="rgb.tflite is missing .named by the card's model_file"):
        runtime.open_export(tmp_path, card, labels)
    (tmp_path / "rgb.tflite").write_bytes(f32)
    assert runtime.open_export(tmp_path, card, labels).num_classes == 3
    with pytest.raises(ModelFileError) as info:
        runtime.open_export(tmp_path, card, labels + ["d"])
    assert str(info.value) == (f"{tmp_path / 'rgb.tflite'}: the model has 3 outputs but there are 4 "
                               "labels; the folder mixes files of different exports.")
    other = json.loads(json.dumps(card))
    other["input"]["shape"] = [1, 8, 8, 1]
    with pytest.raises(ModelFileError) as info:
        runtime.open_export(tmp_path, other, labels)
    assert str(info.value) == (f"{tmp_path / 'rgb.tflite'}: the model's input shape [1, 4, 4, 1] "
                               "does not match the card's [1, 8, 8, 1]; the folder mixes files of "
                               "different exports.")


def test_bench_export_report_says_how_to_remake_it():
    """A saved bench-export table names its run, the command with every option, the date and
    the versions its latencies depend on."""
    import datetime
    from importlib import metadata

    from discomkd_keras.export.benchmark import report_header

    header = report_header("runs/default-discomkd", "all", ["float32", "int8"], 50)
    assert header.startswith("# Quantizations of default-discomkd's classifiers\n")
    assert ("`discomkd-keras bench-export runs/default-discomkd --modality all "
            "--quantize float32,int8 --runs 50`") in header
    assert f"Measured {datetime.date.today().isoformat()} on " in header
    assert f"Keras {metadata.version('keras')}," in header
