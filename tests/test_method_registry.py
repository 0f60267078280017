"""methods.py's registry, the one loss hook of the per-branch models, the models/
folder's old import paths and the backend-free vocabularies (issue 27)."""

import importlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from discomkd_keras import methods
from discomkd_keras.config import ConfigError, resolve_config
from discomkd_keras.data.multimodal_dataset import MultiModalDataset
from discomkd_keras.methods import METHODS, Method, method_of
from discomkd_keras.models.students import DistilledStudents
from discomkd_keras.training import build_model

SHAPES = {"img": (12, 12, 2), "vec": (5,)}
ARCH = dict(encoders={"img": "lenet"}, feature_dim=8)


def tiny_data(paired=True, n=12):
    rng = np.random.default_rng(0)
    labels = {m: np.arange(n) % 3 for m in SHAPES}
    if not paired:
        labels["vec"] = labels["vec"][::-1].copy()
    splits = {"train": np.arange(6), "valid": np.arange(6, 9), "test": np.arange(9, 12)}
    return MultiModalDataset(
        name="tiny", inputs={m: rng.normal(size=(n,) + s).astype("float32")
                             for m, s in SHAPES.items()},
        labels=labels, splits={m: splits for m in SHAPES}, class_names=["a", "b", "c"],
        kinds={"img": "image", "vec": "vector"}).validate()


def batch(n=6):
    rng = np.random.default_rng(1)
    x = {m: rng.normal(size=(n,) + s).astype("float32") for m, s in SHAPES.items()}
    return x, {m: np.arange(n) % 3 for m in SHAPES}


def test_the_registry_is_what_config_and_compare_read():
    assert methods.METHOD_NAMES == ("discomkd", "unimodal", "single", "teacher", "kd", "kd-mix",
                                    "dkd", "mlkd")
    assert methods.STUDENT_METHODS == ("kd", "kd-mix", "dkd", "mlkd")
    assert methods.PAIRED_METHODS == ("teacher", "kd", "kd-mix", "dkd", "mlkd")
    assert methods.OWN_ARCHITECTURE_METHODS == ("single", "teacher")
    assert methods.DEFAULT_COMPARISON == ("discomkd", "unimodal", "single")
    # compare's report order: baselines, DisCoM-KD and its ablations, the teacher, its students
    assert methods.COMPARE_LABELS == ("unimodal", "single", "discomkd", "discomkd -L_adv",
                                      "discomkd -L_mod", "discomkd -L_aux", "discomkd -L_perp",
                                      "teacher", "kd", "kd-mix", "dkd", "mlkd")
    assert methods.BASELINES == {"unimodal": "its unimodal twin",
                                 "single": "the single-encoder baseline"}
    from discomkd_keras.run_directory import deployed_names
    assert deployed_names({"method": "teacher", "modalities": ["a", "b"]}) == ["teacher"]
    assert deployed_names({"modalities": ["a", "b"]}) == ["a", "b"]  # old config.json
    assert methods.branch_of({"method": "single", "branch": "shared"}) is None
    assert methods.branch_of({"modalities": ["a", "b"]}) == "separate"  # before --branch
    with pytest.raises(ValueError, match="Unknown method 'nope'"):
        method_of("nope")


@pytest.mark.parametrize("name", ["discomkd", "unimodal", "single", "teacher"])
def test_every_method_builds_its_registered_class_from_a_config(name):
    config = resolve_config({"source": "x"}, tiny_data(), {
        "method": name, "encoders": {"img": "lenet"}, "feature_dim": 8, "epochs": 1})
    model = build_model(config)
    assert type(model) is METHODS[name].model_class
    assert [type(s).__name__ for s in METHODS[name].make_schedules(config, 4)] == \
        (["GRLScheduler"] if name == "discomkd" else [])


def test_adding_a_method_is_one_entry(monkeypatch):
    """A method named in the registry only (here the unimodal twins under a new name, with
    a schedule of its own) is validated, built and scheduled like the shipped ones."""
    calls = []
    monkeypatch.setattr(methods, "my_schedule", lambda config, steps: calls.append(steps) or "s",
                        raising=False)
    entry = Method("twin2", "the twins again", "discomkd_keras.models.unimodal:UnimodalClassifiers",
                   "L_cl", "baseline", schedules=("my_schedule",))
    monkeypatch.setitem(METHODS, "twin2", entry)
    config = resolve_config({"source": "x"}, tiny_data(), {
        "method": "twin2", "encoders": {"img": "lenet"}, "feature_dim": 8, "epochs": 1,
        "branch": "shared"})
    assert config["loss_weights"]["adv"] == 0.0  # not DisCoM-KD: the task loss alone
    assert build_model(config).branch_form == "shared"
    assert method_of(config).make_schedules(config, 7) == ["s"] and calls == [7]
    # What the entry says it needs is enforced: paired data for a paired method.
    monkeypatch.setitem(METHODS, "twin2", Method("twin2", "", entry.model, "L_cl", "baseline",
                                                 paired=True))
    with pytest.raises(Exception, match="needs paired data"):
        resolve_config({"source": "x"}, tiny_data(paired=False), {"method": "twin2"})
    with pytest.raises(ConfigError, match="--branch shared applies to"):
        resolve_config({"source": "x"}, tiny_data(), {"method": "single", "branch": "shared"})


def _regularised_minus_plain(model):
    """compute_loss with an L2 regulariser on one branch kernel, minus without it, and the
    regulariser's own value."""
    x, y = batch()
    out = model(x, training=False)
    plain = float(ops.convert_to_numpy(model.compute_loss(x, y, out, training=False)))
    kernel = next(w for w in model.trainable_weights if len(w.shape) == 2)
    kernel.regularizer = keras.regularizers.L2(0.5)
    penalty = 0.5 * float(np.sum(np.square(ops.convert_to_numpy(kernel))))
    regularised = float(ops.convert_to_numpy(model.compute_loss(x, y, out, training=False)))
    return regularised - plain, penalty


@pytest.mark.portable
@pytest.mark.parametrize("name", ["discomkd", "unimodal", "single", "kd", "kd-mix", "dkd", "mlkd"])
def test_a_regulariser_counts_fully_for_every_method(name):
    """The base's one loss hook adds model.losses once: kd-mix (task weight 0.5) used to
    halve a user's regularisers."""
    if METHODS[name].teacher:
        model = DistilledStudents(SHAPES, 3, method=name, teacher_encoders={"img": "dscnn"},
                                  teacher_feature_dim=6, **ARCH)
    else:
        model = METHODS[name].model_class(SHAPES, 3, **ARCH)
    added, penalty = _regularised_minus_plain(model)
    assert penalty > 0.01
    assert added == pytest.approx(penalty, rel=1e-4)


def test_students_log_their_terms_through_the_hook():
    model = DistilledStudents(SHAPES, 3, method="kd-mix", teacher_encoders={"img": "dscnn"},
                              teacher_feature_dim=6, **ARCH)
    x, y = batch()
    out = model(x, training=False)
    terms = {k: float(ops.convert_to_numpy(v)) for k, v in model.loss_terms(y, out).items()}
    total = float(ops.convert_to_numpy(model.compute_loss(x, y, out, training=False)))
    assert set(terms) == {"cl", "distill"}
    assert total == pytest.approx(0.5 * terms["cl"] + 0.5 * terms["distill"], rel=1e-5)
    assert [t.name for t in model.term_trackers] == ["cl", "distill"]


def test_old_import_paths_are_the_moved_modules():
    old = importlib.import_module("discomkd_keras.model")
    assert old is importlib.import_module("discomkd_keras.models.discomkd")
    assert old.__spec__.name == "discomkd_keras.models.discomkd"
    from discomkd_keras.students import DistilledStudents as Old  # noqa: F401
    assert Old is DistilledStudents
    from discomkd_keras.comparison_result import Comparison
    from discomkd_keras.comparison.result import Comparison as New
    assert Comparison is New


def test_a_keras_file_naming_an_old_module_loads(tmp_path):
    """A .keras file saved before the move names discomkd_keras.unimodal; it loads, safe
    mode on, as the class at its new path."""
    import json
    import zipfile

    from discomkd_keras.models.unimodal import UnimodalClassifiers

    model = UnimodalClassifiers(SHAPES, 3, **ARCH)
    path = tmp_path / "new.keras"
    model.save(path)
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                assert config["module"] == "discomkd_keras.models.unimodal"
                config["module"] = "discomkd_keras.unimodal"
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    loaded = keras.saving.load_model(old, safe_mode=True)
    assert type(loaded) is UnimodalClassifiers
    x, _ = batch()
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)["img"]["logits"]),
                               ops.convert_to_numpy(model(x)["img"]["logits"]), rtol=1e-6)


def test_help_and_the_vocabularies_import_no_backend():
    """`discomkd-keras --help` and every command's --help load no Keras, TensorFlow or JAX."""
    code = ("import sys\n"
            "from click.testing import CliRunner\n"
            "from discomkd_keras.cli import main\n"
            "for args in (['--help'], ['train', '--help'], ['compare', '--help'],\n"
            "             ['export', '--help'], ['evaluate', '--help']):\n"
            "    assert CliRunner().invoke(main, args).exit_code == 0, args\n"
            "loaded = [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'jax')]\n"
            "print(loaded)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_adding_a_method_example_in_docs_trains(monkeypatch, tmp_path):
    """docs/training.md, 'Adding a method': its model file and its METHODS entry, as printed,
    give a method that resolve_config accepts, build_model builds and fit trains."""
    import re
    import sys
    import types
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    section = text[text.index("### Adding a method"):]
    model_code, entry_code = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
    module = types.ModuleType("discomkd_keras.models.smoothed_twins")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with keras.saving.custom_object_scope({}):
        exec(compile(model_code, "docs/training.md", "exec"), module.__dict__)
    entry = eval(entry_code.strip().rstrip(","), {"Method": Method})
    monkeypatch.setitem(METHODS, entry.name, entry)
    config = resolve_config({"source": "x"}, tiny_data(), {
        "method": entry.name, "encoders": {"img": "lenet"}, "feature_dim": 8, "epochs": 1})
    model = build_model(config)
    assert type(model).__name__ == "SmoothedTwins"
    x, y = batch()
    model.compile(optimizer="adam")
    history = model.fit(x, y, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # Against one-hot targets smoothed by 0.1, a loss term by hand for one sample.
    out = model(x, training=False)
    logits = ops.convert_to_numpy(out["img"]["logits"]).astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    target = np.full(3, 0.1 / 3)
    target[y["img"][0]] += 0.9
    terms = model.loss_terms(y, out)
    per_sample = -(target * logp[0]).sum()
    all_samples = []
    for m in SHAPES:
        lg = ops.convert_to_numpy(out[m]["logits"]).astype(np.float64)
        lp = lg - lg.max(1, keepdims=True)
        lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
        t = np.full((len(lg), 3), 0.1 / 3)
        t[np.arange(len(lg)), y[m]] += 0.9
        all_samples.append(-(t * lp).sum(1))
    assert all_samples[0][0] == pytest.approx(per_sample)
    assert float(ops.convert_to_numpy(terms["cl"])) == pytest.approx(
        np.concatenate(all_samples).mean(), rel=1e-5)


TOY_MODEL = '''
import keras

from discomkd_keras.models.branch_classifiers import BranchClassifiers


@keras.saving.register_keras_serializable(package="toy_methods")
class ToyTwins(BranchClassifiers):
    """The twins with their task loss doubled: a method of its own, for the registry test."""

    def __init__(self, input_shapes, num_classes, **kwargs):
        kwargs.setdefault("name", "toy_twins")
        super().__init__(input_shapes, num_classes, **kwargs)

    def combine_terms(self, terms):
        return 2.0 * terms["cl"]
'''


def test_a_toy_method_trains_through_the_cli(monkeypatch, tmp_path):
    """Adding a method is one registry entry and one model file: a method registered here
    (its model in a module of its own) trains through `discomkd-keras train --method`,
    with nothing else of the package touched."""
    import json
    import sys
    import types

    from click.testing import CliRunner

    from discomkd_keras.cli import main
    from helpers import write_released

    module = types.ModuleType("toy_method_model")
    exec(compile(TOY_MODEL, "toy_method_model.py", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "toy_method_model", module)
    monkeypatch.setitem(METHODS, "toy", Method("toy", "the twins, task loss doubled",
                                               "toy_method_model:ToyTwins", "2 L_cl", "baseline"))
    run = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "train", "--data-dir", str(write_released(tmp_path / "data")), "--method", "toy",
        "--encoder", "rgb=lenet", "--feature-dim", "8", "--batch-size", "16", "--epochs", "2",
        "--probe-steps", "0", "--quiet", "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "toy" and config["loss_weights"]["adv"] == 0.0
    results = json.loads((run / "results.json").read_text())
    assert set(results) == {"rgb", "vec"} and all(0 <= r["test_accuracy"] <= 1
                                                  for r in results.values())
    assert (run / "best" / "rgb.keras").is_file() and (run / "best" / "vec.keras").is_file()
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "cl" in history[0].split(",")
    import zipfile
    state = json.loads((run / "state.json").read_text())
    with zipfile.ZipFile(run / state["checkpoint"]) as saved:  # the model the run trained
        assert json.loads(saved.read("config.json"))["class_name"] == "ToyTwins"
