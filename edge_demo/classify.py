#!/usr/bin/env python3
"""Classify files or camera frames with an exported DisCoM-KD model, on a
Raspberry Pi or any computer, with nothing but LiteRT, NumPy and Pillow.

    python classify.py MODEL_DIR INPUT [INPUT ...] [--top-k 3] [--threads N] [--json]
    python classify.py MODEL_DIR INPUT --benchmark 200
    python classify.py MODEL_DIR --camera

or, installed (`pip install ./edge_demo`), the same as the `discomkd-edge`
command (console.py): `discomkd-edge classify MODEL_DIR INPUT ...`,
`discomkd-edge camera MODEL_DIR`.

MODEL_DIR is one export folder, as `discomkd-keras export` writes it:
<modality>.tflite, labels.txt and model_card.json. This file is the command
line only; its siblings do the work: model_card.py reads and checks the card,
runtime.py runs the model, preprocessing.py (with image_ops.py and the
spectrogram.py training uses) turns inputs into model inputs as the card says,
camera.py delivers camera frames. None of them imports TensorFlow, Keras or
the discomkd_keras package.

Exit status (both forms, as `discomkd-keras`): 0 done; 2 bad input (a model
folder, card or input file that cannot be used, no camera, bad arguments),
each problem one "Error: ..." line on stderr; 1 a bug, with its traceback and
a request to report it; 130 interrupted (Ctrl-C ends the camera loop with 0).
"""

import argparse
import json
import os
import sys
import traceback

import numpy as np

if __package__:  # inside a package: discomkd_keras.edge_demo, or discomkd_edge when installed
    from . import camera, model_card, preprocessing, runtime
else:  # run as a script (python edge_demo/classify.py): edge_demo/ is on sys.path
    import camera
    import model_card
    import preprocessing
    import runtime

# The discomkd-keras version whose exports (model card v2) these files run; the
# `discomkd-edge` distribution (edge_demo/pyproject.toml) takes its version from here.
__version__ = "0.1.0"

PROG = "classify.py"
# Every problem a user can cause: each is reported as one line, never a traceback.
ERRORS = (model_card.ModelCardError, runtime.ModelFileError, preprocessing.InputError,
          camera.CameraError)
DONE_EXIT = 0
BUG_EXIT = 1
INPUT_EXIT = 2  # a user's mistake: bad arguments, a model folder or input that cannot be used
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports it
REPORT_BUG = ("This is a bug in the device demo (discomkd-edge), not a problem with your input: "
              "please report it on the project's issue tracker with the traceback above, the "
              "command line and `{version}`.")
INPUT_FORMATS = (
    "Input formats: .png/.jpg/.jpeg for 8-bit image models (RGB or grayscale; resized "
    "bilinearly if the size differs); 16-bit .png in millimetres for depth models (resized by "
    "nearest neighbour); .wav (mono PCM at the model's rate) for audio models; .npy with the "
    "raw sample (or a batch of them) in the card's preprocessing.encoding, for every model.")
EXIT_STATUS = (
    "Exit status: 0 done; 2 bad input (a model folder, card or input file that cannot be used, "
    "no camera, bad arguments: one 'Error: ...' line on stderr per problem; the other inputs "
    "are still classified); 1 a bug (a traceback and a request to report it).")


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


def error(message):
    """A user's mistake: one line on stderr, in the wording of `discomkd-keras`."""
    print(f"Error: {message}", file=sys.stderr, flush=True)


def note(message):
    print(f"note: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- arguments


class ArgumentParser(argparse.ArgumentParser):
    """argparse in the project's wording: a usage error is the usage, then one
    "Error: ..." line, exit status 2 (subcommand parsers inherit it)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(INPUT_EXIT, f"Error: {message}\n")


def add_model_arguments(parser):
    """MODEL_DIR and the options of every mode."""
    parser.add_argument("model_dir", metavar="MODEL_DIR",
                        help="export folder: <modality>.tflite, labels.txt, model_card.json")
    parser.add_argument("--top-k", type=int, default=3, metavar="K",
                        help="how many classes to show per input (default 3)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="interpreter threads (default: all CPU cores, at most 4)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per input: file, top_k [{label, index, "
                             "probability}], inference_ms")


def add_input_arguments(parser):
    """INPUT files and --benchmark (classify mode)."""
    parser.add_argument("inputs", metavar="INPUT", nargs="*", default=[],
                        help="files to classify (.png/.jpg/.jpeg, .wav, .npy; see below)")
    parser.add_argument("--benchmark", type=int, default=0, metavar="N",
                        help="after classifying, time N invocations on the first input (a zero "
                             "input if there is none) after a warm-up; print median and p90")


def add_camera_index(parser, flag_hint=""):
    parser.add_argument("--camera-index", type=int, default=0, metavar="I",
                        help=f"OpenCV camera index{flag_hint} (default 0)")


def check_arguments(parser, args, camera_mode):
    """The checks argparse cannot express; each failure is parser.error (exit 2)."""
    if camera_mode and getattr(args, "inputs", None):
        parser.error("the camera mode takes no INPUT files")
    if not camera_mode and not args.inputs and not args.benchmark:
        parser.error("give at least one INPUT file (or --benchmark N)"
                     if getattr(args, "camera", None) is None
                     else "give at least one INPUT file (or --camera, or --benchmark N)")
    if args.top_k < 1:
        parser.error("--top-k must be >= 1")
    if getattr(args, "benchmark", 0) < 0:
        parser.error("--benchmark must be >= 0")
    if args.threads is None:
        args.threads = max(1, min(4, os.cpu_count() or 1))
    elif args.threads < 1:
        parser.error("--threads must be >= 1")


def parse(parser, argv, check=None, intermixed=True):
    """(args, None), or (None, exit status) where argparse has already answered:
    --help and --version (0), a usage error (2). `intermixed`: options may come
    before, between or after the INPUT files (not for a parser with subcommands)."""
    try:
        args = (parser.parse_intermixed_args if intermixed else parser.parse_args)(argv)
        if check is not None:
            check(parser, args)
        return args, None
    except SystemExit as done:
        code = done.code
        return None, (DONE_EXIT if code is None else code if isinstance(code, int) else INPUT_EXIT)


def guarded(work, version_command=f"python {PROG} --version"):
    """work() -> exit status, under the exit convention of `discomkd-keras`: a
    user's mistake (ERRORS) is one "Error: ..." line and 2; anything unexpected
    is a bug: its traceback, a request to report it, and 1."""
    try:
        return work()
    except ERRORS as err:
        error(err)
        return INPUT_EXIT
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    except BrokenPipeError:  # stdout closed early (`... | head`): not a bug, nothing to say
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):
            pass
        return BUG_EXIT
    except Exception:
        traceback.print_exc()
        print(f"\n{REPORT_BUG.format(version=version_command)}", file=sys.stderr, flush=True)
        return BUG_EXIT


# --------------------------------------------------------------------------- the two modes


def open_model(args):
    """(model, preprocessor, labels) of args.model_dir; ERRORS if it cannot be used."""
    card, labels = model_card.read_export(args.model_dir)
    model = runtime.open_export(args.model_dir, card, labels, args.threads)
    pre = preprocessing.Preprocessor(card, warn=note)
    args.top_k = min(args.top_k, len(labels))
    return model, pre, labels


def classify_files(args):
    """Classify args.inputs (and benchmark); an input that cannot be read is one
    error line, the others are still classified, and the status is then 2."""
    model, pre, labels = open_model(args)
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
                return INPUT_EXIT
            first = np.zeros(model.input_shape, np.float32)
            note("no INPUT given; benchmarking on an all-zero input.")
        benchmark(model, first, args.benchmark, args)
    return INPUT_EXIT if failed else DONE_EXIT


def classify_camera(args):
    """Classify live camera frames until Ctrl-C (exit 0)."""
    model, pre, labels = open_model(args)
    if not pre.takes_pixels:
        raise preprocessing.InputError(f"the camera mode works with 8-bit image models only; "
                                       f"this is a {pre.describe()}.")
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
    except KeyboardInterrupt:  # the way to stop the loop
        print(file=sys.stderr)
    return DONE_EXIT


# --------------------------------------------------------------------------- main


def build_parser():
    parser = ArgumentParser(
        prog=PROG,
        description="Classify images, WAV clips or .npy samples (or live camera frames) with a "
                    "model exported by `discomkd-keras export`, using LiteRT. Inputs are "
                    "preprocessed exactly as the training data, following the model card. "
                    "Installed with `pip install ./edge_demo`, the same is the `discomkd-edge` "
                    "command (`discomkd-edge classify ...`, `discomkd-edge camera ...`).",
        epilog=f"{INPUT_FORMATS} {EXIT_STATUS}")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    add_model_arguments(parser)
    add_input_arguments(parser)
    parser.add_argument("--camera", action="store_true",
                        help="classify live camera frames (picamera2 or OpenCV) until Ctrl-C; "
                             "8-bit image models only")
    add_camera_index(parser, " for --camera")
    return parser


def main(argv=None):
    """`python classify.py ...`; returns the exit status (see the module docstring)."""
    args, status = parse(build_parser(), argv,
                         lambda parser, args: check_arguments(parser, args, args.camera))
    if args is None:
        return status
    return guarded(lambda: (classify_camera if args.camera else classify_files)(args))


if __name__ == "__main__":
    sys.exit(main())
