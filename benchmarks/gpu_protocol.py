"""The paper's protocol on one GPU, timed: one self-contained call for a lent
GPU machine (JAX with CUDA, no TensorFlow, no internet).

    KERAS_BACKEND=jax python benchmarks/gpu_protocol.py --data DIR [--epochs 8]

Trains DisCoM-KD with the paper's settings (ResNet-18 encoders for every image
modality, D = 512, batch 128 per modality, Adam 1e-4, released augmentation)
on a released-layout folder (AV-MNIST size: `benchmarks/make_released_av_mnist.py`
writes one; without --data, random arrays of that shape stand in and the F1
means nothing), once per precision, and prints per precision: samples/s and
seconds per epoch (median of epochs 2.., so compilation is left out), the
estimated time of 300 epochs, wall time, and test weighted F1. With
--released-script (and its Python with torch + CUDA), the authors' script is
timed on the same arrays through benchmarks/released_protocol.py's driver.

Before a device call, check what the machine lacks (the device tool's
KINDS.md lists its packages); keras and click are pure-Python wheels that
travel in a carried folder (see the device tool's README). The defaults fit
inside one 9-minute call on an H100 with room to spare; every figure is
printed, never asserted.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
HERE = Path(__file__).resolve().parent


def random_layout(folder, n=3000, seed=0):
    """A released-layout folder of AV-MNIST's shapes filled with noise (throughput only)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "MNIST_data_normalized.npy", rng.normal(size=(n, 1, 28, 28)).astype("float32"))
    np.save(folder / "SPECTRO_data_normalized.npy", rng.normal(size=(n, 1, 64, 64)).astype("float32"))
    np.save(folder / "labels.npy", np.arange(n) % 10)
    order = rng.permutation(n)
    cut = [int(0.81 * n), int(0.9 * n)]  # AV-MNIST's 2430 / 270 / 300 of 3000
    for name, rows in (("train", order[:cut[0]]), ("valid", order[cut[0]:cut[1]]),
                       ("test", order[cut[1]:])):
        np.save(folder / f"{name}_idx.npy", np.sort(rows))
    return folder


def run_precision(data_dir, precision, epochs, workers):
    """Train one run; return the figures of one printed line."""
    import keras

    from discomkd_keras.config import data_spec
    from discomkd_keras.run_directory import read_history
    from discomkd_keras.training import start_run

    spec = data_spec("released", data_dir, ["MNIST", "SPECTRO"])
    options = {"epochs": epochs, "batch_size": 128, "learning_rate": 1e-4, "feature_dim": 512,
               "augment": {"SPECTRO": "none"}, "precision": precision, "workers": workers}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        _, config, results = start_run(spec, options, ["resnet18"], Path(tmp) / "run",
                                       log=lambda *_: None, verbose=0)
        wall = time.perf_counter() - started
        rows = read_history(Path(tmp) / "run")
    keras.backend.clear_session()
    steady = rows[1:] or rows
    seconds = statistics.median(r["seconds"] for r in steady)
    epoch_wall = statistics.median(r["wall_seconds"] for r in steady)
    rows_per_epoch = config["split_sizes"]["MNIST"]["train"]
    return {"precision": precision, "epochs": epochs,
            "rows_per_s": round(rows_per_epoch / seconds, 1),
            "samples_per_s": round(statistics.median(r["samples_per_s"] for r in steady), 1),
            "train_s_per_epoch": round(seconds, 3), "wall_s_per_epoch": round(epoch_wall, 3),
            "first_epoch_s": round(rows[0]["wall_seconds"], 1),
            "est_300_epochs_min": round(300 * epoch_wall / 60, 1), "run_wall_s": round(wall, 1),
            "test_f1": {m: round(r["test_weighted_f1"], 4) for m, r in results.items()}}


def run_released_script(script, python, data_dir, epochs):
    sys.path.insert(0, str(HERE))
    from released_protocol import run_released

    with tempfile.TemporaryDirectory() as tmp:
        result = run_released(script, python, data_dir, 0, epochs, "discomkd", Path(tmp) / "run",
                              log=lambda *_: None)
    return {"program": "released script", "epochs": epochs,
            "rows_per_s": round(result["rows_per_s"], 1),
            "train_s_per_epoch": round(statistics.median(result["epoch_seconds"][1:]), 3),
            "test_f1": {m: round(v, 4) for m, v in result["f1"].items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="released-layout folder (default: random arrays)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per precision")
    parser.add_argument("--rows", type=int, default=3000,
                        help="rows of the random stand-in data (a CPU smoke test: 300)")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16,mixed_float16")
    parser.add_argument("--workers", type=int, default=4, help="threads preparing batches")
    parser.add_argument("--released-script", type=Path, help="main_DisCoM-KD.py of your checkout")
    parser.add_argument("--released-python", type=Path, default=Path(sys.executable))
    parser.add_argument("--released-epochs", type=int, default=4)
    args = parser.parse_args()

    import keras

    devices = keras.distribution.list_devices() if keras.backend.backend() == "jax" else []
    print(json.dumps({"backend": keras.backend.backend(), "keras": keras.__version__,
                      "devices": [str(d) for d in devices]}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data or random_layout(Path(tmp) / "random-av-mnist", args.rows)
        lines = []
        for precision in args.precisions.split(","):
            lines.append(run_precision(data_dir, precision, args.epochs, args.workers))
            print(json.dumps(lines[-1]), flush=True)
        if args.released_script:
            lines.append(run_released_script(args.released_script, args.released_python, data_dir,
                                             args.released_epochs))
            print(json.dumps(lines[-1]), flush=True)
    base = lines[0]["rows_per_s"]
    for line in lines:
        name = line.get("precision", line.get("program"))
        print(f"{name:>16}: {line['rows_per_s']:8.1f} rows/s ({line['rows_per_s'] / base:.2f}x "
              f"{lines[0]['precision']})"
              + (f", 300 epochs in about {line['est_300_epochs_min']} min" if "est_300_epochs_min"
                 in line else ""), flush=True)


if __name__ == "__main__":
    main()
