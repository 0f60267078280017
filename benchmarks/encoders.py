"""Compare the light encoder candidates with ResNet-18: parameters, MACs-free
timing of a train step (batch 32) and a single-image inference, at 64x64x3.

    python benchmarks/encoders.py [--size 64] [--repeats 15]

Prints medians; nothing is asserted. Used to choose `dscnn` over
keras.applications.MobileNetV3Small(weights=None) as the edge family.
"""

import argparse
import statistics
import time

import keras
import numpy as np

from discomkd_keras.models.encoders import build_encoder


def candidates(shape):
    yield "resnet18", build_encoder("resnet18", shape, 512, "resnet18")
    yield "dscnn", build_encoder("dscnn", shape, 512, "dscnn")
    yield "lenet", build_encoder("lenet", shape, 512, "lenet")
    mnv3 = keras.applications.MobileNetV3Small(
        input_shape=shape, include_top=False, weights=None, pooling="avg",
        include_preprocessing=False)
    yield "mobilenetv3small", mnv3


def median_seconds(fn, repeats):
    fn()  # warm-up (tracing)
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    shape = (args.size, args.size, 3)
    rng = np.random.default_rng(0)
    xb = rng.normal(size=(32,) + shape).astype("float32")
    yb = rng.integers(0, 10, 32)
    x1 = xb[:1]
    print(f"backend={keras.backend.backend()} input={shape}")
    print(f"{'encoder':<18}{'params':>12}{'train samples/s':>18}{'1-image ms':>12}")
    for name, encoder in candidates(shape):
        inputs = keras.Input(shape)
        model = keras.Model(inputs, keras.layers.Dense(10)(encoder(inputs)))
        model.compile(keras.optimizers.Adam(1e-4),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        step = median_seconds(lambda: model.train_on_batch(xb, yb), args.repeats)
        infer = median_seconds(lambda: model(x1, training=False), args.repeats)
        print(f"{name:<18}{encoder.count_params():>12,}{32 / step:>18.1f}{infer * 1e3:>12.2f}")


if __name__ == "__main__":
    main()
