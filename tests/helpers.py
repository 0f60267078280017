"""Small on-disk data sets (released layout) and a valid model card, for tests."""

import numpy as np


def write_released(directory, n_per_class=20, classes=3, image=(3, 12, 12), vector=5, seed=0,
                   splits=True):
    """A learnable two-modality set: `rgb` images (N, C, H, W) and `vec` vectors (N, F)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    n = len(y)
    a = rng.normal(size=(n,) + image).astype("float32")
    a[:, :, : image[1] // 2, : image[2] // 2] += 1.5 * y[:, None, None, None]
    b = rng.normal(size=(n, vector)).astype("float32")
    b[:, 0] += 2.0 * y
    np.save(directory / "rgb_data_normalized.npy", a)
    np.save(directory / "vec_data_normalized.npy", b)
    np.save(directory / "labels.npy", y)
    if splits:
        order = rng.permutation(n)
        cut = [int(0.6 * n), int(0.8 * n)]
        np.save(directory / "train_idx.npy", np.sort(order[: cut[0]]))
        np.save(directory / "valid_idx.npy", np.sort(order[cut[0]: cut[1]]))
        np.save(directory / "test_idx.npy", np.sort(order[cut[1]:]))
    return directory


def train_run(root, *options, **data):
    """A run trained by `discomkd-keras train` on `write_released(root / "data", **data)`:
    root / "run". `options`: the command's options after --data-dir and --run-dir."""
    from click.testing import CliRunner

    from discomkd_keras.cli import main

    data_dir, run_dir = write_released(root / "data", **data), root / "run"
    result = CliRunner().invoke(main, ["train", "--data-dir", str(data_dir), "--run-dir",
                                       str(run_dir), "--quiet", *map(str, options)])
    assert result.exit_code == 0, result.output
    return run_dir


def card_fields(**changes):
    """model_card.build_card arguments of a valid card: a small 8-bit RGB image model."""
    base = dict(
        modality="rgb", kind="image", model_file="rgb.tflite", class_names=["a", "b", "c"],
        quantization="int8", weight_scales="per-channel",
        input_tensor={"name": "serve_rgb:0", "shape": [1, 16, 16, 3], "layout": "NHWC",
                      "dtype": "uint8", "quantization": {"scale": 0.5, "zero_point": 3}},
        output_tensor={"name": "out", "shape": [1, 3], "layout": "NK", "dtype": "float32",
                       "quantization": None, "meaning": "class probabilities (softmax)"},
        preprocessing={"encoding": "rgb8", "raw": "8-bit RGB image, HxWx3", "layout": "HWC",
                       "scale": 1 / 255, "offset": 0.0, "height": 16, "width": 16},
        source={"run": "20250101-120000-synthetic-rgbd", "checkpoint": "best/rgb.keras",
                "checkpoint_sha256": "0123456789abcdef" * 4, "epoch": 7, "valid_weighted_f1": 0.5,
                "dataset": "synthetic-rgbd", "encoder": "dscnn", "versions": {"keras": "3"}},
        file_size_bytes=1234, parameters=99, ops=["CONV_2D", "SOFTMAX"],
        representative_samples=100, verification={"threshold": 0.98, "passed": True})
    base.update(changes)
    return base


def stop_after_steps(monkeypatch, epochs, steps):
    """Make the next run stop as Ctrl-C does, after `epochs` whole epochs and `steps` steps
    of the next (RunRecorder.stop_requested, checked at each step's end)."""
    from discomkd_keras import training

    seen = []
    on_train_batch_end = training.RunRecorder.on_train_batch_end

    def stop(self, batch, logs=None):
        seen.append(batch)
        if len(seen) == epochs * self.steps + steps:
            self.stop_requested = True
        on_train_batch_end(self, batch, logs)

    monkeypatch.setattr(training.RunRecorder, "on_train_batch_end", stop)


def fake_finished_run(tmp_path, monkeypatch):
    """tmp_path/seed0/unimodal with a two-epoch history.csv, for comparison.run_record, whose
    model loading and MAC count are stubbed (42 MACs)."""
    import discomkd_keras.model_cost as model_cost
    import discomkd_keras.run_directory as run_directory

    monkeypatch.setattr(run_directory, "load_best", lambda run_dir, m: (None, {}))
    monkeypatch.setattr(model_cost, "count_macs", lambda model: 42)
    run = tmp_path / "seed0" / "unimodal"
    run.mkdir(parents=True)
    (run / "history.csv").write_text("epoch,seconds,samples_per_s\n1,3.0,10\n2,2.0,20\n")
    return run
