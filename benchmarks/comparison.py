"""DisCoM-KD against its baselines and ablations on one data set, several seeds:
the runs, their raw results, and the Markdown + PNG report (benchmark tooling,
not part of the installed package).

`benchmarks/compare_methods.py` is the command line over `run_comparison`
and `write_report`. Every run is an ordinary run directory (train_run), so a
run can be inspected, evaluated or exported like any other; a finished run is
reused when the comparison is restarted with the same settings.
"""

import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

# (label, what the run changes relative to the shared options), in report order.
METHOD_RUNS = (
    ("unimodal", {"method": "unimodal"}),
    ("single", {"method": "single"}),
    ("discomkd", {"method": "discomkd"}),
    ("discomkd -L_adv", {"method": "discomkd", "loss_weights": {"adv": 0.0}}),
    ("discomkd -L_mod", {"method": "discomkd", "loss_weights": {"mod": 0.0}}),
    ("discomkd -L_aux", {"method": "discomkd", "loss_weights": {"aux": 0.0}}),
    ("discomkd -L_perp", {"method": "discomkd", "loss_weights": {"perp": 0.0}}),
    ("teacher", {"method": "teacher"}),
    ("kd", {"method": "kd"}),
    ("kd-mix", {"method": "kd-mix"}),
    ("dkd", {"method": "dkd"}),
    ("mlkd", {"method": "mlkd"}),
)
METHOD_LABELS = tuple(label for label, _ in METHOD_RUNS)
STUDENT_METHODS = ("kd", "kd-mix", "dkd", "mlkd")
# The verdict: the weaker modality's DisCoM-KD classifier beats its twin and the
# single-encoder baseline by this many points, 95% intervals above zero, the others
# lose at most TARGET_LOSS_STRONG against their twins.
TARGET_GAIN_WEAK, TARGET_LOSS_STRONG, TARGET_COST_RATIO = 3.0, 1.0, 1.2
BASELINES_OF_GAIN = ("unimodal", "single")
DEFAULT_AUGMENTATION = "default (images: the released flips and rotations; spectrograms: none)"
# Two-sided 95% Student t quantiles, by degrees of freedom (1..30).
T_95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def paired_difference(a, b):
    """Mean, std and 95% confidence interval of the per-seed differences a - b."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return {"mean": mean, "std": 0.0, "low": float("nan"), "high": float("nan"), "n": len(d)}
    std = float(d.std(ddof=1))
    half = (T_95[len(d) - 2] if len(d) - 1 <= len(T_95) else 1.96) * std / np.sqrt(len(d))
    return {"mean": mean, "std": std, "low": mean - half, "high": mean + half, "n": len(d)}


def _slug(label):
    return label.replace(" -L_", "-no-").replace(" ", "-")


def _median_after_first(values):
    """Median over epochs 2.. (epoch 1 includes tracing and compilation)."""
    values = [v for v in values if v is not None]
    return float(np.median(values[1:] if len(values) > 1 else values))


def _finished(run_dir, config):
    """A finished run of exactly this config (versions aside) is reused."""
    try:
        old = json.loads((run_dir / "config.json").read_text())
        json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        return False
    ignore = ("versions",)
    return {k: v for k, v in old.items() if k not in ignore} == \
        {k: v for k, v in config.items() if k not in ignore}


def method_options(options, seed, change, discomkd_options=None):
    """One run's training options: the shared `options`, then (DisCoM-KD's runs only)
    the variant under test, then the method's own `change`. A dict value (loss weights)
    is merged key by key, so an ablation's zero joins the shared and the variant's weights."""
    run_options = dict(options, seed=seed)
    layers = ([discomkd_options or {}] if change.get("method") == "discomkd" else []) + [change]
    for layer in layers:
        for key, value in layer.items():
            run_options[key] = ({**run_options.get(key, {}), **value} if isinstance(value, dict)
                                else value)
    return run_options


def run_comparison(data_spec, options, seeds, work_dir, methods=METHOD_LABELS, log=print,
                   verbose=0, discomkd_options=None):
    """Train every method for every seed; return the list of per-run records.

    data_spec: as for `load_data` (the same data for every seed: seeds vary
        the initialisation, the batch order and the augmentation).
    options: training options shared by all runs (resolve_config's keys).
    discomkd_options: more options for DisCoM-KD's runs only (a variant under test).
    The students of seed s learn from the teacher of seed s.
    """
    from discomkd_keras.data import load_data
    from discomkd_keras.config import resolve_config
    from discomkd_keras.export.benchmark import count_macs
    from discomkd_keras.run_directory import load_best, prepare_run_dir, read_history
    from discomkd_keras.training import train_run

    unknown = [m for m in methods if m not in METHOD_LABELS]
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; expected some of {list(METHOD_LABELS)}.")
    if any(m in STUDENT_METHODS for m in methods) and "teacher" not in methods:
        raise ValueError(f"{', '.join(STUDENT_METHODS)} need the teacher method in the same "
                         "comparison.")
    data = load_data(data_spec)
    work_dir = Path(work_dir)
    plan = [(seed, label, change) for seed in seeds for label, change in METHOD_RUNS
            if label in methods]
    records = []
    for i, (seed, label, change) in enumerate(plan, 1):
        run_dir = work_dir / f"seed{seed}" / _slug(label)
        run_options = method_options(options, seed, change, discomkd_options)
        if change.get("method") in STUDENT_METHODS:
            run_options["teacher_run"] = str(work_dir / f"seed{seed}" / "teacher")
        config = resolve_config(data_spec, data, run_options)
        started = time.perf_counter()
        if _finished(run_dir, config):
            results = json.loads((run_dir / "results.json").read_text())
            how = "reused"
        else:
            prepare_run_dir(run_dir, overwrite=True)
            results = train_run(config, run_dir, data=data, verbose=verbose)
            how = f"{time.perf_counter() - started:.0f} s"
        history = read_history(run_dir / "history.csv")
        record = {
            "method": label, "seed": seed, "run_dir": str(run_dir.relative_to(work_dir)),
            "results": {name: dict({k: r[k] for k in ("test_weighted_f1", "test_accuracy",
                                                      "parameters", "best_epoch")},
                                   macs=count_macs(load_best(run_dir, name)[0]))
                        for name, r in results.items()},
            "epochs": len(history),
            "seconds_per_epoch": _median_after_first([r["seconds"] for r in history]),
            "samples_per_s": _median_after_first([r["samples_per_s"] for r in history]),
            "train_seconds": float(sum(r["seconds"] for r in history)),
        }
        records.append(record)
        scores = ", ".join(f"{n} F1 {r['test_weighted_f1']:.3f}" for n, r in record["results"].items())
        log(f"[{i}/{len(plan)}] seed {seed} {label}: {scores} "
            f"({record['seconds_per_epoch']:.1f} s/epoch; {how})")
    return records


def describe_machine():
    import keras

    found = {"platform": platform.platform(), "cpus": os.cpu_count(),
             "python": platform.python_version(), "keras": keras.__version__,
             "backend": keras.backend.backend()}
    try:
        import tensorflow as tf
        found["tensorflow"] = tf.__version__
        found["gpus"] = len(tf.config.list_physical_devices("GPU"))
    except ImportError:
        pass
    return found


def make_raw(dataset, data_spec, options, seeds, records, command):
    return {"dataset": dataset, "date": datetime.date.today().isoformat(), "command": command,
            "data": data_spec, "options": options, "seeds": list(seeds),
            "machine": describe_machine(), "runs": records}


# --- the report -------------------------------------------------------------------
def _by_method(raw):
    grouped = {}
    for run in raw["runs"]:
        grouped.setdefault(run["method"], []).append(run)
    return {label: grouped[label] for label in METHOD_LABELS if label in grouped}


def _stat(values, scale=1.0):
    values = np.asarray(values, dtype=float) * scale
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _fmt(mean_std, digits=1):
    mean, std = mean_std
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summarise(raw):
    """Everything the report shows, computed from the raw runs (F1 and accuracy in points)."""
    runs = _by_method(raw)
    deployed = [group for label, group in runs.items() if label != "teacher"]
    if not deployed:
        raise ValueError("No single-modality method among the runs: nothing to compare.")
    modalities = list(deployed[0][0]["results"])
    summary = {"modalities": modalities, "methods": {}}
    for label, group in runs.items():
        names = list(group[0]["results"])
        summary["methods"][label] = {
            "seeds": [r["seed"] for r in group],
            "f1": {n: _stat([r["results"][n]["test_weighted_f1"] for r in group], 100) for n in names},
            "accuracy": {n: _stat([r["results"][n]["test_accuracy"] for r in group], 100)
                         for n in names},
            "f1_per_seed": {n: [100 * r["results"][n]["test_weighted_f1"] for r in group]
                            for n in names},
            "parameters": {n: group[0]["results"][n]["parameters"] for n in names},
            "macs": {n: group[0]["results"][n].get("macs") for n in names},
            "seconds_per_epoch": float(np.median([r["seconds_per_epoch"] for r in group])),
            "samples_per_s": float(np.median([r["samples_per_s"] for r in group])),
            "epochs": group[0]["epochs"],
        }
    methods = summary["methods"]
    if "unimodal" in methods and "discomkd" in methods:
        per_seed = lambda label, m: {r["seed"]: 100 * r["results"][m]["test_weighted_f1"]  # noqa: E731
                                     for r in runs[label]}
        gains = {}
        for base in BASELINES_OF_GAIN:
            if base not in methods:
                continue
            gains[base] = {}
            for m in modalities:
                ours, theirs = per_seed("discomkd", m), per_seed(base, m)
                seeds = sorted(set(ours) & set(theirs))
                gains[base][m] = paired_difference([ours[k] for k in seeds], [theirs[k] for k in seeds])
        weak = min(modalities, key=lambda m: methods["unimodal"]["f1"][m][0])
        tol = 1e-9  # F1 differences carry float noise; the targets are whole points
        summary["gains"] = gains
        summary["weak"] = weak
        summary["gain_target_met"] = all(
            g[weak]["mean"] >= TARGET_GAIN_WEAK - tol and g[weak]["low"] > 0 for g in gains.values()
        ) and all(gains["unimodal"][m]["mean"] >= -TARGET_LOSS_STRONG - tol
                  for m in modalities if m != weak)
        summary["cost_ratio"] = methods["discomkd"]["seconds_per_epoch"] / \
            methods["unimodal"]["seconds_per_epoch"]
    return summary


def format_markdown(raw, summary, png_name):
    o = raw["options"]
    modalities = summary["modalities"]
    methods = summary["methods"]
    seeds = raw["seeds"]
    lines = [
        f"# DisCoM-KD against its baselines: {raw['dataset']}",
        "",
        f"Measured {raw['date']} on {raw['machine'].get('cpus')} CPU core(s) "
        f"({raw['machine'].get('platform')}; Keras {raw['machine'].get('keras')} on "
        f"{raw['machine'].get('backend')}). Written by `benchmarks/comparison.py` from "
        f"`{raw['dataset']}.json`; numbers are never edited by hand.",
        "",
        f"**Settings:** encoders {o.get('encoders') or 'default'}, D = {o.get('feature_dim')}, "
        f"{o.get('epochs')} epochs, batch {o.get('batch_size')} per modality, Adam lr "
        f"{o.get('learning_rate')}, augmentation {o.get('augment') or DEFAULT_AUGMENTATION}, "
        f"GRL lambda {o.get('grl_schedule', 'constant')}, "
        f"DisCoM-KD variant {json.dumps(o.get('discomkd_variant') or {})}, "
        f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); data `{json.dumps(raw['data'])}`.",
        f"Each classifier is the epoch with the best validation weighted F1; figures are on the "
        f"test split, mean ± std over seeds, in points (%).",
        "",
        f"**Command:** `{raw['command']}`",
        "",
        "## Test weighted F1 and accuracy per deployed classifier",
        "",
    ]
    head = "| method | " + " | ".join(f"{m} F1 | {m} acc" for m in modalities) + \
        " | s / epoch | samples / s | deployed params | deployed MACs |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for label, s in methods.items():
        if label == "teacher":
            continue
        cells = []
        for m in modalities:
            cells += [_fmt(s["f1"][m]), _fmt(s["accuracy"][m])]
        params = " / ".join(f"{s['parameters'][m]:,}" for m in modalities)
        macs = " / ".join(f"{s['macs'][m] / 1e6:.2f} M" if s["macs"].get(m) is not None else "?"
                          for m in modalities)
        lines.append(f"| {label} | " + " | ".join(cells) +
                     f" | {s['seconds_per_epoch']:.1f} | {s['samples_per_s']:.0f} | {params} | {macs} |")
    if "teacher" in methods:
        t = methods["teacher"]
        lines += ["", f"Multi-modal teacher (all modalities at test time, not deployable on one "
                  f"sensor): F1 {_fmt(t['f1']['teacher'])}, accuracy {_fmt(t['accuracy']['teacher'])}, "
                  f"{t['seconds_per_epoch']:.1f} s / epoch, {t['parameters']['teacher']:,} parameters."]
    lines += [
        "",
        "s / epoch: median training time of one epoch (epochs 2 onwards, validation excluded); one "
        "run trains every modality's classifier at once (for the unimodal twins too: their "
        "branches share nothing). samples / s counts every modality's samples. The students "
        "also need the teacher's training time. Deployed params / MACs: the exported classifier "
        "of each modality (batch 1; the single-encoder baseline has one encoder, DisCoM-KD's "
        "branch two).",
    ]
    if "gains" in summary:
        weak = summary["weak"]
        lines += ["", "## DisCoM-KD against the twin and the single-encoder baseline", "",
                  "Per-seed paired differences of test weighted F1 (DisCoM-KD minus baseline, "
                  "same seed), mean, std and 95% confidence interval (Student t).", "",
                  "| modality | baseline | baseline F1 | DisCoM-KD F1 | difference | 95% CI |",
                  "|---|---|---|---|---|---|"]
        for m in modalities:
            for base, gains in summary["gains"].items():
                g = gains[m]
                lines.append(f"| {m}{' (weaker)' if m == weak else ''} | {base} | "
                             f"{_fmt(methods[base]['f1'][m])} | {_fmt(methods['discomkd']['f1'][m])} "
                             f"| {g['mean']:+.1f} ± {g['std']:.1f} | [{g['low']:+.1f}, {g['high']:+.1f}] |")
        verdict = "met" if summary["gain_target_met"] else "NOT met"
        lines += ["", f"Target (the weaker modality +{TARGET_GAIN_WEAK:g} points or more against "
                  f"every baseline above, each interval above 0; the other modalities not worse "
                  f"than -{TARGET_LOSS_STRONG:g} against their twins): **{verdict}**."]
        ratio = summary["cost_ratio"]
        lines += [f"Training cost, DisCoM-KD / unimodal twins (time per epoch): {ratio:.2f}x "
                  f"(target <= {TARGET_COST_RATIO:g}x: **{'met' if ratio <= TARGET_COST_RATIO else 'NOT met'}**)."]
        if "teacher" in methods:
            for label in STUDENT_METHODS:
                if label in methods:
                    both = methods["teacher"]["seconds_per_epoch"] + methods[label]["seconds_per_epoch"]
                    lines.append(f"Teacher + {label} students: {both:.1f} s / epoch, "
                                 f"{both / methods['discomkd']['seconds_per_epoch']:.2f}x DisCoM-KD.")
    lines += ["", f"![Test weighted F1 per method]({png_name})", ""]
    return "\n".join(lines)


def plot_comparison(raw, summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modalities = summary["modalities"]
    labels = [m for m in summary["methods"] if m != "teacher"]
    fig, axes = plt.subplots(1, len(modalities), figsize=(4.2 * len(modalities) + 1, 4.2),
                             squeeze=False, sharey=True)
    for ax, m in zip(axes[0], modalities):
        means = [summary["methods"][k]["f1"][m][0] for k in labels]
        stds = [summary["methods"][k]["f1"][m][1] for k in labels]
        colours = ["tab:grey" if k == "unimodal" else "tab:red" if k == "discomkd" else
                   "tab:orange" if k.startswith("discomkd") else "tab:blue" for k in labels]
        ax.bar(range(len(labels)), means, yerr=stds, color=colours, alpha=0.8, capsize=3)
        for i, k in enumerate(labels):
            seeds = summary["methods"][k]["f1_per_seed"][m]
            ax.scatter([i] * len(seeds), seeds, s=9, color="black", zorder=3)
        if "unimodal" in summary["methods"]:
            ax.axhline(summary["methods"]["unimodal"]["f1"][m][0], color="tab:grey", ls="--", lw=1)
        ax.set_xticks(range(len(labels)), labels, rotation=50, ha="right", fontsize=8)
        ax.set_title(f"{m}")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("test weighted F1 (%)")
    fig.suptitle(f"{raw['dataset']}: mean ± std over {len(raw['seeds'])} seeds (dots: seeds); "
                 "dashed: unimodal twin", fontsize=10)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    plt.close(fig)


def write_report(raw, out_dir):
    """Write OUT/<dataset>.json (raw), .md (tables) and .png (bars); return the paths."""
    from discomkd_keras.run_directory import write_atomic

    if not raw.get("runs"):
        raise ValueError("No runs to report.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = raw["dataset"]
    summary = summarise(raw)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.md", out_dir / f"{stem}.png"]
    write_atomic(paths[0], json.dumps(raw, indent=2))
    write_atomic(paths[1], format_markdown(raw, summary, paths[2].name))
    plot_comparison(raw, summary, paths[2])
    return paths
