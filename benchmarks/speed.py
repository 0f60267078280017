"""Training speed: this project against the released script, same arrays, same session.

    python benchmarks/speed.py --data DIR --released-script main_DisCoM-KD.py \\
        --released-python venv/bin/python [--epochs 4]

DIR is a released-layout folder (benchmarks/make_released_av_mnist.py). Both
programs train DisCoM-KD with the released protocol (LeNet for MNIST,
ResNet-18 for SPECTRO, D = 512, batch 128 per modality, Adam 1e-4) for
--epochs epochs, one after the other, on an otherwise idle machine; this
project once per --backends x --precisions entry. Per program: training rows/s (one row =
one sample of each modality; median over epochs 2.., the first holds start-up
and tracing), training seconds per epoch, and this project's wall seconds per
epoch (training + validation + checkpoint + plots) with its ratio to the
training time. The profile splits this project's epoch: preparing the batches
(augmentation included; done by a background thread while the step runs),
the training step, validation, checkpoint and plots.

Against the machine's limit: the peak FLOP/s of this machine is measured as a
large square matmul (float32 and bfloat16) in each backend (and in the
released script's torch); a training step's FLOPs are counted from the
model's multiply-accumulates: 3 passes (forward, gradient of the inputs,
gradient of the weights) x 2 FLOPs per MAC x the MACs of one row through every
Conv2D and Dense of the training model (batch-norm, activations and the
optimizer are left out, so the figure errs low). Achieved FLOP/s = that x
training rows/s; its share of the peak of the same backend and precision says
how much faster the step could be at best.

Writes benchmarks/results/speed.{json,md}; figures are never asserted.
"""

import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from released_protocol import (RELEASED_COMMIT, data_and_script_options, median_after_first,  # noqa: E402
                               read_project_run, run_project, run_released)

PEAK_SIDE = 4096  # 137 GFLOP per product: about half a second here, far above call overheads
PEAK_REPEATS = 10
PEAK_CODE = {
    "tensorflow": """
import tensorflow as tf
def product(dtype):
    a = tf.cast(tf.random.normal((N, N), seed=0), dtype)
    b = tf.cast(tf.random.normal((N, N), seed=1), dtype)
    f = tf.function(lambda: tf.matmul(a, b)[0, 0])
    return lambda: f().numpy()
DTYPES = {"float32": tf.float32, "bfloat16": tf.bfloat16}
""",
    "jax": """
import jax, jax.numpy as jnp
def product(dtype):
    a = jax.random.normal(jax.random.key(0), (N, N)).astype(dtype)
    b = jax.random.normal(jax.random.key(1), (N, N)).astype(dtype)
    f = jax.jit(lambda a, b: a @ b)
    return lambda: f(a, b).block_until_ready()
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
""",
    "torch": """
import torch
def product(dtype):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(N, N, generator=g).to(dtype)
    b = torch.randn(N, N, generator=g).to(dtype)
    return lambda: torch.matmul(a, b)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
""",
}
PEAK_MAIN = """
import json, statistics, time
out = {}
for name, dtype in DTYPES.items():
    run = product(dtype)
    for _ in range(3):
        run()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    out[name] = 2 * N ** 3 / statistics.median(times) / 1e9
print("PEAK " + json.dumps(out))
"""
# Which measured peak a run is held against.
PEAK_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float32"}


def measure_peak(library, python=sys.executable):
    """{"float32": GFLOP/s, "bfloat16": GFLOP/s}: median of PEAK_REPEATS square matmuls."""
    import subprocess

    code = f"N = {PEAK_SIDE}\nREPEATS = {PEAK_REPEATS}\n" + PEAK_CODE[library] + PEAK_MAIN
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("PEAK ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"peak matmul in {library} failed: "
                           f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return json.loads(line[5:])


def training_macs_per_row(run_dir):
    """MACs of one row (one sample of every modality) through the run's whole training model."""
    from discomkd_keras.model_cost import count_macs
    from discomkd_keras.training import build_model

    return count_macs(build_model(json.loads((Path(run_dir) / "config.json").read_text())))


def machine_peak(peaks, precision):
    """This machine's peak GFLOP/s for a run's precision: the best matmul of any library."""
    values = [p[PEAK_DTYPE[precision]] for p in peaks.values() if PEAK_DTYPE[precision] in p]
    return max(values) if values else None


def step_gflops(rows_per_s, macs_per_row):
    """Achieved GFLOP/s of the training step: 3 passes x 2 FLOPs per MAC."""
    return rows_per_s * 6 * macs_per_row / 1e9


def batch_seconds(data_dir, epochs=2):
    """Seconds to prepare one epoch of training batches (augmentation included)."""
    from discomkd_keras.data import load_data
    from discomkd_keras.data.unpaired_batches import UnpairedBatches

    data = load_data({"source": "released", "directory": str(data_dir), "split_seed": None,
                      "modalities": ["MNIST", "SPECTRO"]})
    batches = UnpairedBatches(data, batch_size=128, augment={"SPECTRO": "none"})
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for step in range(len(batches)):
            batches[step]
        times.append(time.perf_counter() - start)
        batches.set_epoch(batches.epoch + 1)
    return statistics.median(times)


def project_profile(run_dir):
    from discomkd_keras.run_directory import read_history

    rows = read_history(run_dir)[1:]
    mean = lambda key: statistics.mean((r.get(key) or 0.0) for r in rows)  # noqa: E731
    return {"train_s": mean("seconds"), "validation_s": mean("validation_seconds"),
            "checkpoint_s": mean("checkpoint_seconds"), "wall_s": mean("wall_seconds"),
            "checkpoints": sum(1 for r in rows if r.get("checkpoint_seconds") is not None)}


def reuse_project_run(run_dir, epochs):
    """run_project's result for a run that finished `epochs` epochs earlier, else None."""
    run_dir = Path(run_dir)
    if not (run_dir / "results.json").exists() or not (run_dir / "command.txt").exists():
        return None
    result = read_project_run(run_dir)
    if result["epochs"] != epochs:
        return None
    return dict(result, command=(run_dir / "command.txt").read_text())


def default_run(precision, work_dir, log):
    """The default run (`discomkd-keras train`, TensorFlow) in one precision: rows/s, test F1."""
    import subprocess

    run_dir = Path(work_dir) / f"default-run-{precision}"
    command = ["discomkd-keras", "train", "--precision", precision, "--run-dir",
               str(run_dir), "--overwrite", "--quiet"]
    if not ((run_dir / "results.json").exists() and (run_dir / "command.txt").exists()):
        log(f"  $ {shlex.join(command)}")
        proc = subprocess.run(command, capture_output=True, text=True,
                              env=dict(os.environ, KERAS_BACKEND="tensorflow"))
        if proc.returncode != 0:
            raise RuntimeError(f"the default run failed: {proc.stderr.strip().splitlines()[-1:]}")
        (run_dir / "command.txt").write_text(shlex.join(command))
    result = read_project_run(run_dir)
    return {"precision": precision, "rows_per_s": result["rows_per_s"],
            "train_s_per_epoch": median_after_first(result["epoch_seconds"]),
            "test_f1": result["f1"], "command": (run_dir / "command.txt").read_text()}


def write_report(raw, out_dir):
    from discomkd_keras.run_directory import write_atomic, write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "speed.json", raw)
    runs = raw["runs"]
    released = next((r for r in runs if r["program"] == "released script"), None)
    lines = [
        "# Training speed: this project against the released script",
        "",
        f"Written by `{raw['command']}` on {raw['date']}; machine: {raw['machine']}, nothing else "
        f"running. Same arrays (`{raw['data']}`: MNIST 28x28 + SPECTRO 64x64, 2430 training rows), "
        f"released protocol (LeNet + ResNet-18, D = 512, batch 128 per modality, Adam 1e-4), "
        f"{raw['epochs']} epochs each (jax: the table says), seed 0. Released script: github tanodino/CMKD_Disentangle "
        f"at {RELEASED_COMMIT}, run from a checkout outside this repository.",
        "",
        "| program | backend | training rows/s | x released | train s / epoch | wall s / epoch "
        "| wall / train | step GFLOP/s | % of machine peak | epochs | test F1 (MNIST / SPECTRO) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    macs = raw.get("macs_per_row")
    for r in runs:
        ratio = r["rows_per_s"] / released["rows_per_s"] if released else float("nan")
        wall = r.get("wall_s_per_epoch")
        walls = (f"{wall:.2f} | {wall / r['train_s_per_epoch']:.3f}" if wall else "n/a | n/a")
        f1 = " / ".join(f"{100 * r['test_f1'][m]:.1f}" for m in ("MNIST", "SPECTRO"))
        flops = peak_share = "n/a"
        if macs:
            achieved = step_gflops(r["rows_per_s"], macs)
            flops = f"{achieved:.0f}"
            peak = machine_peak(raw["peaks"], r["precision"])
            peak_share = f"{100 * achieved / peak:.0f}%" if peak else "n/a"
        lines.append(f"| {r['label']} | {r['backend']} | {r['rows_per_s']:.1f} | {ratio:.2f} | "
                     f"{r['train_s_per_epoch']:.2f} | {walls} | {flops} | {peak_share} | "
                     f"{r.get('epochs', raw['epochs'])} | {f1} |")
    lines += ["", "Rows/s and seconds: medians over epochs 2.. (epoch 1 holds start-up and "
              "tracing). The released script's wall time per epoch also evaluates the test set "
              "every epoch, so only its training time is compared.", ""]
    if macs:
        lines += limit_lines(raw, released)
    for r in runs:
        p = r.get("profile")
        if p:
            lines.append(f"Profile of `{r['label']}` on {r['backend']} (mean per epoch, epochs 2..): training step "
                         f"{p['train_s']:.2f} s (its batches take {raw['batch_seconds']:.2f} s to "
                         f"prepare, on a background thread), validation {p['validation_s']:.2f} s, "
                         f"checkpoint + plots {p['checkpoint_s']:.2f} s ({p['checkpoints']} "
                         f"checkpoint(s) in {r.get('epochs', raw['epochs']) - 1} epochs), wall "
                         f"{p['wall_s']:.2f} s.")
    lines += ["", "Commands:", ""] + [f"- {r['label']}, {r['backend']}: `{r['command']}`"
                                      for r in runs]
    lines += [f"- the default run, {r['precision']}: `{r['command']}`"
              for r in raw.get("default_run", [])]
    if raw.get("macs_per_row"):
        lines.append(f"- peaks: `python -c` a {PEAK_SIDE}x{PEAK_SIDE} matmul, median of "
                     f"{PEAK_REPEATS} after 3 warm-ups, in each library (`measure_peak` in "
                     "benchmarks/speed.py)")
    write_atomic(out_dir / "speed.md", "\n".join(lines) + "\n")
    return out_dir / "speed.md"


def limit_lines(raw, released):
    """The peak table, the default per backend, and what the 1.5x goal would need."""
    macs, peaks, runs = raw["macs_per_row"], raw["peaks"], raw["runs"]
    ours = [r for r in runs if r["program"] == "this project"]
    lines = ["## Against the machine's limit", "",
             f"One row costs {macs / 1e6:.1f} M MACs through the training model (every Conv2D "
             f"and Dense), so a training step costs 6 x {macs / 1e6:.1f} M = "
             f"{6 * macs / 1e9:.2f} GFLOP per row (forward, input gradient and weight gradient; "
             "batch-norm, activations and Adam not counted, so achieved figures err low).", "",
             "| library | float32 matmul GFLOP/s | bfloat16 matmul GFLOP/s |", "|---|---:|---:|"]
    for library, peak in peaks.items():
        lines.append(f"| {library} | {peak['float32']:.0f} | {peak['bfloat16']:.0f} |")
    lines += ["", f"Peak: median of {PEAK_REPEATS} {PEAK_SIDE}x{PEAK_SIDE} matmuls after "
              "3 warm-ups, one process per library, nothing else running.", ""]
    lines += default_lines(ours, raw.get("default_run", []))
    tf_f32 = next(r for r in ours if r["backend"] == "tensorflow" and r["precision"] == "float32")
    jax_f32 = next((r for r in ours if r["backend"] == "jax" and r["precision"] == "float32"), None)
    if released:
        fastest = max(ours, key=lambda r: r["rows_per_s"])
        goal = 1.5 * released["rows_per_s"]
        need = step_gflops(goal, macs)
        peak = peaks[fastest["backend"]][PEAK_DTYPE[fastest["precision"]]]
        best_peak = max(max(p.values()) for p in peaks.values())
        lines += ["", f"The goal, 1.5x the released script ({released['rows_per_s']:.1f} rows/s "
                  f"here), is {goal:.0f} rows/s, a step at {need:.0f} GFLOP/s. The fastest run "
                  f"here ({fastest['label']}, {fastest['backend']}) reaches "
                  f"{fastest['rows_per_s'] / released['rows_per_s']:.2f}x at "
                  f"{step_gflops(fastest['rows_per_s'], macs):.0f} GFLOP/s, "
                  f"{100 * step_gflops(fastest['rows_per_s'], macs) / peak:.0f}% of this "
                  f"machine's {PEAK_DTYPE[fastest['precision']]} peak ({peak:.0f}); 1.5x would "
                  f"need {100 * need / best_peak:.0f}% of the best matmul measured here "
                  f"({best_peak:.0f} GFLOP/s, bfloat16) and "
                  f"{100 * need / machine_peak(peaks, 'float32'):.0f}% of the float32 one. "
                  "The released script's convolutions already run above "
                  "torch's own float32 matmul; this project's float32 step on TensorFlow reaches "
                  f"{100 * step_gflops(tf_f32['rows_per_s'], macs) / machine_peak(peaks, 'float32'):.0f}% "
                  "of the float32 peak, so 1.5x in float32 would need convolutions (ResNet-18's "
                  "3x3 on 16x16 to 2x2 maps at batch 128) running at three quarters of matmul "
                  "speed; bfloat16 leaves the room, but it costs the default run half its speed "
                  "(above)."]
        if jax_f32:
            lines.append(
                f"On JAX, XLA's CPU convolutions hold the step to "
                f"{100 * step_gflops(jax_f32['rows_per_s'], macs) / machine_peak(peaks, 'float32'):.0f}% "
                f"of the float32 peak while its own matmul reaches "
                f"{100 * peaks['jax']['float32'] / machine_peak(peaks, 'float32'):.0f}% of it: "
                "where there is no GPU, train on TensorFlow.")
    return lines + [""]


def default_lines(ours, default_run, margin=0.005):
    """Per backend, the fastest precision whose test F1 loses no more than `margin` against
    float32 on any modality, on the released protocol and (TensorFlow) on the default run."""
    lines = ["", "Which precision should be the default? The fastest whose test F1 (seed 0) "
             "loses no more than 0.5 point against float32 on any modality, on every workload "
             "measured:", ""]
    for backend in dict.fromkeys(r["backend"] for r in ours):
        workloads = [("the released protocol", [r for r in ours if r["backend"] == backend])]
        if backend == "tensorflow" and default_run:
            workloads.append(("the default run (`discomkd-keras train`: built-in RGB-D, dscnn, "
                              "D = 128, batch 32)", default_run))
        kept_everywhere = None
        for label, mine in workloads:
            base = next(r for r in mine if r["precision"] == "float32")
            speed = {r["precision"]: r["rows_per_s"] / base["rows_per_s"] for r in mine}
            kept = {r["precision"] for r in mine
                    if all(r["test_f1"][m] >= base["test_f1"][m] - margin for m in base["test_f1"])}
            faster = {p for p in kept if speed[p] >= 1.0}
            kept_everywhere = faster if kept_everywhere is None else kept_everywhere & faster
            lines.append(f"- {backend}, {label}: " + "; ".join(
                f"{r['precision']} {speed[r['precision']]:.2f}x float32's speed, test F1 "
                + " / ".join(f"{100 * (r['test_f1'][m] - base['test_f1'][m]):+.1f}"
                             for m in base["test_f1"])
                for r in mine if r["precision"] != "float32") + ".")
        pick = "mixed_bfloat16" if kept_everywhere and "mixed_bfloat16" in kept_everywhere \
            else "float32"
        lines.append(f"- **{backend}: default {pick}**" + (
            " (no other precision is both faster and within 0.5 point on every workload)."
            if pick == "float32" else "."))
    return lines


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@data_and_script_options
@click.option("--epochs", type=int, default=4, show_default=True)
@click.option("--precisions", default="float32,mixed_bfloat16", show_default=True,
              help="This project's precision policies to time.")
@click.option("--backends", default="tensorflow,jax", show_default=True,
              help="Keras backends to time this project on (each with every precision).")
@click.option("--jax-epochs", type=int, default=None,
              help="Epochs of the jax runs (default --epochs): XLA's CPU convolutions are slow.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=HERE / "runs" / "speed",
              show_default=True, help="Runs and peaks already measured here are reused, so "
              "the benchmark can be finished in parts, each on an idle machine.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=HERE / "results",
              show_default=True)
@click.option("--report-only", is_flag=True, help="Rewrite speed.md from OUT_DIR/speed.json.")
def main(data_dir, released_script, released_python, epochs, precisions, backends, jax_epochs,
         work_dir, out_dir, report_only):
    """Time both programs on the same arrays; write speed.md."""

    if report_only:
        raw = json.loads((Path(out_dir) / "speed.json").read_text())
        click.echo(f"Wrote {write_report(raw, out_dir)}")
        return

    from released_protocol import parse_released_log

    work_dir.mkdir(parents=True, exist_ok=True)
    peaks_file = work_dir / "peaks.json"
    peaks = json.loads(peaks_file.read_text()) if peaks_file.exists() else {}

    def peak(library, python=sys.executable):
        if library not in peaks:
            click.echo(f"peak matmul, {library} ...")
            peaks[library] = measure_peak(library, python)
            peaks_file.write_text(json.dumps(peaks, indent=2))
        return peaks[library]

    runs = []
    for backend in backends.split(","):
        peak(backend)
    if released_script:
        if not released_python:
            raise click.UsageError("--released-script needs --released-python.")
        peak("torch", released_python)
        log_file = work_dir / "released" / "log.txt"
        import numpy as np
        train_rows = len(np.load(Path(data_dir) / "train_idx.npy", allow_pickle=False))
        done = (parse_released_log(log_file.read_text(), train_rows)
                if log_file.exists() else None)
        if done and len(done["epoch_seconds"]) == epochs:
            click.echo("released script: reusing its finished run")
            result = dict(done, command=(work_dir / "released" / "command.txt").read_text())
        else:
            click.echo("released script ...")
            result = run_released(released_script, released_python, data_dir, 0, epochs,
                                  "discomkd", work_dir / "released", click.echo)
            (work_dir / "released" / "command.txt").write_text(result["command"])
        runs.append({"program": "released script", "label": "released script (PyTorch, float32)",
                     "backend": "torch", "precision": "float32",
                     "rows_per_s": result["rows_per_s"], "test_f1": result["f1"],
                     "train_s_per_epoch": median_after_first(result["epoch_seconds"]),
                     "command": result["command"]})
    for backend, precision in ((b, p) for b in backends.split(",") for p in precisions.split(",")):
        click.echo(f"this project, {backend}, {precision} ...")
        run_dir = work_dir / f"project-{backend}-{precision}"
        n = jax_epochs if backend == "jax" and jax_epochs else epochs
        result = reuse_project_run(run_dir, n) or run_project(
            data_dir, 0, n, ["--precision", precision], run_dir, click.echo, backend=backend)
        profile = project_profile(run_dir)
        runs.append({"program": "this project", "label": f"this project ({precision})",
                     "backend": backend, "precision": precision,
                     "rows_per_s": result["rows_per_s"],
                     "train_s_per_epoch": median_after_first(result["epoch_seconds"]),
                     "wall_s_per_epoch": profile["wall_s"], "profile": profile,
                     "epochs": n, "test_f1": result["f1"], "command": result["command"]})
        (run_dir / "command.txt").write_text(result["command"])
        click.echo(f"  {runs[-1]['rows_per_s']:.1f} rows/s")
    default_runs = []
    if "tensorflow" in backends.split(","):
        for precision in precisions.split(","):
            click.echo(f"the default run, {precision} ...")
            default_runs.append(default_run(precision, work_dir, click.echo))
    raw = {"command": "python " + shlex.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d"), "data": str(data_dir), "epochs": epochs,
           "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
           "batch_seconds": batch_seconds(data_dir), "runs": runs, "peaks": peaks,
           "macs_per_row": training_macs_per_row(run_dir), "default_run": default_runs}
    click.echo(f"Wrote {write_report(raw, out_dir)}")


if __name__ == "__main__":
    main()
