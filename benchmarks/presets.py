"""The edge preset's learning rate, schedule and weight decay, chosen on the validation split
of three data sets; then DisCoM-KD against its unimodal twin under the chosen preset.

    python benchmarks/presets.py                   # both stages, then the report
    python benchmarks/presets.py --stage grid      # stage 1 only (resumable)
    python benchmarks/presets.py --report-only     # rebuild the report, train nothing

Data sets (real files are written from --shared, default ../shared/data, into
WORK/data/ once; nothing is copied into the repository):
  synthetic-rgbd   the built-in synthetic RGB-D set (data_spec("synthetic-rgbd"))
  av-mnist-tree    AV-MNIST as modality trees, as the README's worked example writes it
                   (make_mnist_features.write_av_mnist_tree)
  mnist-features   MNIST pixels + 36 Fourier magnitudes, a manifest, splits from
                   --split-seed 0 (make_mnist_features.write_mnist_features)

Every run takes the options `discomkd-keras compare` builds, with preset "edge" and the
grid point's learning_rate, schedule, warmup_epochs and weight_decay:
    comparison_options(source, with_preset(dict(BASE, preset="edge", ...), source), data)
and trains through comparison.run_comparison, which reuses finished runs (same config):
an interrupted benchmark resumes where it stopped. Runs: WORK/runs/<data set>/<point>/
(WORK: --work-dir, default benchmarks/runs/presets, not committed).

Stage 1 (grid): every point of --lrs x --schedules x --weight-decays (cosine with
--warmup-epochs of linear warm-up, constant with none), method discomkd, --grid-seeds.
A point's score: the mean over data sets of the mean over modalities of the runs' best
validation weighted F1 (mean over the grid seeds). The choice: the highest score; points
within TIE_POINTS (0.3) F1 points of it go to the simplest: constant before cosine,
weight decay 0 before > 0, then the lower learning rate. The test split is not looked at.
Stage 2 (compare): at the chosen point, discomkd and unimodal, seeds 0..--seeds-1; per
data set and modality the mean +- std test weighted F1 of each and the paired per-seed
difference discomkd - unimodal with its 95% Student t interval (points), the validation
F1 and the epochs each run stopped at (early stopping against the epoch ceiling).

Writes OUT/presets.md and OUT/presets.json (OUT: --out, default benchmarks/results). The
report is a pure function of the run records (`build_report`), tested with hand-made
records in tests/test_presets_benchmark.py.
"""

import argparse
import datetime
import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = ("synthetic-rgbd", "av-mnist-tree", "mnist-features")
TIE_POINTS = 0.3  # weighted-F1 points: a simpler point this close to the best wins
COSINE_WARMUP = 1.0  # default epochs of linear warm-up of the cosine points
# What `discomkd-keras compare` passes when no option is given on its command line: every
# value None or empty is the preset's.
BASE = {"epochs": None, "batch_size": None, "feature_dim": None, "patience": None,
        "augment": {}, "pretrained": {}, "branch": "separate", "precision": "float32"}
SMOKE_ROWS, SMOKE_EPOCHS = 300, 2
RULE = (f"the highest score (mean over data sets of the mean over modalities of the best "
        f"validation weighted F1); points within {TIE_POINTS:g} points of the best go to the "
        "simplest: constant before cosine, weight decay 0 before > 0, then the lower learning "
        "rate.")


# --- grid points ---------------------------------------------------------------------------
def make_point(learning_rate, schedule, weight_decay, warmup_epochs=None):
    """A grid point; warm-up defaults to COSINE_WARMUP for cosine, 0 for constant."""
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"Unknown schedule {schedule!r}; expected constant or cosine.")
    if warmup_epochs is None:
        warmup_epochs = COSINE_WARMUP if schedule == "cosine" else 0.0
    return {"learning_rate": float(learning_rate), "schedule": schedule,
            "warmup_epochs": float(warmup_epochs), "weight_decay": float(weight_decay)}


def grid_points(lrs, schedules, weight_decays, cosine_warmup=COSINE_WARMUP):
    """Every combination, in the order lr, schedule, weight decay."""
    return [make_point(lr, s, wd, cosine_warmup if s == "cosine" else 0.0)
            for lr in lrs for s in schedules for wd in weight_decays]


def point_key(point):
    return (point["learning_rate"], point["schedule"], point["warmup_epochs"],
            point["weight_decay"])


def point_slug(point):
    """The point's folder name, e.g. lr0.001-cosine-wu1-wd0.01."""
    return (f"lr{point['learning_rate']:g}-{point['schedule']}-wu{point['warmup_epochs']:g}"
            f"-wd{point['weight_decay']:g}")


def point_words(point):
    warm = f" (warm-up {point['warmup_epochs']:g} ep)" if point["warmup_epochs"] else ""
    return (f"lr {point['learning_rate']:g}, {point['schedule']}{warm}, weight decay "
            f"{point['weight_decay']:g}")


def simplicity(point):
    """Sort key: the simplest point first (constant, no weight decay, lower lr)."""
    return (point["schedule"] != "constant", point["weight_decay"] > 0,
            point["learning_rate"], point["weight_decay"], point["warmup_epochs"])


# --- the report: a pure function of the records ---------------------------------------------
def _mean(values):
    return float(np.mean(values)) if len(values) else float("nan")


def _std(values):
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def grid_table(grid_records, datasets=None):
    """{point slug: {"point", "datasets": {data set: {"valid_f1": {m: points}, "mean",
    "seeds", "epochs"}}, "score" (None unless every data set is there)}}, F1 in points
    (x100), each a mean over the point's seeds."""
    datasets = list(datasets or dict.fromkeys(r["dataset"] for r in grid_records))
    table = {}
    for r in grid_records:
        if r["method"] != "discomkd":
            continue
        row = table.setdefault(point_slug(r["point"]), {"point": dict(r["point"]), "datasets": {}})
        cell = row["datasets"].setdefault(r["dataset"], {"runs": []})
        cell["runs"].append(r)
    for row in table.values():
        for name, cell in row["datasets"].items():
            runs = sorted(cell.pop("runs"), key=lambda r: r["seed"])
            modalities = list(runs[0]["results"])
            cell["valid_f1"] = {m: _mean([100 * (r["results"][m]["valid_weighted_f1"] or 0.0)
                                          for r in runs]) for m in modalities}
            cell["mean"] = _mean(list(cell["valid_f1"].values()))
            cell["seeds"] = [r["seed"] for r in runs]
            cell["epochs"] = [r["epochs"] for r in runs]
        complete = all(d in row["datasets"] for d in datasets)
        row["score"] = _mean([row["datasets"][d]["mean"] for d in datasets]) if complete else None
    return table


def choose_point(table, tie=TIE_POINTS):
    """(chosen slug, best slug, slugs within `tie` points of the best) among the points with
    a score; (None, None, []) when none has one."""
    scored = {slug: row for slug, row in table.items() if row["score"] is not None}
    if not scored:
        return None, None, []
    best = min(scored, key=lambda s: (-scored[s]["score"], simplicity(scored[s]["point"])))
    near = [s for s, row in scored.items() if row["score"] >= scored[best]["score"] - tie - 1e-9]
    chosen = min(near, key=lambda s: (simplicity(scored[s]["point"]), -scored[s]["score"]))
    return chosen, best, sorted(near, key=lambda s: -scored[s]["score"])


def compare_table(compare_records):
    """{data set: {modality: figures}}: test / validation F1 of discomkd and its unimodal
    twin (mean, std, per seed, points), the paired difference discomkd - twin over their
    common seeds (paired_difference: mean, std, 95% low / high, n), its verdict word and
    the epochs each run stopped at."""
    from discomkd_keras.comparison import paired_difference

    out = {}
    by_data = {}
    for r in compare_records:
        by_data.setdefault(r["dataset"], []).append(r)
    for name, runs in by_data.items():
        methods = {label: {r["seed"]: r for r in runs if r["method"] == label}
                   for label in ("discomkd", "unimodal")}
        modalities = list(next(iter(runs))["results"])
        out[name] = {}
        for m in modalities:
            figures = {}
            for label, seeds in methods.items():
                order = sorted(seeds)
                test = [100 * seeds[s]["results"][m]["test_weighted_f1"] for s in order]
                valid = [100 * (seeds[s]["results"][m]["valid_weighted_f1"] or 0.0) for s in order]
                figures[label] = {"seeds": order, "test_f1": test, "valid_f1": valid,
                                  "test_mean": _mean(test), "test_std": _std(test),
                                  "valid_mean": _mean(valid), "valid_std": _std(valid),
                                  "epochs": [seeds[s]["epochs"] for s in order],
                                  "best_epoch": [seeds[s]["results"][m].get("best_epoch")
                                                 for s in order]}
            common = sorted(set(methods["discomkd"]) & set(methods["unimodal"]))
            a = [100 * methods["discomkd"][s]["results"][m]["test_weighted_f1"] for s in common]
            b = [100 * methods["unimodal"][s]["results"][m]["test_weighted_f1"] for s in common]
            if common:
                diff = dict(paired_difference(a, b), seeds=common)
                figures["difference"] = diff
                figures["verdict"] = verdict_of(diff)
            else:
                figures["difference"], figures["verdict"] = None, "no paired seeds"
            out[name][m] = figures
    return out


def verdict_of(difference):
    """helps / hurts where the 95% interval excludes 0, else no evidence either way."""
    if difference["n"] < 2:
        return "one seed: no interval"
    if difference["low"] > 0:
        return "helps"
    if difference["high"] < 0:
        return "hurts"
    return "no evidence either way"


def _cell(cell):
    f1 = ", ".join(f"{m} {v:.1f}" for m, v in cell["valid_f1"].items())
    epochs = "/".join(str(e) for e in cell["epochs"])
    return f"{f1}; mean **{cell['mean']:.1f}**; {epochs} ep"


def _pm(mean, std):
    return f"{mean:.1f} ± {std:.1f}"


def _clean(value):
    """JSON without NaN (one-seed intervals): NaN becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def build_report(grid_records, compare_records, meta):
    """(markdown, json-able dict) of the benchmark, from the runs' records alone.

    grid_records, compare_records: run_comparison records, each with "dataset" (name) and
        "point" (make_point's dict) added.
    meta: command, date, git, machine, wall_seconds, datasets (names, in order; default
        the records'), data (name -> description), grid_seeds, seeds, points (the grid
        asked for), options (name -> shared options of the chosen point), notes (lines).
    """
    datasets = list(meta.get("datasets") or dict.fromkeys(
        r["dataset"] for r in list(grid_records) + list(compare_records)))
    table = grid_table(grid_records, datasets)
    chosen, best, near = choose_point(table)
    compared = compare_table(compare_records)
    compare_points = {point_slug(r["point"]) for r in compare_records}
    notes = list(meta.get("notes") or [])
    if compare_records and chosen is not None and compare_points != {chosen}:
        notes.append(f"The comparison ran at {', '.join(sorted(compare_points))}, not at the "
                     f"point chosen now ({chosen}).")
    asked = [point_slug(p) for p in meta.get("points") or []]
    missing_points = [s for s in asked if s not in table or table[s]["score"] is None]
    train_seconds = sum(r.get("train_seconds", 0.0) for r in list(grid_records) + list(compare_records))

    lines = ["# The edge preset: learning rate, schedule and weight decay", "",
             f"Written by `{meta.get('command', 'python benchmarks/presets.py')}` on "
             f"{meta.get('date', '?')} at commit `{meta.get('git', '?')}`; wall time of that "
             f"invocation {meta.get('wall_seconds', 0.0) / 60:.1f} min, training time of the "
             f"runs reported {train_seconds / 60:.1f} min (sum).", ""]
    machine = meta.get("machine") or {}
    if machine:
        lines += ["Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + ".", ""]
    lines += ["Data sets:", ""]
    for name in datasets:
        description = (meta.get("data") or {}).get(name, "")
        lines.append(f"- **{name}**{': ' + description if description else ''}")
    lines.append("")
    for name, options in (meta.get("options") or {}).items():
        keep = {k: options.get(k) for k in ("preset", "encoders", "feature_dim", "batch_size",
                                            "epochs", "patience", "augment") if k in options}
        lines.append(f"- {name} shared options: " + ", ".join(f"{k} {v}" for k, v in keep.items()))
    if meta.get("options"):
        lines += ["", "(epochs is the ceiling; patience the early-stopping patience in epochs.)", ""]

    lines += ["## Stage 1: the grid, on the validation split", "",
              f"Method discomkd, seeds {', '.join(map(str, meta.get('grid_seeds', [])))}. Each "
              "cell: each modality's best validation weighted F1 (points, mean over the seeds), "
              "their mean, and the epochs each run stopped at. Score: the mean of the data "
              "sets' means.", "",
              f"**Choice rule**: {RULE}", "",
              "| lr | schedule | warm-up | weight decay | " + " | ".join(datasets) + " | score |",
              "|---:|---|---:|---:|" + "---|" * len(datasets) + "---:|"]
    order = sorted(table, key=lambda s: (table[s]["point"]["learning_rate"],
                                         table[s]["point"]["schedule"],
                                         table[s]["point"]["weight_decay"]))
    for slug in order:
        row = table[slug]
        p = row["point"]
        cells = [_cell(row["datasets"][d]) if d in row["datasets"] else "(not run)"
                 for d in datasets]
        score = "incomplete" if row["score"] is None else f"{row['score']:.2f}"
        if slug == chosen:
            score = f"**{score} (chosen)**"
        elif slug in near:
            score += f" (within {TIE_POINTS:g})"
        lines.append(f"| {p['learning_rate']:g} | {p['schedule']} | {p['warmup_epochs']:g} | "
                     f"{p['weight_decay']:g} | " + " | ".join(cells) + f" | {score} |")
    lines.append("")
    if missing_points:
        lines += [f"Grid points without a score (a data set not run): {', '.join(missing_points)}.",
                  ""]
    if chosen is None:
        lines += ["**Choice**: none yet (no grid point has been run on every data set).", ""]
    else:
        c, b = table[chosen], table[best]
        why = ("the best score" if chosen == best else
               f"the simplest of the {len(near)} points within {TIE_POINTS:g} of the best "
               f"({point_words(b['point'])}, {b['score']:.2f})")
        lines += [f"**Choice**: {point_words(c['point'])}: score {c['score']:.2f}, {why}.", ""]

    lines += ["## Stage 2: DisCoM-KD against its unimodal twin at the chosen point", ""]
    if not compared:
        lines += ["Not run yet (`--stage compare`).", ""]
    else:
        seeds = meta.get("seeds") or sorted({r["seed"] for r in compare_records})
        lines += [f"Seeds {', '.join(map(str, seeds))}; point "
                  f"{', '.join(point_words(r['point']) for r in compare_records[:1])}. Test "
                  "weighted F1 in points, mean ± std over seeds; the paired per-seed difference "
                  "DisCoM-KD - twin (same seed) with its 95% Student t interval; DisCoM-KD helps "
                  "or hurts only where the interval excludes 0. Validation F1 and the epochs "
                  "each run stopped at (per seed) show how early stopping acted.", "",
                  "| data set | modality | twin test F1 | DisCoM-KD test F1 | DisCoM-KD - twin | "
                  "95% CI | verdict | twin valid F1 | DisCoM-KD valid F1 | epochs twin | "
                  "epochs DisCoM-KD |",
                  "|---|---|---:|---:|---:|---|---|---:|---:|---|---|"]
        verdicts = []
        for name in [d for d in datasets if d in compared] + \
                [d for d in compared if d not in datasets]:
            for m, f in compared[name].items():
                u, k, d = f["unimodal"], f["discomkd"], f["difference"]
                if d is None:
                    diff, ci = "n/a", "n/a"
                else:
                    diff = f"{d['mean']:+.1f} ± {d['std']:.1f}"
                    ci = (f"[{d['low']:+.1f}, {d['high']:+.1f}]" if d["n"] > 1 else "(one seed)")
                lines.append(
                    f"| {name} | {m} | {_pm(u['test_mean'], u['test_std'])} | "
                    f"{_pm(k['test_mean'], k['test_std'])} | {diff} | {ci} | {f['verdict']} | "
                    f"{_pm(u['valid_mean'], u['valid_std'])} | {_pm(k['valid_mean'], k['valid_std'])}"
                    f" | {', '.join(map(str, u['epochs']))} | {', '.join(map(str, k['epochs']))} |")
                span = "" if d is None or d["n"] < 2 else \
                    f": {d['mean']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}] points"
                verdicts.append(f"- {name} / {m}: {f['verdict']}{span}.")
        lines += ["", "Verdicts (DisCoM-KD against the twin, test weighted F1):", "", *verdicts, ""]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]

    report = {
        "command": meta.get("command"), "date": meta.get("date"), "git": meta.get("git"),
        "machine": machine, "wall_seconds": meta.get("wall_seconds"),
        "train_seconds": train_seconds, "datasets": datasets, "data": meta.get("data"),
        "options": meta.get("options"),
        "grid": {"points": meta.get("points"), "seeds": meta.get("grid_seeds"),
                 "rule": RULE, "tie_points": TIE_POINTS, "table": table, "best": best,
                 "within_tie": near, "choice": table[chosen]["point"] if chosen else None,
                 "choice_slug": chosen},
        "compare": {"seeds": meta.get("seeds"), "table": compared},
        "notes": notes, "grid_runs": list(grid_records), "compare_runs": list(compare_records),
    }
    return "\n".join(lines), _clean(report)


# --- running -----------------------------------------------------------------------------
def dataset_spec(name, work_dir, shared, smoke=False, write=True):
    """The data spec of a data set, writing its files into WORK/data/ first when absent
    (`write`); None when absent and not written."""
    from discomkd_keras.config import data_spec
    from make_mnist_features import write_av_mnist_tree, write_mnist_features

    data_dir = Path(work_dir) / "data"
    if name == "synthetic-rgbd":
        return data_spec("synthetic-rgbd")
    if name == "av-mnist-tree":
        folder = data_dir / "av-mnist-tree"
        if not folder.exists():
            if not write:
                return None
            print(f"Writing {folder} from {shared} ...", flush=True)
            write_av_mnist_tree(shared, folder)
        return data_spec(data_dir=folder)
    if name == "mnist-features":
        folder = data_dir / ("mnist-features-smoke" if smoke else "mnist-features")
        if not folder.exists():
            if not write:
                return None
            print(f"Writing {folder} from {shared} ...", flush=True)
            write_mnist_features(shared, folder, limit=SMOKE_ROWS if smoke else None)
        return data_spec(data_dir=folder, split_seed=0)
    raise ValueError(f"Unknown data set {name!r}; expected some of {', '.join(DATASETS)}.")


def shared_options(spec, data, point, epochs=None):
    """The options every method of one run set shares, as `discomkd-keras compare` builds
    them, with the edge preset and the grid point."""
    from discomkd_keras.comparison import comparison_options
    from discomkd_keras.config import with_preset

    base = dict(BASE, preset="edge", epochs=epochs, **point)
    return comparison_options(spec["source"], with_preset(base, spec["source"]), data)


def finished_records(spec, options, seeds, work_dir, methods, data):
    """(records of the finished runs of this run set, [(seed, method)] not finished):
    what run_comparison would reuse, read without training anything."""
    from discomkd_keras.comparison import _finished, _slug, method_options, plan_runs, run_record
    from discomkd_keras.config import resolve_config

    records, missing = [], []
    for seed, label, change in plan_runs(seeds, methods):
        run_dir = Path(work_dir) / f"seed{seed}" / _slug(label)
        config = resolve_config(spec, data, method_options(options, seed, change))
        if _finished(run_dir, config):
            results = json.loads((run_dir / "results.json").read_text())
            records.append(run_record(run_dir, work_dir, label, seed, results))
        else:
            missing.append((seed, label))
    return records, missing


class Bench:
    """The data sets (loaded once) and the run sets of the benchmark."""

    def __init__(self, args):
        self.args = args
        self.work = Path(args.work_dir)
        self.specs, self.loaded, self.notes, self.options = {}, {}, [], {}

    def data(self, name):
        """(spec, data) or (None, None) where a report-only run finds no files."""
        from discomkd_keras.data import load_data

        if name not in self.loaded:
            spec = dataset_spec(name, self.work, self.args.shared, self.args.smoke,
                                write=not self.args.report_only)
            if spec is None:
                self.notes.append(f"{name}: no data in {self.work / 'data'}, so no runs read.")
                self.loaded[name] = (None, None)
            else:
                data = load_data(spec)
                print(f"[{name}] {data.description or data.name}", flush=True)
                self.loaded[name] = (spec, data)
                # The report names no folder of this machine: WORK for the work dir, no cache.
                words = (data.description or data.name).split("; cache ")[0]
                self.specs[name] = words.replace(str(self.work.resolve()), "WORK")
        return self.loaded[name]

    def run_set(self, name, point, seeds, methods, train):
        """Records of one data set x point x seeds x methods, each labelled with its data set
        and point, and the shared options; trained (or reused) with `train`, else only
        read ([], None where a report-only run finds no data)."""
        from discomkd_keras.comparison import run_comparison

        spec, data = self.data(name)
        if spec is None:
            return [], None
        options = shared_options(spec, data, point, self.args.epochs)
        work_dir = self.work / "runs" / name / point_slug(point)
        if train:
            print(f"[{name}] {point_words(point)}: {', '.join(methods)} x seeds {list(seeds)}",
                  flush=True)
            records = run_comparison(spec, options, list(seeds), work_dir, methods=list(methods),
                                     data=data, log=print, verbose=self.args.verbose)
        else:
            records, missing = finished_records(spec, options, list(seeds), work_dir, methods,
                                                data)
            if missing:
                self.notes.append(
                    f"{name}, {point_words(point)}: not finished, left out: "
                    + ", ".join(f"{label} seed {seed}" for seed, label in missing) + ".")
        for r in records:  # run_dir relative to WORK
            r.update(dataset=name, point=dict(point),
                     run_dir=str(Path("runs") / name / point_slug(point) / r["run_dir"]))
        return records, options


def _floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


def _words(text):
    return [v.strip() for v in text.split(",") if v.strip()]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("grid", "compare", "all"), default="all",
                        help="grid: stage 1; compare: stage 2 at the point the finished grid "
                        "runs choose; all: both (default)")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the report from the finished runs; train nothing")
    parser.add_argument("--lrs", default="1e-3,3e-3", help="learning rates of the grid")
    parser.add_argument("--schedules", default="constant,cosine", help="schedules of the grid")
    parser.add_argument("--weight-decays", default="0,1e-2", help="weight decays of the grid")
    parser.add_argument("--warmup-epochs", type=float, default=COSINE_WARMUP,
                        help="warm-up epochs of the cosine points (constant points: none)")
    parser.add_argument("--grid-seeds", default="0", help="seeds of the grid runs")
    parser.add_argument("--seeds", type=int, default=3, help="stage 2: seeds 0..N-1")
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated subset of {', '.join(DATASETS)}")
    parser.add_argument("--epochs", type=int, default=None,
                        help="the epoch ceiling (default: the edge preset's)")
    parser.add_argument("--shared", type=Path, default=SHARED,
                        help=f"the shared data folder (default {SHARED})")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="runs and written data (default benchmarks/runs/presets)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where presets.md / presets.json go (default benchmarks/results)")
    parser.add_argument("--verbose", type=int, default=0, help="Keras verbosity of each run")
    # A quick end-to-end check: mnist-features only, 300 images, 2 epochs, its own folders.
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        if args.datasets == ",".join(DATASETS):
            args.datasets = "mnist-features"
        args.epochs = args.epochs or SMOKE_EPOCHS
        args.work_dir = args.work_dir or HERE / "runs" / "presets-smoke"
        args.out = args.out or Path(args.work_dir) / "results"
    args.work_dir = Path(args.work_dir or HERE / "runs" / "presets")
    args.out = Path(args.out or HERE / "results")
    args.datasets = _words(args.datasets)
    unknown = [d for d in args.datasets if d not in DATASETS]
    if unknown or not args.datasets:
        parser.error(f"--datasets: expected some of {', '.join(DATASETS)}; got {args.datasets}")
    args.points = grid_points(_floats(args.lrs), _words(args.schedules),
                              _floats(args.weight_decays), args.warmup_epochs)
    args.grid_seeds = [int(s) for s in _words(args.grid_seeds)]
    if args.seeds < 1 or not args.grid_seeds:
        parser.error("--seeds and --grid-seeds need at least one seed")
    return args


def git_head():
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=30)
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    started = time.perf_counter()
    from discomkd_keras.comparison import describe_machine
    from discomkd_keras.run_directory import write_atomic, write_json

    bench = Bench(args)
    train_grid = args.stage in ("grid", "all") and not args.report_only
    train_compare = args.stage in ("compare", "all") and not args.report_only
    grid_records = []
    for name in args.datasets:
        for point in args.points:
            grid_records += bench.run_set(name, point, args.grid_seeds, ["discomkd"],
                                          train_grid)[0]
    chosen, _, _ = choose_point(grid_table(grid_records, args.datasets))
    compare_records, seeds = [], list(range(args.seeds))
    if chosen is None:
        bench.notes.append("No grid point has finished runs on every data set: no choice, "
                           "so no comparison.")
        if train_compare:
            print("Error: no grid point has finished on every data set; run --stage grid first.",
                  file=sys.stderr)
            return 2
    else:
        point = next(p for p in args.points if point_slug(p) == chosen)
        print(f"Chosen: {point_words(point)}", flush=True)
        for name in args.datasets:
            records, options = bench.run_set(name, point, seeds, ["discomkd", "unimodal"],
                                             train_compare)
            compare_records += records
            if options is not None:
                bench.options[name] = options
    if args.report_only:
        bench.notes.insert(0, "Rebuilt with --report-only from the finished runs; nothing "
                           "was trained by that invocation.")
    meta = {"command": "python benchmarks/presets.py" + "".join(f" {shlex.quote(a)}"
                                                                for a in argv),
            "date": datetime.date.today().isoformat(), "git": git_head(),
            "machine": describe_machine(), "wall_seconds": time.perf_counter() - started,
            "datasets": args.datasets, "data": bench.specs, "grid_seeds": args.grid_seeds,
            "seeds": seeds, "points": args.points, "options": bench.options,
            "notes": bench.notes}
    markdown, report = build_report(grid_records, compare_records, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "presets.md", markdown)
    write_json(args.out / "presets.json", report)
    print(markdown)
    print(f"\nWrote {args.out / 'presets.md'} and {args.out / 'presets.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
