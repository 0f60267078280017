"""The Python API (discomkd_keras.train / compare, Run, Comparison): in-memory arrays of
different lengths, tf.data input, a run reopened, predictions, verified exports, and
the README's example run as printed."""

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import discomkd_keras
from discomkd_keras.cli import main
from discomkd_keras.config import ConfigError
from discomkd_keras.data import DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
QUIET = {"verbose": 0, "log": lambda *a: None}


def arrays(seed=0):
    """Unpaired: 150 12x12 images and 90 vectors of 3 classes, learnable."""
    rng = np.random.default_rng(seed)
    y_img = np.repeat(np.arange(3), 50)
    x_img = rng.normal(size=(150, 12, 12)).astype("float32")
    x_img[:, :4, :4] += 2.5 * y_img[:, None, None]
    y_vec = np.repeat(np.arange(3), 30)
    x_vec = rng.normal(size=(90, 5)).astype("float32")
    x_vec[:, 0] += 3.0 * y_vec
    return {"img": (x_img, y_img), "vec": (x_vec, y_vec)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return discomkd_keras.train(arrays(), epochs=4, feature_dim=8, batch_size=16, lr=3e-3,
                                run_dir=tmp_path_factory.mktemp("runs") / "run", **QUIET)


def test_train_from_unpaired_arrays_and_reopen(run):
    again = discomkd_keras.Run.open(run.path)
    config = again.config
    assert config["preset"] == "edge" and config["data"]["source"] == "arrays"
    assert config["input_shapes"] == {"img": [12, 12, 1], "vec": [5]}
    assert config["split_sizes"] == {"img": {"train": 105, "valid": 15, "test": 30},
                                     "vec": {"train": 63, "valid": 9, "test": 18}}
    assert again.class_names == ["0", "1", "2"] and again.modalities == ["img", "vec"]
    history = again.history
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    for m in ("img", "vec"):  # the kept classifier: the best validation epoch's
        assert again.valid_f1[m] == max(r[f"val_{m}_f1"] for r in history)
        assert set(again.results[m]) >= {"test_weighted_f1", "test_macro_f1"}


def test_predict_on_arrays_is_the_kept_classifiers(run):
    x_img, _ = arrays()["img"]
    probabilities = run.predict("img", x_img[:7])
    expected = np.asarray(run.classifier("img").predict(x_img[:7, ..., None], verbose=0))
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert run.predict("img", x_img[0]).shape == (1, 3)  # one sample, no channel axis
    with pytest.raises(ValueError, match=r"img takes inputs of shape \(N,\) \+ \(12, 12, 1\)"):
        run.predict("img", np.zeros((2, 10, 10), "float32"))


def test_an_arrays_run_needs_the_same_arrays_and_says_so(run):
    with pytest.raises(DataError, match="trained from in-memory arrays"):
        run.evaluate(log=lambda *a: None)
    other = arrays()
    x, y = other["vec"]
    other["vec"] = (x[::-1], y[::-1])  # same samples, other order: another fingerprint
    with pytest.raises(DataError, match="Modality 'vec' differs"):
        run.export(data=other, quantize="float32")
    result = CliRunner().invoke(main, ["export", str(run.path), "--modality", "img"])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "trained from in-memory arrays" in result.output


def test_export_returns_a_list_whose_tflite_agrees_with_keras(run, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    exported = run.export(data=arrays(), quantize="float32", out_dir=tmp_path, log=lambda *a: None)
    assert isinstance(exported, list) and [e["modality"] for e in exported] == ["img", "vec"]
    for e, (m, (x, _)) in zip(exported, arrays().items()):
        assert e["quantization"] == "float32" and e["passed"] and e["agreement"] == 1.0
        assert e["model"].is_file() and e["folder"] == tmp_path / m
        interpreter = Interpreter(model_path=str(e["model"]))
        interpreter.allocate_tensors()
        [inp], [out] = interpreter.get_input_details(), interpreter.get_output_details()
        keras_probabilities = run.predict(m, x[:10])
        for i in range(10):
            sample = x[i:i + 1, ..., None] if m == "img" else x[i:i + 1]
            interpreter.set_tensor(inp["index"], sample.astype(np.float32))
            interpreter.invoke()
            np.testing.assert_allclose(interpreter.get_tensor(out["index"])[0],
                                       keras_probabilities[i], atol=1e-5)


def test_resume_with_the_same_arrays_and_evaluate(tmp_path):
    data = arrays(1)
    run = discomkd_keras.train(data, epochs=2, feature_dim=8, batch_size=16, patience=0,
                               run_dir=tmp_path / "run", **QUIET)
    config = run.config
    config["epochs"] = 3  # a longer run of the same data: resume trains epoch 3
    (run.path / "config.json").write_text(__import__("json").dumps(config))
    run.resume(data=data, **QUIET)
    assert [r["epoch"] for r in run.history] == [1, 2, 3]
    results = run.evaluate(data=data, log=lambda *a: None)
    assert set(results) >= {"img", "vec"}


def test_tf_data_input_is_the_same_data_as_its_arrays(tmp_path):
    tf = pytest.importorskip("tensorflow")
    data = arrays()
    datasets = {"img": tf.data.Dataset.from_tensor_slices(data["img"]).batch(32),
                "vec": tf.data.Dataset.from_tensor_slices(data["vec"])}
    run = discomkd_keras.train(datasets, epochs=1, feature_dim=8, batch_size=16,
                               run_dir=tmp_path / "run", **QUIET)
    from discomkd_keras.data.in_memory import arrays_dataset

    _, spec = arrays_dataset(data)
    assert run.config["data"]["fingerprints"] == spec["fingerprints"]


def test_own_splits_labels_by_name_and_bad_options(tmp_path):
    from discomkd_keras.data.in_memory import arrays_dataset

    x, y = arrays()["img"]
    names = np.array(["cat", "dog", "eel"])[y]
    data, spec = arrays_dataset({"img": {"train": (x[::2], names[::2]),
                                         "test": (x[1::2], names[1::2])},
                                 "vec": (arrays()["vec"][0], np.array(["cat", "dog", "eel"])[
                                     arrays()["vec"][1]])})
    assert data.class_names == ["cat", "dog", "eel"]
    # valid: 1/8 of each class's 25 training samples, stratified
    assert {s: len(i) for s, i in data.splits["img"].items()} == {"train": 66, "valid": 9,
                                                                   "test": 75}
    with pytest.raises(ConfigError, match="Unknown option 'learning_rat'"):
        discomkd_keras.train(arrays(), learning_rat=1e-3, **QUIET)
    with pytest.raises(DataError, match="at least 2 modalities"):
        discomkd_keras.train({"img": arrays()["img"]}, **QUIET)
    bad = arrays()
    bad["img"][0][3, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN or inf"):
        discomkd_keras.train(bad, **QUIET)


def test_compare_returns_verdicts_and_the_report(tmp_path):
    comparison = discomkd_keras.compare(arrays(), methods=["discomkd", "unimodal"], seeds=2,
                                        epochs=1, feature_dim=8, batch_size=16,
                                        out_dir=tmp_path / "cmp", **QUIET)
    assert comparison.report_path == tmp_path / "cmp" / "report.md"
    assert comparison.report_path.is_file()
    assert set(comparison.verdicts) == {"img", "vec"}
    assert all("its unimodal twin" in v for v in comparison.verdicts.values())


@pytest.mark.skipif(not (SHARED / "mnist" / "mnist-10k.npz").is_file(),
                    reason="../shared/data/mnist is absent")
def test_the_readme_api_example_runs_as_printed(tmp_path, monkeypatch, capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    script = re.search(r"<!-- api-example -->\n```python\n(.*?)```", readme, re.S).group(1)
    assert len([line for line in script.splitlines() if line.strip()]) <= 12
    script = script.replace('"../shared/data/', f'"{SHARED}/')
    monkeypatch.chdir(tmp_path)
    exec(compile(script, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert (tmp_path / "runs" / "api-example" / "export" / "pix" / "pix.tflite").is_file()
    assert "('pix', 'int8'" in out and "('coarse', 'int8'" in out


def test_predict_on_files_reads_them_with_the_runs_preprocessing(tmp_path, monkeypatch):
    from discomkd_keras.edge_demo.preprocessing import Preprocessor
    from test_file_layouts import write_tree

    monkeypatch.setenv("DISCOMKD_CACHE", str(tmp_path / "cache"))
    tree = write_tree(tmp_path / "tree", n=8)
    run = discomkd_keras.train(tree, epochs=1, encoder="lenet", feature_dim=8, batch_size=8,
                               run_dir=tmp_path / "run", **QUIET)
    files = sorted((tree / "depth" / "eel").glob("*.png"))[:3]
    probabilities = run.predict("depth", files)
    config = run.config
    card = {"preprocessing": config["preprocessing"]["depth"], "kind": config["kinds"]["depth"],
            "input": {"shape": [1, *config["input_shapes"]["depth"]]}}
    x = np.stack([Preprocessor(card, warn=lambda m: None).load(f)[0][1] for f in files])
    expected = np.asarray(run.classifier("depth").predict(x, verbose=0))
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    assert probabilities.shape == (3, len(run.class_names))
