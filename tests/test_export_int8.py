"""int8 exports whose input layers stay float (export/float_input_layers.py): which ops
are chosen, what keeping them float does to a model whose first activation's int8
rounding decides its class, and when `export` does it."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from discomkd_keras.cli import main
from discomkd_keras.edge_demo.runtime import Classifier
from discomkd_keras.export import ExportError, export_modality
from discomkd_keras.export import tflite_export
from discomkd_keras.export.float_input_layers import WEIGHTED_OPS, input_layer_ops
from discomkd_keras.export.tflite_export import convert
from helpers import train_run

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="TFLite conversion needs the TensorFlow backend")
L = keras.layers


def float_outputs(flatbuffer):
    """Names of the float32 tensors an op of the model writes."""
    interpreter = Classifier(flatbuffer, delegates=False).interpreter
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    return {details[i]["name"] for op in interpreter._get_ops_details() for i in op["outputs"]
            if details[i]["dtype"] == np.float32}


def test_input_layer_ops_stop_at_each_paths_second_weighted_op():
    x = keras.Input((12, 12, 3))
    a = L.ZeroPadding2D(1, name="a_pad")(x)
    a = L.Conv2D(4, 3, strides=2, activation="relu6", name="a_stem")(a)
    a = L.DepthwiseConv2D(3, padding="same", activation="relu6", name="a_dw")(a)
    a = L.Conv2D(6, 1, activation="relu6", name="a_pw")(a)
    b = L.Conv2D(5, 3, activation="relu", name="b_first")(x)
    b = L.Conv2D(5, 3, activation="relu", name="b_second")(b)
    b = L.Conv2D(5, 3, activation="relu", name="b_third")(b)
    joint = L.Concatenate()([L.GlobalAveragePooling2D()(a), L.GlobalAveragePooling2D()(b)])
    model = keras.Model(x, L.Dense(3, name="head")(joint))
    chosen = input_layer_ops(convert(model, "float32"))
    weighted = sorted(op for op, _ in chosen if op in WEIGHTED_OPS)
    assert weighted == ["CONV_2D", "CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D"]
    assert [op for op, _ in chosen if op not in WEIGHTED_OPS] == ["PAD"]
    names = " ".join(name for _, name in chosen)
    for layer in ("a_pad", "a_stem", "a_dw", "b_first", "b_second"):
        assert f"/{layer}" in names
    for layer in ("a_pw", "b_third", "head"):
        assert f"/{layer}" not in names


def rounding_sensitive_model():
    """A model whose class is the sign of tiny horizontal differences of its first
    channel, scaled up 300x by a depthwise convolution after the stem, while a
    second channel's rare bright pixels set the stem output's int8 range: the
    stem's int8 step (0.023) is three times a pixel step of the first channel
    (0.008). The quick start's RGB classifier has the same weakness, milder."""
    rng = np.random.default_rng(0)
    n = 400
    x0 = (rng.integers(60, 190, size=(n, 1, 1, 1)) + rng.integers(0, 3, size=(n, 8, 8, 1))) / 255
    x1 = np.zeros_like(x0)
    x1[rng.random(n) < 0.1, 0, 0, 0] = 0.75
    x = np.concatenate([x0, x1], -1).astype("float32")

    inp = keras.Input((8, 8, 2))
    stem = L.Conv2D(2, 1, activation="relu6", name="stem")(inp)
    diff = L.DepthwiseConv2D((1, 2), use_bias=False, name="diff")(stem)
    head = L.Dense(2, name="head")
    model = keras.Model(inp, L.Softmax()(head(L.GlobalAveragePooling2D()(diff))))
    model.get_layer("stem").set_weights([np.diag([2.0, 7.7]).reshape(1, 1, 2, 2).astype("float32"),
                                         np.zeros(2, "float32")])
    model.get_layer("diff").set_weights([np.array([[[[300.0], [0.0]], [[-300.0], [0.0]]]],
                                                  "float32")])
    head.set_weights([np.array([[1.0, -1.0], [0.0, 0.0]], "float32"), np.zeros(2, "float32")])
    return model, x


def test_float_input_layers_remove_the_stems_int8_rounding():
    model, x = rounding_sensitive_model()
    probs = np.asarray(model(x))
    decided = np.abs(probs[:, 0] - probs[:, 1]) > 1e-3  # rows whose differences do not cancel
    assert decided.sum() == 357
    full = convert(model, "int8", x[:100])
    chosen = input_layer_ops(full)
    assert [op for op, _ in chosen] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    mixed = convert(model, "int8", x[:100], float_nodes=[name for _, name in chosen])

    def agreement(flatbuffer):
        out = Classifier(flatbuffer).predict(x)
        return np.mean(out[decided].argmax(1) == probs[decided].argmax(1))

    assert agreement(full) == pytest.approx(0.762, abs=0.005)
    assert agreement(mixed) == 1.0
    # The two ops (and only they) write float tensors; the rest stays int8.
    output = Classifier(mixed).output["name"]  # the final DEQUANTIZE's (float I/O)
    assert float_outputs(mixed) == {name for _, name in chosen} | {output}
    assert float_outputs(full) == {output}
    with pytest.raises(ExportError, match="apply to int8 quantization, not float16"):
        convert(model, "float16", float_nodes=[name for _, name in chosen])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("export-int8"), "--epochs", 2, "--encoder",
                     "rgb=dscnn", "--feature-dim", 16, "--batch-size", 16, n_per_class=40)


def test_export_keeps_input_layers_float_only_when_the_validation_split_disagrees(
        run, tmp_path, monkeypatch):
    quiet = dict(quantization="int8", log=lambda *_: None)
    full = export_modality(run, "rgb", out_dir=tmp_path / "full", threshold=0.0, **quiet)
    assert full["integer_only"] is True and full["float_ops"] == []

    forced = export_modality(run, "rgb", out_dir=tmp_path / "forced", threshold=0.0,
                             float_input_layers=True, **quiet)
    assert forced["integer_only"] is False
    # dscnn: the stem convolution and the first depthwise one of both encoders (+ the shared pad).
    assert sorted(f["op"] for f in forced["float_ops"]) == [
        "CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTHWISE_CONV_2D", "PAD"]
    flatbuffer = (tmp_path / "forced" / "rgb" / "rgb.tflite").read_bytes()
    assert {f["output"] for f in forced["float_ops"]} <= float_outputs(flatbuffer)
    assert forced["verification"]["agreement"] >= 0.98
    assert forced["verification"]["max_abs_prob_diff"] <= full["verification"]["max_abs_prob_diff"]
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(forced["ops"])
    # Float weights for two small layers: a few KiB more, still about a quarter of float32.
    assert 0 < forced["file_size_bytes"] - full["file_size_bytes"] < 8 * 1024
    assert json.loads((tmp_path / "forced" / "rgb" / "model_card.json").read_text()) == forced

    # The automatic choice reads the validation split, never the test split.
    seen = []

    def disagreeing(flatbuffer, model, x):
        seen.append(len(x))
        return 0.5

    monkeypatch.setattr(tflite_export, "_agreement", disagreeing)
    messages = []
    auto = export_modality(run, "rgb", out_dir=tmp_path / "auto", quantization="int8",
                           log=messages.append)
    assert seen == [24]  # write_released: 120 rows, 20% validation
    assert auto["integer_only"] is False and auto["float_ops"] == forced["float_ops"]
    assert any("0.5000 of the validation split (< 0.98): its input layers stay float" in m
               for m in messages)
    # --integer-only: the full-integer model or nothing, and a failed check says so.
    real_verify = tflite_export.verify
    monkeypatch.setattr(tflite_export, "verify",
                        lambda *args: dict(real_verify(*args), passed=False))
    result = CliRunner().invoke(main, ["export", str(run), "--modality", "rgb", "--out",
                                       str(tmp_path / "cli"), "--integer-only"])
    assert result.exit_code == 2 and len(seen) == 1, result.output
    assert "< threshold 0.98 (int8, full-integer); nothing was written." in result.output
    assert not (tmp_path / "cli").exists()
