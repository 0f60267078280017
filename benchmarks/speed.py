"""Training speed: this project against the released script, same arrays, same session.

    python benchmarks/speed.py --data DIR --released-script main_DisCoM-KD.py \\
        --released-python venv/bin/python [--epochs 4]

DIR is a released-layout folder (benchmarks/make_released_av_mnist.py). Both
programs train DisCoM-KD with the released protocol (LeNet for MNIST,
ResNet-18 for SPECTRO, D = 512, batch 128 per modality, Adam 1e-4) for
--epochs epochs, one after the other, on an otherwise idle machine; this
project once per --precisions entry. Per program: training rows/s (one row =
one sample of each modality; median over epochs 2.., the first holds start-up
and tracing), training seconds per epoch, and this project's wall seconds per
epoch (training + validation + checkpoint + plots) with its ratio to the
training time. The profile splits this project's epoch: preparing the batches
(augmentation included; done by a background thread while the step runs),
the training step, validation, checkpoint and plots.

Writes benchmarks/results/speed.{json,md}; figures are never asserted.
"""

import json
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
                               run_project, run_released)


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
        f"{raw['epochs']} epochs each, seed 0. Released script: github tanodino/CMKD_Disentangle "
        f"at {RELEASED_COMMIT}, run from a checkout outside this repository.",
        "",
        "| program | training rows/s | x released | train s / epoch | wall s / epoch | wall / train "
        f"| test F1 after {raw['epochs']} epochs (MNIST / SPECTRO) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        ratio = r["rows_per_s"] / released["rows_per_s"] if released else float("nan")
        wall = r.get("wall_s_per_epoch")
        walls = (f"{wall:.2f} | {wall / r['train_s_per_epoch']:.3f}" if wall else "n/a | n/a")
        f1 = " / ".join(f"{100 * r['test_f1'][m]:.1f}" for m in ("MNIST", "SPECTRO"))
        lines.append(f"| {r['label']} | {r['rows_per_s']:.1f} | {ratio:.2f} | "
                     f"{r['train_s_per_epoch']:.2f} | {walls} | {f1} |")
    lines += ["", "Rows/s and seconds: medians over epochs 2.. (epoch 1 holds start-up and "
              "tracing). The released script's wall time per epoch also evaluates the test set "
              "every epoch, so only its training time is compared.", ""]
    for r in runs:
        p = r.get("profile")
        if p:
            lines.append(f"Profile of `{r['label']}` (mean per epoch, epochs 2..): training step "
                         f"{p['train_s']:.2f} s (its batches take {raw['batch_seconds']:.2f} s to "
                         f"prepare, on a background thread), validation {p['validation_s']:.2f} s, "
                         f"checkpoint + plots {p['checkpoint_s']:.2f} s ({p['checkpoints']} "
                         f"checkpoint(s) in {raw['epochs'] - 1} epochs), wall {p['wall_s']:.2f} s.")
    lines += ["", "Commands:", ""] + [f"- {r['label']}: `{r['command']}`" for r in runs]
    write_atomic(out_dir / "speed.md", "\n".join(lines) + "\n")
    return out_dir / "speed.md"


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@data_and_script_options
@click.option("--epochs", type=int, default=4, show_default=True)
@click.option("--precisions", default="float32,mixed_bfloat16", show_default=True,
              help="This project's precision policies to time.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=HERE / "runs" / "speed",
              show_default=True)
@click.option("--out-dir", type=click.Path(path_type=Path), default=HERE / "results",
              show_default=True)
@click.option("--report-only", is_flag=True, help="Rewrite speed.md from OUT_DIR/speed.json.")
def main(data_dir, released_script, released_python, epochs, precisions, work_dir, out_dir,
         report_only):
    """Time both programs on the same arrays; write speed.md."""
    import os

    if report_only:
        raw = json.loads((Path(out_dir) / "speed.json").read_text())
        click.echo(f"Wrote {write_report(raw, out_dir)}")
        return

    runs = []
    if released_script:
        if not released_python:
            raise click.UsageError("--released-script needs --released-python.")
        click.echo("released script ...")
        result = run_released(released_script, released_python, data_dir, 0, epochs, "discomkd",
                              work_dir / "released", click.echo)
        runs.append({"program": "released script", "label": "released script (PyTorch, float32)",
                     "rows_per_s": result["rows_per_s"], "test_f1": result["f1"],
                     "train_s_per_epoch": median_after_first(result["epoch_seconds"]),
                     "command": result["command"]})
    for precision in precisions.split(","):
        click.echo(f"this project, {precision} ...")
        run_dir = work_dir / f"project-{precision}"
        result = run_project(data_dir, 0, epochs, ["--mixed-precision", precision], run_dir,
                             click.echo)
        profile = project_profile(run_dir)
        runs.append({"program": "this project", "label": f"this project ({precision})",
                     "rows_per_s": result["rows_per_s"],
                     "train_s_per_epoch": median_after_first(result["epoch_seconds"]),
                     "wall_s_per_epoch": profile["wall_s"], "profile": profile,
                     "test_f1": result["f1"], "command": result["command"]})
        click.echo(f"  {runs[-1]['rows_per_s']:.1f} rows/s")
    raw = {"command": "python " + shlex.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d"), "data": str(data_dir), "epochs": epochs,
           "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
           "batch_seconds": batch_seconds(data_dir), "runs": runs}
    click.echo(f"Wrote {write_report(raw, out_dir)}")


if __name__ == "__main__":
    main()
