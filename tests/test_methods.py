"""The baselines of issue 6: unimodal twins, the multi-modal teacher and its
KD / DKD / MLKD students (model behaviour, batches, and the CLI)."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from keras import ops

from discomkd_keras.cli import main
from discomkd_keras.data.multimodal_dataset import MultiModalDataset
from discomkd_keras.data.unpaired_batches import PairedBatches
from discomkd_keras.model import DisCoMKD
from discomkd_keras.losses import TASK_LOSS_ONLY
from discomkd_keras.encoders import build_encoder
from discomkd_keras.single_encoder import SingleEncoderClassifiers
from discomkd_keras.students import DistillWarmup, DistilledStudents
from discomkd_keras.teacher import MultimodalTeacher
from discomkd_keras.unimodal import UnimodalClassifiers
from helpers import write_released

pytestmark = pytest.mark.portable

SHAPES = {"img": (12, 12, 2), "vec": (5,)}
ARCH = dict(encoders={"img": "lenet"}, feature_dim=8)


def batch(n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = {m: rng.normal(size=(n,) + s).astype("float32") for m, s in SHAPES.items()}
    labels = np.arange(n) % 3
    return x, {m: labels for m in SHAPES}


def students(method="kd"):
    return DistilledStudents(SHAPES, 3, method=method, teacher_encoders={"img": "dscnn"},
                             teacher_feature_dim=6, **ARCH)


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("method, task_weight, kd_weight", [("kd", 1.0, 1.0), ("kd-mix", 0.5, 0.5)])
def test_student_loss_is_task_loss_plus_mean_kd_by_hand(method, task_weight, kd_weight):
    model = students(method)
    x, y = batch()
    out = model(x, training=False)
    loss = float(ops.convert_to_numpy(model.compute_loss(x, y, out, training=False)))
    teacher = ops.convert_to_numpy(out["teacher"])
    np.testing.assert_allclose(teacher, ops.convert_to_numpy(model.teacher(x, training=False)),
                               rtol=1e-5, atol=1e-6)
    ce, kd = [], []
    p_t = np.exp(log_softmax(teacher / 4))
    for m in SHAPES:
        s = ops.convert_to_numpy(out[m]["logits"]).astype(np.float64)
        ce.append(-log_softmax(s)[np.arange(6), y[m]])
        kd.append(16 * np.mean(np.sum(p_t * (np.log(p_t) - log_softmax(s / 4)), -1)))
    # L = a L_cl (mean over every sample of both modalities) + b (mean over modalities of KD).
    expected = task_weight * np.mean(np.concatenate(ce)) + kd_weight * np.mean(kd)
    assert loss == pytest.approx(expected, rel=1e-4)
    # A warm-up weight w scales the distillation term only.
    model.warmup_weight.assign(0.25)
    loss = float(ops.convert_to_numpy(model.compute_loss(x, y, out, training=False)))
    expected = task_weight * np.mean(np.concatenate(ce)) + 0.25 * kd_weight * np.mean(kd)
    assert loss == pytest.approx(expected, rel=1e-4)


def test_dkd_warmup_is_linear_in_batches():
    warmup = DistillWarmup(warmup_epochs=2, steps_per_epoch=10)
    assert [warmup.value_at(s) for s in (0, 9, 19, 20, 500)] == [0.05, 0.5, 1.0, 1.0, 1.0]
    assert DistillWarmup(warmup_epochs=0, steps_per_epoch=10).value_at(0) == 1.0
    assert DistillWarmup(warmup_epochs=0.5, steps_per_epoch=10).value_at(1) == 0.4


def test_single_encoder_baseline_is_one_encoder_and_a_linear_head():
    model = SingleEncoderClassifiers(SHAPES, 3, **ARCH)
    clf = model.classifier("img")
    encoder = build_encoder("lenet", SHAPES["img"], 8, "e")
    assert clf.count_params() == encoder.count_params() + (8 + 1) * 3
    assert clf.count_params() < DisCoMKD(SHAPES, 3, **ARCH).classifier("img").count_params() / 2
    x, y = batch()
    out = model(x, training=False)
    loss = float(ops.convert_to_numpy(model.compute_loss(x, y, out, training=False)))
    ce = [-log_softmax(ops.convert_to_numpy(out[m]["logits"]).astype(np.float64))[np.arange(6), y[m]]
          for m in SHAPES]
    assert loss == pytest.approx(np.mean(np.concatenate(ce)), rel=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(clf(x["img"])),
                               ops.convert_to_numpy(ops.softmax(out["img"]["logits"])),
                               rtol=1e-5, atol=1e-6)


def test_teacher_stays_frozen_while_students_learn():
    model = students("dkd")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    teacher_before = [w.copy() for w in model.teacher.get_weights()]  # BN statistics included
    student = model.classifier("img").trainable_weights
    student_before = [ops.convert_to_numpy(w).copy() for w in student]
    x, y = batch()
    for _ in range(3):
        logs = model.train_on_batch(x, y, return_dict=True)
    assert "distill" in logs and logs["distill"] > 0
    for a, b in zip(teacher_before, model.teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not all(np.allclose(b, ops.convert_to_numpy(w)) for b, w in zip(student_before, student))
    assert not {id(w) for w in model.trainable_weights} & {id(w) for w in model.teacher.weights}


@pytest.mark.parametrize("branch", ["separate", "shared"])
def test_unimodal_twins_share_nothing(branch):
    """A modality's branch learns the same whatever the other modality's batches hold."""
    finals = []
    for other_seed in (1, 2):
        keras.utils.set_random_seed(7)
        model = UnimodalClassifiers(SHAPES, 3, branch=branch, **ARCH)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        x, y = batch(seed=0)
        x["img"] = np.random.default_rng(other_seed).normal(size=x["img"].shape).astype("float32")
        for _ in range(3):
            model.train_on_batch(x, y)
        finals.append(model.classifier("vec").get_weights())
    for a, b in zip(*finals):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("branch", ["separate", "shared"])
def test_unimodal_twins_are_discomkds_branches_without_its_heads(branch):
    twins = UnimodalClassifiers(SHAPES, 3, branch=branch, **ARCH)
    discomkd = DisCoMKD(SHAPES, 3, branch=branch, **ARCH)
    # Nothing but the inputs and the branches: no discriminator, GRL or auxiliary head.
    assert [type(layer).__name__ for layer in twins.layers] == \
        ["InputLayer"] * 2 + ["ModalityBranch"] * 2
    assert len(twins.weights) == sum(len(b.weights) for b in twins.branches.values())
    heads = {"aux_classifier", "adv_discriminator", "inf_discriminator", "irr_discriminator",
             "gradient_reversal"}
    assert heads <= {layer.name for layer in discomkd.layers}
    for m in SHAPES:
        assert twins.classifier(m).count_params() == discomkd.classifier(m).count_params()
    x, y = batch()
    out = twins(x, training=False)
    loss = float(ops.convert_to_numpy(twins.compute_loss(x, y, out, training=False)))
    ce = [-log_softmax(ops.convert_to_numpy(out[m]["logits"]).astype(np.float64))[np.arange(6), y[m]]
          for m in SHAPES]
    assert loss == pytest.approx(np.mean(np.concatenate(ce)), rel=1e-5)  # L_cl alone


@pytest.mark.parametrize("branch", ["separate", "shared"])
def test_twin_of_a_seed_starts_from_discomkds_branches_of_that_seed(branch):
    """The paired comparison differs in the loss alone: same seed, same initial branches."""
    keras.utils.set_random_seed(11)
    discomkd = DisCoMKD(SHAPES, 3, branch=branch, **ARCH)
    keras.utils.set_random_seed(11)
    twins = UnimodalClassifiers(SHAPES, 3, branch=branch, **ARCH)
    for m in SHAPES:
        for a, b in zip(discomkd.branches[m].get_weights(), twins.branches[m].get_weights()):
            np.testing.assert_array_equal(a, b)


def test_teacher_and_students_round_trip_in_safe_mode(tmp_path):
    x, _ = batch()
    teacher = MultimodalTeacher(SHAPES, 3, **ARCH)
    model = students("mlkd")
    model.load_teacher_weights(MultimodalTeacher(SHAPES, 3, encoders={"img": "dscnn"}, feature_dim=6))
    for name, m in (("t", teacher), ("s", model)):
        m.save(tmp_path / f"{name}.keras")
        loaded = keras.saving.load_model(tmp_path / f"{name}.keras", safe_mode=True)
        assert type(loaded) is type(m) and loaded.get_config() == m.get_config()
        a, b = m(x, training=False), loaded(x, training=False)
        a = a["teacher"] if name == "s" else a
        b = b["teacher"] if name == "s" else b
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
    with pytest.raises(ValueError, match="architecture differs"):
        model.load_teacher_weights(teacher)


def paired_images(n=24):
    """RGB and depth views of the same rows: depth equals RGB's first channel."""
    rng = np.random.default_rng(0)
    rgb = rng.normal(size=(n, 4, 4, 3)).astype("float32")
    labels = np.arange(n) % 2
    splits = {"train": np.arange(16), "valid": np.arange(16, 20), "test": np.arange(20, 24)}
    return MultiModalDataset(
        name="p", inputs={"rgb": rgb, "depth": rgb[..., :1].copy()}, labels={"rgb": labels, "depth": labels},
        splits={"rgb": splits, "depth": splits}, class_names=["a", "b"],
        kinds={"rgb": "image", "depth": "image"}).validate()


def test_paired_batches_keep_rows_and_augmentation_together():
    data = paired_images()
    assert data.paired
    batches = PairedBatches(data, batch_size=4, seed=3)
    seen = []
    for step in range(len(batches)):
        x, y = batches[step]
        np.testing.assert_array_equal(y["rgb"], y["depth"])
        np.testing.assert_array_equal(x["rgb"][..., :1], x["depth"])  # same row, same flips
        seen += [int(np.flatnonzero((data.inputs["rgb"] == r).all(axis=(1, 2, 3)))[0])
                 if (data.inputs["rgb"] == r).all(axis=(1, 2, 3)).any() else -1 for r in x["rgb"]]
    assert any(r == -1 for r in seen), "flip_rot90 never changed a sample"

    unpaired = paired_images()
    unpaired.labels["depth"] = unpaired.labels["depth"][::-1].copy()
    assert not unpaired.paired
    with pytest.raises(ValueError, match="not paired"):
        PairedBatches(unpaired, batch_size=4)


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


TINY = ["--encoder", "rgb=lenet", "--feature-dim", "8", "--batch-size", "16", "--lr", "3e-3",
        "--quiet", "--epochs", "2"]


def test_every_method_trains_through_the_cli(tmp_path):
    d = write_released(tmp_path / "data")
    teacher = tmp_path / "teacher"
    result = run_cli("train", "--data-dir", d, "--method", "teacher", "--run-dir", teacher, *TINY,
                     "--epochs", "4")
    assert result.exit_code == 0, result.output
    assert "--method kd --teacher" in result.output
    t_results = json.loads((teacher / "results.json").read_text())
    assert list(t_results) == ["teacher"] and 0 <= t_results["teacher"]["test_weighted_f1"] <= 1
    # The teacher learned. Training rows, not the 12-row test split: its F1 after
    # 12 steps swings from 0.23 to 0.92 with the seed and backend.
    rows = (teacher / "history.csv").read_text().splitlines()
    header, first, last = (r.split(",") for r in (rows[0], rows[1], rows[-1]))
    loss, acc = header.index("loss"), header.index("teacher_acc")
    assert float(last[loss]) < 0.85 * float(first[loss]) and float(last[acc]) > 0.5
    assert (teacher / "best" / "teacher.keras").exists()
    trained = keras.saving.load_model(teacher / "best" / "teacher.keras", safe_mode=True)

    for method in ("unimodal", "single", "kd", "kd-mix", "dkd", "mlkd"):
        run = tmp_path / method
        extra = ["--teacher", teacher] if method not in ("unimodal", "single") else []
        result = run_cli("train", "--data-dir", d, "--method", method, "--run-dir", run, *extra, *TINY)
        assert result.exit_code == 0, (method, result.output)
        config = json.loads((run / "config.json").read_text())
        assert config["method"] == method
        assert config["loss_weights"] == TASK_LOSS_ONLY
        assert config["branch"] == (None if method == "single" else "separate")
        results = json.loads((run / "results.json").read_text())
        assert set(results) == {"rgb", "vec"}
        # The deployed student is exactly DisCoM-KD's branch (the single-encoder
        # baseline: one encoder and the head): same parameter count.
        branch = (SingleEncoderClassifiers if method == "single" else DisCoMKD)(
            {"rgb": (12, 12, 3), "vec": (5,)}, 3, **dict(ARCH, encoders={"rgb": "lenet"}))
        assert results["rgb"]["parameters"] == branch.classifier("rgb").count_params()
        if method not in ("unimodal", "single"):
            assert config["teacher_run"] == str(teacher.resolve())
            state = json.loads((run / "state.json").read_text())
            model = keras.saving.load_model(run / state["checkpoint"], safe_mode=True)
            for a, b in zip(trained.get_weights(), model.teacher.get_weights()):
                np.testing.assert_array_equal(a, b)  # the students' teacher: copied, then frozen
            header = (run / "history.csv").read_text().splitlines()[0]
            assert "distill" in header.split(",")
            # DKD's warm-up ran: its weight at the last of 2 x 3 steps of a 20-epoch ramp.
            weight = float(ops.convert_to_numpy(model.warmup_weight))
            assert weight == pytest.approx(6 / (20 * 3) if method == "dkd" else 1.0)

    result = run_cli("export", teacher, "--modality", "rgb")
    assert result.exit_code == 2 and "teacher run" in result.output
    # The single-encoder baseline evaluates (no embedding map: it has no z_inv) and exports.
    result = run_cli("evaluate", tmp_path / "single")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "single" / "evaluation" / "confusion_rgb.png").exists()
    assert not (tmp_path / "single" / "evaluation" / "embeddings.png").exists()
    if keras.backend.backend() == "tensorflow":
        result = run_cli("export", tmp_path / "single", "--modality", "rgb", "--quantize", "float32")
        assert result.exit_code == 0 and "PASS" in result.output, result.output


@pytest.mark.parametrize("args, message", [
    (["--method", "kd"], "needs --teacher RUN_DIR"),
    (["--method", "kd", "--teacher", "{missing}"], "is not a run directory"),
    (["--method", "unimodal", "--loss-weight", "adv=0"], "applies to DisCoM-KD only"),
    (["--method", "unimodal", "--teacher", "{d}"], "--teacher is for the kd, kd-mix, dkd, mlkd methods"),
    (["--method", "single", "--branch", "shared"], "method 'single' has an architecture of its own"),
    (["--method", "teacher", "--branch", "shared"], "method 'teacher' has an architecture of its own"),
])
def test_bad_method_input(tmp_path, args, message):
    d = write_released(tmp_path / "data")
    run = tmp_path / "run"
    args = [a.format(d=d, missing=tmp_path / "missing") for a in args]
    result = run_cli("train", "--data-dir", d, *args, "--run-dir", run, "--epochs", 1, "--quiet")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not run.exists()


def test_students_refuse_a_teacher_of_other_data_or_a_non_teacher(tmp_path):
    d = write_released(tmp_path / "data")
    other = write_released(tmp_path / "other", seed=1)
    teacher = tmp_path / "teacher"
    assert run_cli("train", "--data-dir", other, "--method", "teacher", "--run-dir", teacher,
                   *TINY[:-1], "1").exit_code == 0
    result = run_cli("train", "--data-dir", d, "--method", "kd", "--teacher", teacher,
                     "--run-dir", tmp_path / "s", *TINY)
    assert result.exit_code == 2 and "trained on other data" in result.output
    plain = tmp_path / "plain"
    assert run_cli("train", "--data-dir", d, "--run-dir", plain, *TINY[:-1], "1").exit_code == 0
    result = run_cli("train", "--data-dir", d, "--method", "kd", "--teacher", plain,
                     "--run-dir", tmp_path / "s", *TINY)
    assert result.exit_code == 2 and "not a teacher" in result.output
    assert not (tmp_path / "s").exists()


def test_teacher_needs_paired_data(tmp_path):
    from discomkd_keras.data import DataError
    from discomkd_keras.config import resolve_config

    data = paired_images()
    data.splits["depth"] = {"train": np.arange(12), "valid": np.arange(12, 18), "test": np.arange(18, 24)}
    with pytest.raises(DataError, match="needs paired data"):
        resolve_config({"source": "x"}, data, {"method": "teacher"})


def test_shared_branch_through_the_cli(tmp_path):
    d = write_released(tmp_path / "data")
    counts = {}
    for method in ("discomkd", "unimodal"):
        run = tmp_path / method
        result = run_cli("train", "--data-dir", d, "--method", method, "--branch", "shared",
                         "--run-dir", run, *TINY[:-1], "1")
        assert result.exit_code == 0, (method, result.output)
        assert json.loads((run / "config.json").read_text())["branch"] == "shared"
        counts[method] = json.loads((run / "results.json").read_text())["rgb"]["parameters"]
        best = keras.saving.load_model(run / "best" / "rgb.keras", safe_mode=True)
        assert [e.name for e in best.layers if isinstance(e, keras.Model)] == ["rgb_encoder"]
    shared = DisCoMKD({"rgb": (12, 12, 3), "vec": (5,)}, 3, branch="shared",
                      **dict(ARCH, encoders={"rgb": "lenet"}))
    assert counts["discomkd"] == counts["unimodal"] == shared.classifier("rgb").count_params()
    result = run_cli("evaluate", tmp_path / "discomkd")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "discomkd" / "evaluation" / "embeddings.png").exists()
