"""GPU check: train DisCoM-KD for a few epochs on the built-in synthetic RGB-D
set, in float32 and in mixed precision, and print samples/s per epoch.

Meant for the project's GPU machines, which have JAX (CUDA) but no TensorFlow:

    KERAS_BACKEND=jax python benchmarks/gpu_check.py [--encoder resnet18] [--epochs 3]

Runs on the CPU as well (slowly; use --per-class 50 --epochs 2 --encoder dscnn
to smoke-test). Samples/s counts every modality's samples; the first epoch
includes compilation and is reported separately. Figures are printed, never
asserted.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import keras

from discomkd_keras.data import load_data
from discomkd_keras.config import resolve_config
from discomkd_keras.run_directory import read_history
from discomkd_keras.training import train_run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--feature-dim", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--precisions", default="float32,mixed_float16,mixed_bfloat16")
    parser.add_argument("--strategy", default="auto")
    args = parser.parse_args()

    devices = keras.distribution.list_devices() if keras.backend.backend() == "jax" else []
    print(f"backend={keras.backend.backend()} keras={keras.__version__} devices={devices}")
    spec = {"source": "synthetic-rgbd", "n_per_class": args.per_class, "size": args.size, "seed": 0}
    t = time.perf_counter()
    data = load_data(spec)
    print(f"data: {data.name} {[(m, data.input_shape(m)) for m in data.modalities]} "
          f"in {time.perf_counter() - t:.1f}s")
    summary = []
    for precision in args.precisions.split(","):
        options = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": 1e-4,
                   "feature_dim": args.feature_dim,
                   "encoders": {m: args.encoder for m in data.modalities},
                   "precision": precision, "strategy": args.strategy}
        config = resolve_config(spec, data, options)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            results = train_run(config, Path(tmp), data=data, verbose=0)
            wall = time.perf_counter() - t
            rows = read_history(Path(tmp) / "history.csv")
        steady = [r["samples_per_s"] for r in rows[1:]] or [rows[0]["samples_per_s"]]
        line = {"precision": precision, "first_epoch_samples_per_s": rows[0]["samples_per_s"],
                "median_samples_per_s": statistics.median(steady), "wall_s": round(wall, 1),
                "test_f1": {m: round(r["test_weighted_f1"], 4) for m, r in results.items()}}
        summary.append(line)
        print(json.dumps(line))
        keras.backend.clear_session()
    base = summary[0]["median_samples_per_s"]
    for line in summary:
        print(f"{line['precision']:>15}: {line['median_samples_per_s']:9.1f} samples/s "
              f"({line['median_samples_per_s'] / base:.2f}x float32)")


if __name__ == "__main__":
    main()
