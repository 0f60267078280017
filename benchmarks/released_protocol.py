"""This project against the authors' released script, on the same arrays.

    python benchmarks/make_released_av_mnist.py /tmp/avmnist          # the arrays
    python benchmarks/released_protocol.py --data /tmp/avmnist \\
        --released-script CMKD_Disentangle/main_DisCoM-KD.py --released-python venv/bin/python

Trains, for each seed, every row of ROWS (20 epochs, the released protocol:
Adam 1e-4, batch 128 per modality, D = 512, constant lambda 1, LeNet for
MNIST, ResNet-18 for SPECTRO, image augmentation on MNIST only), then writes
benchmarks/results/released-protocol.{json,md}: per modality the test
weighted F1 at that modality's best validation epoch (mean +- std over the
seeds) and the training rows/s, with every command.

The released script (github tanodino/CMKD_Disentangle, no licence) is never
copied into this repository: you pass the path of your own checkout. It runs
in its own Python (with torch, torchvision and scikit-learn) through a small
driver written into the work folder, which seeds `random`, NumPy and torch,
sets its EPOCHS, prints its epoch time with three decimals instead of whole
seconds and, for the twin row, replaces its total loss by the task loss
alone. Nothing else of the script changes.

Runs land in --work-dir (default benchmarks/runs/released-protocol); a row
whose result file exists is reused, so an interrupted benchmark resumes.
"""

import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
MODALITIES = ("MNIST", "SPECTRO")
RELEASED_COMMIT = "7a9f41b"
PROJECT_BASE = ["--modalities", "MNIST,SPECTRO", "--encoder", "MNIST=lenet",
                "--encoder", "SPECTRO=resnet18", "--augment", "SPECTRO=none",
                "--feature-dim", "512", "--batch-size", "128", "--lr", "1e-4"]
RELEASED_TARGETS = ["--modality-targets", "released"]

# (key, label, program, arguments): "released" rows take a variant, project rows CLI options.
ROWS = (
    ("released-discomkd", "released script, DisCoM-KD", "released", "discomkd"),
    ("released-twin", "released script, task loss only (twin)", "released", "twin"),
    ("project-released", "this project, `--modality-targets released`", "project",
     RELEASED_TARGETS),
    ("project-twin", "this project, `--method unimodal` (twin)", "project", ["--method", "unimodal"]),
    ("project-default", "this project, defaults (integer modality labels)", "project", []),
    ("old-augment", "released settings but `--augment MNIST=independent` (the former default)",
     "project", RELEASED_TARGETS + ["--augment", "MNIST=independent"]),
    ("old-lenet", "released settings but `--encoder MNIST=lenet-wide` (the former lenet)",
     "project", RELEASED_TARGETS + ["--encoder", "MNIST=lenet-wide"]),
    ("old-lmod", "released settings but `--loss-weight mod=2` (the former summed L_mod)",
     "project", RELEASED_TARGETS + ["--loss-weight", "mod=2"]),
    ("old-conventions", "released settings but `--conventions keras`", "project",
     RELEASED_TARGETS + ["--conventions", "keras"]),
    ("old-all", "the project before this change: all four former settings, integer labels",
     "project", ["--augment", "MNIST=independent", "--encoder", "MNIST=lenet-wide",
                 "--loss-weight", "mod=2", "--conventions", "keras"]),
)
ROW_KEYS = tuple(r[0] for r in ROWS)

DRIVER = '''"""Runs the released script unchanged but for the lines named in released_protocol.py."""
import random, re, sys, time
from pathlib import Path
script, data, seed, epochs, variant = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
import numpy as np, torch
random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)
sys.path.insert(0, str(Path(script).parent))
import functions
functions.EPOCHS = epochs
source = Path(script).read_text()
edits = [(r'%d"%\\(\\(end-start\\)\\)', '%.3f"%((end-start))')]
if variant == "twin":
    edits.append((r"(?m)^(\\s*)loss = loss_pred \\+.*$", r"\\1loss = loss_pred"))
for pattern, replacement in edits:
    source, count = re.subn(pattern, replacement, source)
    if count != 1:
        sys.exit(f"released_protocol: pattern {pattern!r} found {count} times in {script}")
sys.argv = [script, data, "MNIST", "SPECTRO"]
exec(compile(source, script, "exec"), {"__name__": "__main__", "__file__": script})
'''
EPOCH_LINE = re.compile(r"TRAIN LOSS at Epoch (\d+): ([-\d.naninf]+)(.*) with training time ([\d.]+)")
BEST = re.compile(r"BEST on (\w+) F1 on TEST SET ([\d.]+)")


def parse_released_log(text, train_rows):
    """{f1: {mod: test F1 at best valid epoch}, best_epoch, epoch_seconds, rows_per_s} of a log."""
    best, best_epoch, seconds = {}, {}, []
    for line in text.splitlines():
        match = EPOCH_LINE.search(line)
        if not match:
            continue
        epoch = int(match.group(1)) + 1
        seconds.append(float(match.group(4)))
        # The script prints the test F1 of its best validation epoch so far, every epoch.
        for modality, f1 in BEST.findall(match.group(3)):
            if best.get(modality) != float(f1) / 100:
                best[modality], best_epoch[modality] = float(f1) / 100, epoch
    if set(best) != set(MODALITIES):
        raise RuntimeError("the released script's log has no BEST line for every modality")
    return {"f1": best, "best_epoch": best_epoch, "epoch_seconds": seconds,
            "rows_per_s": train_rows / median_after_first(seconds)}


def median_after_first(values):
    """Median over epochs 2.. (epoch 1 holds start-up and tracing)."""
    return statistics.median(values[1:] if len(values) > 1 else values)


def run_released(script, python, data_dir, seed, epochs, variant, run_dir, log):
    run_dir.mkdir(parents=True, exist_ok=True)
    data = run_dir / "data"  # the script writes its weights beside the data: one folder a run
    data.mkdir(exist_ok=True)
    for f in Path(data_dir).glob("*.npy"):
        if not (data / f.name).exists():
            (data / f.name).symlink_to(f.resolve())
    driver = run_dir / "driver.py"
    driver.write_text(DRIVER)
    command = [str(python), str(driver), str(Path(script).resolve()), str(data), str(seed),
               str(epochs), variant]
    log(f"  $ {shlex.join(command)}")
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (run_dir / "log.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"released script failed (see {run_dir / 'log.txt'}): "
                           f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    import numpy as np
    train_rows = len(np.load(Path(data_dir) / "train_idx.npy", allow_pickle=False))
    result = parse_released_log(proc.stdout, train_rows)
    result.update(wall_seconds=wall, command=shlex.join(command))
    return result


def run_project(data_dir, seed, epochs, arguments, run_dir, log, backend=None):
    # `env KERAS_BACKEND=...` is part of the command: the recorded line runs as it reads.
    command = [*(["env", f"KERAS_BACKEND={backend}"] if backend else []),
               "discomkd-keras", "train", "--data-dir", str(data_dir), *PROJECT_BASE,
               "--epochs", str(epochs), "--seed", str(seed), *arguments,
               "--run-dir", str(run_dir), "--overwrite", "--quiet"]
    log(f"  $ {shlex.join(command)}")
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "log.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"discomkd-keras train failed (see {run_dir / 'log.txt'}): "
                           f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return dict(read_project_run(run_dir), wall_seconds=wall, command=shlex.join(command))


def read_project_run(run_dir):
    """{f1, accuracy, best_epoch (per modality), epoch_seconds, rows_per_s, epochs, versions}
    of a finished run directory of this project; rows/s over epochs 2.. (median)."""
    from discomkd_keras.run_directory import read_history

    run_dir = Path(run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    seconds = [row["seconds"] for row in read_history(run_dir / "history.csv")]
    modalities = config["modalities"]
    rows_per_epoch = config["split_sizes"][modalities[0]]["train"]
    return {"f1": {m: results[m]["test_weighted_f1"] for m in modalities},
            "accuracy": {m: results[m]["test_accuracy"] for m in modalities},
            "best_epoch": {m: results[m]["best_epoch"] for m in modalities},
            "epoch_seconds": seconds, "rows_per_s": rows_per_epoch / median_after_first(seconds),
            "epochs": config["epochs"], "versions": config["versions"]}


def mean_std(values):
    return (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def write_report(raw, out_dir):
    """released-protocol.json (every run) and .md (the table), written atomically."""
    from discomkd_keras.run_directory import write_atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "released-protocol.json", json.dumps(raw, indent=2))
    seeds = raw["seeds"]
    lines = [
        "# This project against the released script, same arrays",
        "",
        f"Written by `{raw['command']}` on {raw['date']}. Released script: "
        f"github tanodino/CMKD_Disentangle at {RELEASED_COMMIT} (run from a checkout outside "
        "this repository, unchanged but for the driver's edits: seeds, epochs, epoch time "
        "with decimals, and for the twin `loss = loss_pred`).",
        "",
        f"Data: `{raw['data']}` (`benchmarks/make_released_av_mnist.py`): MNIST (N,1,28,28) + "
        "SPECTRO (N,1,64,64), 2430 train / 270 valid / 300 test rows. "
        f"Protocol: {raw['epochs']} epochs, Adam 1e-4, batch 128 per modality, D = 512, lambda 1, "
        "LeNet for MNIST, ResNet-18 for SPECTRO, augmentation on MNIST only. "
        "Seeds from 0 up, as many as the runs column says; test weighted F1 (points) at each "
        "modality's best validation epoch, mean +- std over the seeds; rows/s: training rows "
        "(one per modality pair) per second of training, median of epochs 2.., mean over the "
        f"seeds. Machine: {raw['machine']}. These runs shared the cores with other benchmarks "
        "(two jobs at a time), so rows/s here are not speed figures: `speed.md` measures speed "
        "on a quiet machine.",
        "",
        "| row | MNIST F1 | SPECTRO F1 | rows/s | runs |",
        "|---|---:|---:|---:|---:|",
    ]
    by_row = {key: sorted((r for r in raw["runs"] if r["row"] == key), key=lambda r: r["seed"])
              for key in ROW_KEYS}
    f1_mean = {key: {m: mean_std([100 * r["f1"][m] for r in runs])[0] for m in MODALITIES}
               for key, runs in by_row.items() if runs}
    for key, label, _, _ in ROWS:
        runs = by_row[key]
        if not runs:
            continue
        cells = []
        for m in MODALITIES:
            mean, std = mean_std([100 * r["f1"][m] for r in runs])
            cells.append(f"{mean:.1f} +- {std:.1f}" if len(runs) > 1 else f"{mean:.1f}")
        speed = statistics.mean(r["rows_per_s"] for r in runs)
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {speed:.1f} | {len(runs)} |")
    lines += ["", "Fidelity (this project's mean minus the released script's, points; "
              "the target: within 1):", ""]
    for ours, theirs in (("project-released", "released-discomkd"), ("project-twin", "released-twin")):
        if by_row[ours] and by_row[theirs]:
            gaps = {m: f1_mean[ours][m] - f1_mean[theirs][m] for m in MODALITIES}
            lines.append(f"- {ours} against {theirs} ({len(by_row[ours])} and "
                         f"{len(by_row[theirs])} seeds): " + ", ".join(
                f"{m} {g:+.1f} ({'within' if abs(g) <= 1 else 'NOT within'} 1)"
                for m, g in gaps.items()))
    lines += ["", "Per seed (test weighted F1, points, MNIST / SPECTRO):", ""]
    for key, label, _, _ in ROWS:
        runs = by_row[key]
        if runs:
            per_seed = "; ".join(f"seed {r['seed']}: {100 * r['f1']['MNIST']:.1f} / "
                                 f"{100 * r['f1']['SPECTRO']:.1f}" for r in runs)
            lines.append(f"- {label}: {per_seed}")
    lines += ["", "Commands (seed 0; the other seeds change `--seed` / the driver's seed):", ""]
    for key, label, _, _ in ROWS:
        first = next((r for r in by_row[key] if r["seed"] == seeds[0]), None)
        if first:
            lines += [f"- {label}:", f"  `{first['command']}`"]
    write_atomic(out_dir / "released-protocol.md", "\n".join(lines) + "\n")
    return out_dir / "released-protocol.md"


def data_and_script_options(command):
    """--data, --released-script and --released-python, shared with speed.py."""
    file = click.Path(path_type=Path, exists=True, dir_okay=False)
    for option in reversed((
            click.option("--data", "data_dir", required=True,
                         type=click.Path(path_type=Path, exists=True, file_okay=False),
                         help="Released-layout folder (make_released_av_mnist.py)."),
            click.option("--released-script", type=file, default=None,
                         help="Your checkout's main_DisCoM-KD.py (omit: no released-script runs)."),
            click.option("--released-python", type=file, default=None,
                         help="A Python with torch, torchvision and scikit-learn."))):
        command = option(command)
    return command


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@data_and_script_options
@click.option("--seeds", type=int, default=3, show_default=True, help="Seeds 0..N-1.")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--rows", default=",".join(ROW_KEYS), show_default=True,
              help="Comma-separated rows to run, in this order.")
@click.option("--work-dir", type=click.Path(path_type=Path),
              default=HERE / "runs" / "released-protocol", show_default=True)
@click.option("--out-dir", type=click.Path(path_type=Path), default=HERE / "results",
              show_default=True)
@click.option("--report-only", is_flag=True,
              help="Train nothing: write the report from the finished runs in --work-dir.")
def main(data_dir, released_script, released_python, seeds, epochs, rows, work_dir, out_dir,
         report_only):
    """Train the released script and this project on the same arrays; write the comparison."""
    import platform

    wanted = [r.strip() for r in rows.split(",") if r.strip()]
    unknown = [r for r in wanted if r not in ROW_KEYS]
    if unknown:
        raise click.BadParameter(f"unknown rows {unknown}; expected some of {list(ROW_KEYS)}",
                                 param_hint="--rows")
    spec = {key: (program, arguments) for key, _, program, arguments in ROWS}
    if (not report_only and any(spec[r][0] == "released" for r in wanted)
            and not (released_script and released_python)):
        raise click.UsageError("released rows need --released-script and --released-python.")
    raw_path = Path(out_dir) / "released-protocol.json"
    old = json.loads(raw_path.read_text())["runs"] if raw_path.exists() else []
    records = {(r["row"], r["seed"]): r for r in old if r.get("epochs") == epochs}
    for seed in range(seeds):
        for key in wanted:
            program, arguments = spec[key]
            run_dir = Path(work_dir) / key / f"seed{seed}"
            done = run_dir / "result.json"
            if done.exists():
                records[(key, seed)] = json.loads(done.read_text())
                continue
            if report_only:
                continue
            click.echo(f"[{time.strftime('%H:%M:%S')}] {key}, seed {seed}")
            if program == "released":
                result = run_released(released_script, released_python, data_dir, seed, epochs,
                                      arguments, run_dir, click.echo)
            else:
                result = run_project(data_dir, seed, epochs, arguments, run_dir, click.echo)
            result.update(row=key, seed=seed, epochs=epochs)
            done.write_text(json.dumps(result, indent=2))
            records[(key, seed)] = result
            click.echo(f"  F1 MNIST {100 * result['f1']['MNIST']:.1f}, SPECTRO "
                       f"{100 * result['f1']['SPECTRO']:.1f}; {result['rows_per_s']:.1f} rows/s")
    if not records:
        raise click.UsageError(f"no finished runs (result.json) under {work_dir} nor in {raw_path}: "
                               "nothing to report.")
    raw = {"command": "python " + shlex.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d"), "data": str(data_dir), "epochs": epochs,
           "seeds": list(range(seeds)),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
           "runs": sorted(records.values(), key=lambda r: (ROW_KEYS.index(r["row"]), r["seed"]))}
    click.echo(f"Wrote {write_report(raw, out_dir)}")


if __name__ == "__main__":
    main()
