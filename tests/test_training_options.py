"""Presets, the learning-rate schedule and weight decay, early stopping, validation
metrics in Keras' logs, class weights and the plan before training (issue 23)."""

import json
import math

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from discomkd_keras import training
from discomkd_keras.cli import main
from discomkd_keras.config import (ConfigError, data_spec, edge_encoder, merged_options,
                                   with_preset)
from discomkd_keras.data import load_data
from discomkd_keras.data.unpaired_batches import UnpairedBatches, balanced_class_weights
from discomkd_keras.learning_rate import WarmupSchedule, make_learning_rate
from discomkd_keras.plan import make_plan, plan_lines
from discomkd_keras.run_directory import load_model_file, read_history, read_run
from helpers import stop_after_steps, write_released

TINY = ["--encoder", "rgb=lenet", "--feature-dim", "8", "--batch-size", "16", "--lr", "3e-3",
        "--quiet", "--probe-steps", "0"]
TIMES = {"seconds", "samples_per_s", "validation_seconds", "wall_seconds", "checkpoint_seconds"}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCOMKD_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_released(tmp_path_factory.mktemp("data"), n_per_class=30)


def write_digit_tree(root, n=12, side=28):
    """root/pix/<class>/i.png: 8-bit grey, class c brightens row band c; root/vec/<class>/i.npy."""
    rng = np.random.default_rng(0)
    for c in range(3):
        for m in ("pix", "vec"):
            (root / m / str(c)).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 60, (side, side), dtype=np.uint8)
            img[c * side // 3:(c + 1) * side // 3] += 150
            Image.fromarray(img).save(root / "pix" / str(c) / f"{i}.png")
            vec = rng.normal(size=6).astype(np.float32)
            vec[c] += 3.0
            np.save(root / "vec" / str(c) / f"{i}.npy", vec)
    return root


# --- presets ---------------------------------------------------------------------
def test_edge_for_own_files_paper_for_the_released_layout_built_in_keep_theirs():
    assert with_preset({}, "files")["preset"] == "edge"
    assert with_preset({}, "released")["preset"] == "paper"
    assert with_preset({}, "synthetic-rgbd")["preset"] == "synthetic-rgbd"
    assert with_preset({"preset": "paper"}, "files")["preset"] == "paper"
    edge = with_preset({"epochs": 3, "patience": 0}, "files")
    # An explicit value, 0 included, overrides the preset's.
    assert (edge["epochs"], edge["patience"], edge["batch_size"], edge["feature_dim"]) == (3, 0, 64, 128)
    paper = with_preset({}, "released")
    assert {k: paper[k] for k in ("epochs", "batch_size", "learning_rate", "feature_dim",
                                  "schedule", "weight_decay", "patience")} == \
        {"epochs": 300, "batch_size": 128, "learning_rate": 1e-4, "feature_dim": 512,
         "schedule": "constant", "weight_decay": 0.0, "patience": 0}
    with pytest.raises(ConfigError, match="Unknown preset 'tiny'"):
        with_preset({"preset": "tiny"}, "files")


def test_edge_encoder_by_kind_and_size():
    assert edge_encoder("image", (28, 28, 1)) == "lenet"
    assert edge_encoder("image", (31, 64, 3)) == "lenet"  # the smaller side decides
    assert edge_encoder("spectrogram", (40, 61, 1)) == "dscnn"
    assert edge_encoder("image", (64, 64, 13)) == "dscnn"
    assert edge_encoder("vector", (36,)) == "mlp"


def test_paper_preset_trains_what_the_released_layout_trained_before(data_dir, tmp_path):
    """The paper's protocol is the released layout's default: Adam with a plain float
    learning rate (not a schedule, not AdamW), no early stopping, the released flips."""
    config = merged_options(with_preset({}, "released"))
    assert make_learning_rate(config, 10) == 1e-4
    optimizer = training.make_optimizer(config)
    assert type(optimizer) is keras.optimizers.Adam
    assert float(optimizer.learning_rate) == pytest.approx(1e-4)
    result = cli("train", "--data-dir", data_dir, "--run-dir", tmp_path / "run", "--epochs", 1,
                 *TINY)
    assert result.exit_code == 0, result.output
    config, _ = read_run(tmp_path / "run")
    assert config["preset"] == "paper" and config["augment"] == {} and config["patience"] == 0
    assert config["encoders"] == {"rgb": "lenet"}  # vec: the model's default, mlp


def test_own_files_get_the_edge_preset_plan_and_no_augmentation(tmp_path):
    tree = write_digit_tree(tmp_path / "tree")
    result = cli("train", "--data-dir", tree, "--run-dir", tmp_path / "run", "--epochs", 2,
                 "--quiet", "--probe-steps", "2")
    assert result.exit_code == 0, result.output
    config, _ = read_run(tmp_path / "run")
    assert config["preset"] == "edge"
    assert config["encoders"] == {"pix": "lenet", "vec": "mlp"}
    assert config["augment"] == {"pix": "none", "vec": "none"}
    assert (config["feature_dim"], config["batch_size"], config["patience"]) == (128, 64, 5)
    out = result.output
    assert "Plan (preset edge)" in out
    [pix_line] = [line for line in out.splitlines() if line.strip().startswith("pix ")
                  and "lenet" in line]
    clf = load_model_file(tmp_path / "run" / "best" / "pix.keras")
    assert f"{clf.count_params():,}" in pix_line
    assert "s an epoch (2-step probe after tracing)" in out
    assert "Trained all 2 epochs." in out


def test_plan_counts_the_deployed_classifier_and_flags_a_big_one(data_dir):
    from discomkd_keras.model_cost import count_macs

    data = load_data(data_spec(data_dir=data_dir))
    options = with_preset({"epochs": 2, "batch_size": 16, "feature_dim": 8,
                           "encoders": {"rgb": "lenet"}}, "released")
    config = training.resolve_config(data_spec(data_dir=data_dir), data, options)
    plan = make_plan(config, data, probe_steps=2)
    model = training.build_model(config)
    for row in plan["classifiers"]:
        clf = model.classifier(row["name"])
        assert row["parameters"] == clf.count_params() and row["macs"] == count_macs(clf)
    assert plan["steps_per_epoch"] == math.ceil(len(data.split("rgb", "train")[1]) / 16)
    assert plan["epoch_seconds"] > 0 and plan["total_seconds"] == pytest.approx(
        2 * plan["epoch_seconds"])
    big = dict(plan, classifiers=[dict(plan["classifiers"][0], parameters=22_500_000)])
    notes = [line for line in plan_lines(big) if "Note:" in line]
    assert len(notes) == 1 and "more than a Pi-class branch (5 M)" in notes[0]
    assert not [line for line in plan_lines(plan) if "Note:" in line]


# --- learning-rate schedule, weight decay, resume -------------------------------------
@pytest.mark.portable
def test_warmup_cosine_learning_rates_step_by_step():
    schedule = WarmupSchedule(0.01, total_steps=10, warmup_steps=2, decay="cosine")
    got = [float(schedule(step)) for step in range(12)]
    expected = [0.005, 0.01] + [0.01 * 0.5 * (1 + math.cos(math.pi * (s - 2) / 8))
                                for s in range(2, 10)] + [0.0, 0.0]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    constant = WarmupSchedule(0.02, total_steps=10, warmup_steps=4, decay="constant")
    np.testing.assert_allclose([float(constant(s)) for s in range(6)],
                               [0.005, 0.01, 0.015, 0.02, 0.02, 0.02], rtol=1e-6)
    restored = WarmupSchedule.from_config(json.loads(json.dumps(schedule.get_config())))
    assert float(restored(5)) == float(schedule(5))


@pytest.mark.portable
def test_the_optimizer_follows_the_schedule_in_a_run(data_dir, tmp_path):
    """The learning rate each training step uses, read by a callback, is the schedule's."""
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            opt = self.model.optimizer
            seen.append((int(opt.iterations), float(opt.learning_rate)))

    spec = data_spec(data_dir=data_dir)
    options = {"epochs": 2, "batch_size": 16, "feature_dim": 8, "learning_rate": 4e-3,
               "schedule": "cosine", "warmup_epochs": 1, "weight_decay": 0.01}
    training.start_run(spec, options, ("rgb=lenet",), tmp_path / "run", verbose=0,
                       log=lambda *_: None, callbacks=[Record()])
    steps = len(seen) // 2
    schedule = WarmupSchedule(4e-3, 2 * steps, steps, "cosine")
    assert [i for i, _ in seen] == list(range(2 * steps))
    np.testing.assert_allclose([lr for _, lr in seen], [float(schedule(i)) for i in range(2 * steps)],
                               rtol=1e-6)
    model = load_model_file(tmp_path / "run" / read_run(tmp_path / "run")[1]["checkpoint"])
    assert type(model.optimizer) is keras.optimizers.AdamW
    assert model.optimizer.weight_decay == pytest.approx(0.01)


def test_a_cosine_adamw_run_stopped_mid_epoch_and_resumed_equals_the_uninterrupted_one(
        data_dir, tmp_path, monkeypatch):
    args = ["--epochs", 3, "--schedule", "cosine", "--warmup-epochs", 1, "--weight-decay", 0.01,
            "--seed", 3, "--checkpoint-every", 1000, *TINY]
    result = cli("train", "--data-dir", data_dir, "--run-dir", tmp_path / "whole", *args)
    assert result.exit_code == 0, result.output

    stop_after_steps(monkeypatch, 1, 2)  # as Ctrl-C does, at step 2 of epoch 2
    result = cli("train", "--data-dir", data_dir, "--run-dir", tmp_path / "cut", *args)
    assert result.exit_code == 130, result.output
    monkeypatch.undo()
    result = cli("train", "--resume", tmp_path / "cut", "--quiet")
    assert result.exit_code == 0, result.output

    whole, cut = (load_model_file(p / read_run(p)[1]["checkpoint"])
                  for p in (tmp_path / "whole", tmp_path / "cut"))
    assert int(cut.optimizer.iterations) == int(whole.optimizer.iterations)
    for a, b in zip(whole.get_weights(), cut.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(whole.optimizer.variables, cut.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_bad_optimiser_options_are_one_line(data_dir, tmp_path):
    for args, message in ((["--weight-decay", "-1"], "weight decay must be in [0, 1)"),
                          (["--patience", "-2"], "patience must be an integer >= 0"),
                          (["--warmup-epochs", "9", "--epochs", "2"], "warm-up must be between 0"),
                          (["--augment", "vec=flip"], "vec is a vector modality"),
                          (["--augment", "rgb=flip,sideways"], "Unknown augmentation 'sideways'")):
        result = cli("train", "--data-dir", data_dir, "--run-dir", tmp_path / "run", *TINY, *args)
        assert result.exit_code == 2, result.output
        error = [line for line in result.output.splitlines() if line.startswith("Error: ")]
        assert len(error) == 1 and message in error[0], result.output
        assert not (tmp_path / "run").exists()


# --- early stopping and Keras' logs ---------------------------------------------------
def test_epochs_without_improvement_counts_from_the_last_gain_of_any_modality():
    rows = [{"val_a_f1": 0.5, "val_b_f1": 0.4}, {"val_a_f1": 0.6, "val_b_f1": 0.3},
            {"val_a_f1": 0.6, "val_b_f1": 0.45}, {"val_a_f1": 0.55, "val_b_f1": 0.45},
            {"val_a_f1": 0.6, "val_b_f1": 0.44}]
    waits = [training.epochs_without_improvement(rows[:i + 1], ["a", "b"]) for i in range(5)]
    assert waits == [0, 0, 0, 1, 2]  # equal is no gain; epoch 3 gained on b only


def test_patience_stops_the_run_says_why_and_keeps_the_best(data_dir, tmp_path):
    run = tmp_path / "run"
    result = cli("train", "--data-dir", data_dir, "--run-dir", run, "--epochs", 40,
                 "--patience", 2, *TINY)
    assert result.exit_code == 0, result.output
    _, state = read_run(run)
    rows = read_history(run)
    stopped = state["stopped_early"]
    assert stopped["epoch"] == len(rows) == state["epoch"] < 40
    assert training.epochs_without_improvement(rows, ["rgb", "vec"]) == 2
    assert training.epochs_without_improvement(rows[:-1], ["rgb", "vec"]) == 1
    assert f"Stopped early after epoch {len(rows)} of at most 40" in result.output
    assert "improved for 2 epochs (--patience 2)" in result.output
    for m in ("rgb", "vec"):  # the kept classifier is the best epoch's
        best = max(rows, key=lambda r: r[f"val_{m}_f1"])
        assert state["best"][m]["f1"] == best[f"val_{m}_f1"]
    result = cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 2 and "stopped early at epoch" in result.output


def test_validation_metrics_reach_keras_logs_csvlogger_and_a_users_early_stopping(
        data_dir, tmp_path):
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(dict(logs))

    stop = keras.callbacks.EarlyStopping(monitor="val_rgb_f1", mode="max", patience=0,
                                         baseline=1.01)  # Keras stops after epoch 2 at the earliest
    spec = data_spec(data_dir=data_dir)
    options = {"epochs": 5, "batch_size": 16, "feature_dim": 8, "learning_rate": 3e-3}
    training.start_run(spec, options, ("rgb=lenet",), tmp_path / "run", verbose=0,
                       log=lambda *_: None,
                       callbacks=[Record(), keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
                                  stop])
    rows = read_history(tmp_path / "run")
    assert len(rows) == len(seen) == 2
    for logs, row in zip(seen, rows):
        for m in ("rgb", "vec"):
            assert logs[f"val_{m}_f1"] == row[f"val_{m}_f1"]
            assert logs[f"val_{m}_accuracy"] == row[f"val_{m}_acc"]
    header, values = (tmp_path / "log.csv").read_text().splitlines()[:2]
    logged = dict(zip(header.split(","), values.split(",")))
    assert float(logged["val_vec_f1"]) == pytest.approx(rows[0]["val_vec_f1"])
    # A user's callback ended the run: it is checkpointed, finished and its best kept.
    _, state = read_run(tmp_path / "run")
    assert state["epoch"] == 2 and "a callback stopped training" in state["stopped_early"]["reason"]
    assert set(state["best"]) == {"rgb", "vec"}


def test_the_tensorboard_event_file_holds_the_validation_f1(data_dir, tmp_path):
    tf = pytest.importorskip("tensorflow")
    run = tmp_path / "run"
    result = cli("train", "--data-dir", data_dir, "--run-dir", run, "--epochs", 2,
                 "--tensorboard", *TINY)
    assert result.exit_code == 0, result.output
    found = {}
    for path in (run / "tensorboard").rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == "epoch_rgb_f1":
                    found[(path.parent.name, event.step)] = float(
                        tf.make_ndarray(value.tensor))
    rows = read_history(run)
    assert found == {("validation", e): pytest.approx(rows[e]["val_rgb_f1"]) for e in (0, 1)}


# --- class weights --------------------------------------------------------------------
@pytest.mark.portable
def test_balanced_class_weights_and_the_weighted_task_loss(tmp_path):
    from types import SimpleNamespace

    from discomkd_keras.models.branch_classifiers import task_loss
    from discomkd_keras.models.losses import cross_entropy

    y = np.array([0, 0, 0, 1])
    data = SimpleNamespace(modalities=["a"], num_classes=3, split=lambda m, s: (None, y))
    weights = balanced_class_weights(data)["a"]
    np.testing.assert_allclose(weights, [4 / 6, 4 / 2, 0.0], rtol=1e-6)  # n / (K_present n_c)
    assert float((weights[y]).sum()) == pytest.approx(len(y))  # each present class weighs n/K

    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 3.0, 1.0]],
                      np.float32)
    ce = np.asarray(cross_entropy(y, logits))
    outputs = {"a": {"logits": logits}}
    plain = float(task_loss({"a": y}, outputs, ["a"]))
    weighted = float(task_loss({"a": y}, outputs, ["a"], {"a": weights[y]}))
    assert plain == pytest.approx(ce.mean(), rel=1e-6)
    assert weighted == pytest.approx((weights[y] * ce).mean(), rel=1e-6)


def test_class_weight_balanced_batches_carry_sample_weights_and_a_run_trains(data_dir, tmp_path):
    data = load_data(data_spec(data_dir=data_dir))
    weights = balanced_class_weights(data)
    batches = UnpairedBatches(data, batch_size=8, augment={"rgb": "none"}, class_weights=weights)
    x, y, w = batches.batch(0, 0)
    for m in data.modalities:
        np.testing.assert_array_equal(w[m], weights[m][y[m]])
    result = cli("train", "--data-dir", data_dir, "--run-dir", tmp_path / "run", "--epochs", 1,
                 "--class-weight", "balanced", *TINY)
    assert result.exit_code == 0, result.output
    assert read_run(tmp_path / "run")[0]["class_weight"] == "balanced"
