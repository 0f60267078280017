#!/usr/bin/env python3
"""Classify files or camera frames with an exported DisCoM-KD model, on a
Raspberry Pi or any computer, with nothing but LiteRT, NumPy and Pillow.

    python classify.py MODEL_DIR INPUT [INPUT ...] [--top-k 3] [--threads N] [--json]
    python classify.py MODEL_DIR INPUT --benchmark 200
    python classify.py MODEL_DIR --camera

MODEL_DIR is one export folder, as `discomkd-keras export` writes it:
<modality>.tflite, labels.txt and model_card.json. This file is the command
line only; its siblings do the work: model_card.py reads and checks the card,
runtime.py runs the model, preprocessing.py (with image_ops.py and the
spectrogram.py training uses) turns inputs into model inputs as the card says,
camera.py delivers camera frames. None of them imports TensorFlow, Keras or
the discomkd_keras package.
"""

import argparse
import json
import os
import sys

import numpy as np

try:  # inside the package (discomkd_keras.edge_demo.classify)
    from . import camera, model_card, preprocessing, runtime
except ImportError:  # run as a script: edge_demo/ is on sys.path
    import camera
    import model_card
    import preprocessing
    import runtime

PROG = "classify.py"
# Every problem a user can cause: each is reported as one line, never a traceback.
ERRORS = (model_card.ModelCardError, runtime.ModelFileError, preprocessing.InputError,
          camera.CameraError)


# --------------------------------------------------------------------------- output


def top_k(probs, labels, k):
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": labels[i], "index": int(i), "probability": float(probs[i])} for i in order]


def report(name, probs, ms, labels, args):
    best = top_k(probs, labels, args.top_k)
    if args.json:
        print(json.dumps({"file": name, "top_k": best, "inference_ms": round(ms, 4)}), flush=True)
        return
    print(f"{name}  (inference {ms:.2f} ms)")
    width = max(len(b["label"]) for b in best)
    for rank, b in enumerate(best, 1):
        print(f"  {rank}. {b['label']:<{width}}  {100 * b['probability']:6.2f}%  "
              f"(class {b['index']})")
    sys.stdout.flush()


def benchmark(model, x, runs, args):
    warmup = min(10, max(1, runs // 10))
    for _ in range(warmup):
        model(x)
    times = np.array([model.timed(x)[1] for _ in range(runs)])
    result = {"runs": int(runs), "warmup": warmup, "threads": model.threads,
              "median_ms": round(float(np.median(times)), 4),
              "p90_ms": round(float(np.percentile(times, 90)), 4),
              "mean_ms": round(float(times.mean()), 4), "min_ms": round(float(times.min()), 4)}
    if args.json:
        print(json.dumps({"benchmark": result}), flush=True)
    else:
        print(f"benchmark: {runs} invocations after {warmup} warm-up, {model.threads} "
              f"thread{'s' if model.threads != 1 else ''}: median {result['median_ms']:.3f} ms, "
              f"p90 {result['p90_ms']:.3f} ms (min {result['min_ms']:.3f} ms)", flush=True)


# --------------------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Classify images, WAV clips or .npy samples (or live camera frames) with a "
                    "model exported by `discomkd-keras export`, using LiteRT. Inputs are "
                    "preprocessed exactly as the training data, following the model card.",
        epilog="Input formats: .png/.jpg/.jpeg for 8-bit image models (RGB or grayscale; "
               "resized bilinearly if the size differs); 16-bit .png in millimetres for depth "
               "models (resized by nearest neighbour); .wav (mono PCM at the model's rate) for "
               "audio models; .npy with the raw sample (or a batch of them) in the card's "
               "preprocessing.encoding, for every model. Exit status: 0 if every input "
               "was classified, 1 on an error (one line on stderr), 2 on bad arguments.")
    parser.add_argument("model_dir", metavar="MODEL_DIR",
                        help="export folder: <modality>.tflite, labels.txt, model_card.json")
    parser.add_argument("inputs", metavar="INPUT", nargs="*",
                        help="files to classify (.png/.jpg/.jpeg, .wav, .npy; see below)")
    parser.add_argument("--top-k", type=int, default=3, metavar="K",
                        help="how many classes to show per input (default 3)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="interpreter threads (default: all CPU cores, at most 4)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per input: file, top_k [{label, index, "
                             "probability}], inference_ms")
    parser.add_argument("--benchmark", type=int, default=0, metavar="N",
                        help="after classifying, time N invocations on the first input (a zero "
                             "input if there is none) after a warm-up; print median and p90")
    parser.add_argument("--camera", action="store_true",
                        help="classify live camera frames (picamera2 or OpenCV) until Ctrl-C; "
                             "8-bit image models only")
    parser.add_argument("--camera-index", type=int, default=0, metavar="I",
                        help="OpenCV camera index for --camera (default 0)")
    args = parser.parse_args(argv)
    if not args.inputs and not args.camera and not args.benchmark:
        parser.error("give at least one INPUT file (or --camera, or --benchmark N)")
    if args.camera and args.inputs:
        parser.error("--camera takes no INPUT files")
    if args.top_k < 1:
        parser.error("--top-k must be >= 1")
    if args.benchmark < 0:
        parser.error("--benchmark must be >= 0")
    if args.threads is None:
        args.threads = max(1, min(4, os.cpu_count() or 1))
    elif args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def error(message):
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def note(message):
    print(f"{PROG}: note: {message}", file=sys.stderr, flush=True)


def main(argv=None):
    args = parse_args(argv)
    try:
        card, labels = model_card.read_export(args.model_dir)
        model = runtime.open_export(args.model_dir, card, labels, args.threads)
        pre = preprocessing.Preprocessor(card, warn=note)
    except ERRORS as err:
        error(err)
        return 1
    args.top_k = min(args.top_k, len(labels))

    if args.camera:
        return run_camera(model, pre, labels, args)

    failed, first = 0, None
    for path in args.inputs:
        try:
            samples = pre.load(path)
        except ERRORS as err:
            error(err)
            failed += 1
            continue
        for name, x in samples:
            probs, ms = model.timed(x)
            report(name, probs, ms, labels, args)
            if first is None:
                first = x
    if args.benchmark:
        if first is None:
            if args.inputs:
                error("nothing to benchmark: no input could be read.")
                return 1
            first = np.zeros(model.input_shape, np.float32)
            note("no INPUT given; benchmarking on an all-zero input.")
        benchmark(model, first, args.benchmark, args)
    return 1 if failed else 0


def run_camera(model, pre, labels, args):
    if not pre.takes_pixels:
        error(f"--camera works with 8-bit image models; this is a {pre.describe()}.")
        return 1
    told = set()

    def warn_once(message):  # the same note for every frame: say it once
        general = message.split(": ", 1)[-1]
        if general not in told:
            told.add(general)
            note(f"camera frames: {general}")

    pre.warn = warn_once
    try:
        for i, frame in enumerate(camera.camera_frames(args.camera_index)):
            x = pre.from_pixels(frame, "RGB", f"frame {i}")
            probs, ms = model.timed(x)
            report(f"camera:{i}", probs, ms, labels, args)
    except ERRORS as err:
        error(err)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
