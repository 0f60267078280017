"""Does DisCoM-KD beat training alone on this data? Several methods x several seeds,
their paired differences, a verdict per modality, and the best classifier exported.

`discomkd-keras compare` (cli.py) and `benchmarks/compare_methods.py` are command
lines over `run_comparison`, `write_report` and `export_best`. Every run is an
ordinary run directory (train_run), so a run can be inspected, evaluated or
exported like any other; a finished run is reused when the comparison is started
again with the same settings, so an interrupted comparison resumes where it
stopped. Model selection uses the validation split only: each run keeps every
modality's classifier at its best validation epoch, and `export_best` picks the
method by mean validation F1; test figures are reported, never used to choose.
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
    from discomkd_keras.config import branch_of

    try:
        old = json.loads((run_dir / "config.json").read_text())
        json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        return False
    old["branch"] = branch_of(old)  # runs from before --branch: the paper's separate encoders
    ignore = ("versions",)
    return {k: v for k, v in old.items() if k not in ignore} == \
        {k: v for k, v in config.items() if k not in ignore}


def method_options(options, seed, change, discomkd_options=None):
    """One run's training options: the shared `options`, then (DisCoM-KD's runs only)
    the variant under test, then the method's own `change`. A dict value (loss weights)
    is merged key by key, so an ablation's zero joins the shared and the variant's weights.
    The methods with architectures of their own (single, teacher) take no --branch."""
    from discomkd_keras.config import OWN_ARCHITECTURE_METHODS

    run_options = dict(options, seed=seed)
    if change.get("method") in OWN_ARCHITECTURE_METHODS:
        run_options.pop("branch", None)
    layers = ([discomkd_options or {}] if change.get("method") == "discomkd" else []) + [change]
    for layer in layers:
        for key, value in layer.items():
            run_options[key] = ({**run_options.get(key, {}), **value} if isinstance(value, dict)
                                else value)
    return run_options


def plan_runs(seeds, methods):
    """[(seed, label, change)] of a comparison, in training order (teachers before students)."""
    unknown = [m for m in methods if m not in METHOD_LABELS]
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; expected some of {list(METHOD_LABELS)}.")
    if any(m in STUDENT_METHODS for m in methods) and "teacher" not in methods:
        raise ValueError(f"{', '.join(STUDENT_METHODS)} need the teacher method in the same "
                         "comparison.")
    return [(seed, label, change) for seed in seeds for label, change in METHOD_RUNS
            if label in methods]


def _duration(seconds):
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def run_comparison(data_spec, options, seeds, work_dir, methods=METHOD_LABELS, log=print,
                   verbose=0, discomkd_options=None, data=None, probe=False, int8_sizes=False):
    """Train every method for every seed; return the list of per-run records.

    data_spec: as for `load_data` (the same data for every seed: seeds vary
        the initialisation, the batch order and the augmentation).
    options: training options shared by all runs (resolve_config's keys).
    discomkd_options: more options for DisCoM-KD's runs only (a variant under test).
    probe: before training, print the plan of the first run to train (plan.py) and
        estimate the whole comparison from its probe (True: 5 steps, or a step count).
    int8_sizes: record the int8 TFLite size of each method's classifiers (seed of
        its first run; needs TensorFlow, else None).
    The students of seed s learn from the teacher of seed s.
    """
    from discomkd_keras.config import resolve_config
    from discomkd_keras.data import load_data
    from discomkd_keras.run_directory import RunError, prepare_run_dir
    from discomkd_keras.training import RunInterrupted, train_run

    plan = plan_runs(seeds, methods)
    data = data if data is not None else load_data(data_spec)
    work_dir = Path(work_dir)

    def config_of(seed, label, change):
        run_options = method_options(options, seed, change, discomkd_options)
        if change.get("method") in STUDENT_METHODS:
            run_options["teacher_run"] = str(work_dir / f"seed{seed}" / "teacher")
        return resolve_config(data_spec, data, run_options)

    def done(seed, label, change):
        try:
            return _finished(work_dir / f"seed{seed}" / _slug(label), config_of(seed, label, change))
        except RunError:  # a student whose teacher has not trained yet
            return False

    todo = [i for i, run in enumerate(plan) if not done(*run)]  # plan positions to train
    log(f"Plan: {len(methods)} method(s) x {len(list(seeds))} seed(s) = {len(plan)} runs "
        f"({', '.join(methods)}) in {work_dir}; {len(plan) - len(todo)} finished before, reused.")
    estimate = None
    if todo and probe:
        from discomkd_keras.plan import make_plan, plan_lines

        first = next((plan[i] for i in todo if plan[i][2].get("method") not in STUDENT_METHODS),
                     None)
        if first is not None:
            config = config_of(*first)
            probe_plan = make_plan(config, data, probe_steps=5 if probe is True else int(probe))
            log(f"First run to train: seed {first[0]} {first[1]}.")
            for line in plan_lines(probe_plan):
                log(line)
            estimate = probe_plan.get("total_seconds")
            if estimate:
                bound = "at most" if probe_plan["patience"] else "about"
                log(f"Estimated time: {bound} {_duration(estimate * len(todo))} for {len(todo)} "
                    f"run(s), {_duration(estimate)} each (from the probe of {first[1]}; the "
                    "other methods' networks cost about as much or less).")
    started_all = time.perf_counter()
    trained_seconds, trained = 0.0, 0
    records = []
    for i, (seed, label, change) in enumerate(plan):
        run_dir = work_dir / f"seed{seed}" / _slug(label)
        started = time.perf_counter()
        if i not in todo:
            results = json.loads((run_dir / "results.json").read_text())
            how = "reused"
        else:
            left = sum(1 for j in todo if j >= i)
            per_run = trained_seconds / trained if trained else estimate
            remaining = f", remaining ~{_duration(per_run * left)}" if per_run else ""
            log(f"[run {i + 1}/{len(plan)}] seed {seed} {label}: elapsed "
                f"{_duration(started - started_all)}{remaining}")
            config = config_of(seed, label, change)  # a student's teacher has trained by now
            prepare_run_dir(run_dir, overwrite=True)
            try:
                results = train_run(config, run_dir, data=data, verbose=verbose, log=log)
            except RunInterrupted:
                # The comparison trains an unfinished run anew (prepare_run_dir above empties
                # its folder); only a finished run is reused.
                finished = len(plan) - len(todo) + trained
                raise RunInterrupted(
                    f"Interrupted: the comparison has {finished} of {len(plan)} runs finished "
                    f"({run_dir} checkpointed). Run the same compare command again to continue: "
                    "finished runs are reused, but this run restarts from scratch. To keep its "
                    f"checkpointed epochs, first finish it with: discomkd-keras train --resume "
                    f"{run_dir}") from None
            trained_seconds += time.perf_counter() - started
            trained += 1
            how = f"{time.perf_counter() - started:.0f} s"
        record = run_record(run_dir, work_dir, label, seed, results)
        records.append(record)
        scores = ", ".join(f"{n} F1 {r['test_weighted_f1']:.3f}" for n, r in record["results"].items())
        log(f"[{i + 1}/{len(plan)}] seed {seed} {label}: {scores} "
            f"({record['seconds_per_epoch']:.1f} s/epoch; {how})")
    if int8_sizes:
        add_int8_sizes(records, work_dir, data)
    return records


def run_record(run_dir, work_dir, label, seed, results):
    """What a report needs of one finished run; test_macro_f1 is None where results.json
    predates it. Where results.json holds a classifier's confusion matrix, its per-class
    test F1 (index = class) is results[m]["test_per_class_f1"] and the run's class names
    record["class_names"], so the report's per-class section needs the raw record only."""
    from discomkd_keras.export.benchmark import count_macs
    from discomkd_keras.run_directory import load_best, read_history

    history = read_history(run_dir / "history.csv")
    record = {
        "method": label, "seed": seed, "run_dir": str(Path(run_dir).relative_to(work_dir)),
        "results": {name: dict({k: r[k] for k in ("test_weighted_f1", "test_accuracy",
                                                  "parameters", "best_epoch")},
                               valid_weighted_f1=r.get("valid_weighted_f1"),
                               test_macro_f1=r.get("test_macro_f1"),
                               macs=count_macs(load_best(run_dir, name)[0]))
                    for name, r in results.items()},
        "epochs": len(history),
        "seconds_per_epoch": _median_after_first([r["seconds"] for r in history]),
        "samples_per_s": _median_after_first([r["samples_per_s"] for r in history]),
        "train_seconds": float(sum(r["seconds"] for r in history)),
    }
    per_class = per_class_f1_of(results)
    for name, f1 in per_class.items():
        record["results"][name]["test_per_class_f1"] = f1
    if per_class:
        record["class_names"] = _class_names(run_dir, len(next(iter(per_class.values()))))
    return record


def per_class_f1_of(results):
    """{classifier: per-class test F1 list} from a run's results.json (its confusion
    matrices); classifiers without a confusion matrix are left out."""
    from discomkd_keras.evaluation import per_class_from_confusion

    return {name: per_class_from_confusion(r["confusion_matrix"])["f1"]
            for name, r in results.items() if r.get("confusion_matrix") is not None}


def _class_names(run_dir, k):
    """The run's class names (its config.json), else "0" .. "k-1"."""
    try:
        names = json.loads((Path(run_dir) / "config.json").read_text()).get("class_names")
    except (OSError, ValueError, AttributeError):
        names = None
    return [str(n) for n in names] if names and len(names) == k else [str(i) for i in range(k)]


def add_int8_sizes(records, work_dir, data, representative_rows=100):
    """Each method's int8 TFLite size per modality (its first seed's classifiers), in
    records[...]["results"][m]["int8_bytes"]; None where TensorFlow is missing."""
    import keras

    from discomkd_keras.run_directory import write_json

    seen = set()
    for record in records:
        if record["method"] in seen or record["method"] == "teacher":
            continue
        seen.add(record["method"])
        run_dir = Path(work_dir) / record["run_dir"]
        cached = run_dir / "int8_bytes.json"  # a resumed comparison does not convert again
        sizes = json.loads(cached.read_text()) if cached.exists() else {}
        for m, result in record["results"].items():
            result["int8_bytes"] = sizes.get(m)
            if result["int8_bytes"] is not None or keras.backend.backend() != "tensorflow":
                continue
            from discomkd_keras.export.tflite_export import (convert, load_best_classifier,
                                                             probability_model)
            classifier, _ = load_best_classifier(run_dir, m)
            x, _ = data.split(m, "train")
            representative = x[np.arange(min(representative_rows, len(x)))]
            sizes[m] = result["int8_bytes"] = len(convert(probability_model(classifier, m), "int8",
                                                          representative))
        write_json(cached, sizes)


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


PATH_KEYS = ("directory", "fsdd_dir", "mnist_path")


def make_raw(dataset, data_spec, options, seeds, records, command, out_dir=None, work_dir=None,
             targets=False):
    """The report's raw record. With `out_dir`, paths (the data's, the runs') are written
    relative to it, so the report names no folder of the machine that wrote it."""
    data_spec = dict(data_spec)
    if out_dir is not None:
        for key in PATH_KEYS:
            if data_spec.get(key):
                data_spec[key] = os.path.relpath(data_spec[key], out_dir)
        if work_dir is not None:
            records = [dict(r, run_dir=os.path.relpath(Path(work_dir) / r["run_dir"], out_dir))
                       for r in records]
    return {"dataset": dataset, "date": datetime.date.today().isoformat(), "command": command,
            "data": data_spec, "options": options, "seeds": list(seeds),
            "machine": describe_machine(), "runs": records, "targets": bool(targets)}


# --- the report -------------------------------------------------------------------
def _by_method(raw):
    grouped = {}
    for run in raw["runs"]:
        grouped.setdefault(run["method"], []).append(run)
    return {label: grouped[label] for label in METHOD_LABELS if label in grouped}


def _stat(values, scale=1.0):
    values = np.asarray(values, dtype=float) * scale
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _stat_or_none(values, scale=1.0):
    """_stat, or None where a value is missing (a record from before that figure)."""
    return None if any(v is None for v in values) else _stat(values, scale)


def _fmt(mean_std, digits=1):
    mean, std = mean_std
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _fmt_or_dash(mean_std, digits=1):
    return "-" if mean_std is None else _fmt(mean_std, digits)


BASELINE_WORDS = {"unimodal": "its unimodal twin",
                  "single": "the single-encoder baseline"}


def verdict_word(difference):
    """"helps" or "hurts" where the 95% interval of the paired per-seed difference excludes 0,
    "no evidence" where it includes 0, "one seed" where there is no interval."""
    if difference["n"] < 2:
        return "one seed"
    return "helps" if difference["low"] > 0 else "hurts" if difference["high"] < 0 else "no evidence"


def verdict(modality, difference, baseline):
    """One line in words: does DisCoM-KD help `modality` against `baseline`?"""
    against = BASELINE_WORDS.get(baseline, baseline)
    span = f"{difference['mean']:+.1f}"
    word = verdict_word(difference)
    if word == "one seed":
        return (f"{modality}: one seed, so no interval and no verdict ({span} F1 points against "
                f"{against}); run 3 or more seeds.")
    span += f" [{difference['low']:+.1f}, {difference['high']:+.1f}]"
    if word == "no evidence":
        return (f"{modality}: no evidence either way (the interval includes 0): {span} F1 points "
                f"against {against}.")
    return f"DisCoM-KD {word} {modality}: {span} F1 points against {against}."


def choose_method(summary, modality):
    """The method chosen for `modality`'s deployed classifier, by `export_best` and by the
    report's per-class section: the best mean validation weighted F1 over the seeds (to 1e-6
    points, so float noise ties), ties to fewer deployed parameters, then fewer MACs; never
    a test figure. Returns {"method": the chosen label, "ranking": every deployable method,
    best first, "tied": the methods after the first with the same validation F1}."""
    candidates = {label: s for label, s in summary["methods"].items() if label != "teacher"}

    def rank(label):
        s = candidates[label]
        return (-round(s["valid_f1"][modality][0], 6), s["parameters"][modality],
                s["macs"].get(modality) or 0)

    order = sorted(candidates, key=rank)
    tied = [label for label in order[1:] if rank(label)[0] == rank(order[0])[0]]
    return {"method": order[0], "ranking": order, "tied": tied}


def chosen_run(raw, method, modality):
    """Of `method`'s runs, the one with the best validation F1 for `modality` (the first on
    ties): the run `export_best` exports."""
    runs = [r for r in raw["runs"] if r["method"] == method]
    return max(runs, key=lambda r: r["results"][modality].get("valid_weighted_f1") or 0.0)


def chosen_per_class_f1(raw, summary):
    """{modality: the chosen classifier's per-class test F1} for the report: method
    (choose_method), seed and run_dir of its chosen run (chosen_run), valid_f1 (that run's,
    in points), class_names and f1 (in points, index = class). Modalities whose chosen run
    has no per-class F1 (records from before it) are left out."""
    out = {}
    for m in summary["modalities"]:
        method = choose_method(summary, m)["method"]
        run = chosen_run(raw, method, m)
        f1 = run["results"][m].get("test_per_class_f1")
        if f1 is None:
            continue
        names = run.get("class_names")
        names = names if names and len(names) == len(f1) else [str(i) for i in range(len(f1))]
        valid = run["results"][m].get("valid_weighted_f1")
        out[m] = {"method": method, "seed": run["seed"], "run_dir": run.get("run_dir"),
                  "valid_f1": None if valid is None else 100 * valid,
                  "class_names": list(names), "f1": [100 * v for v in f1]}
    return out


def summarise(raw):
    """Everything the report shows, computed from the raw runs (F1 and accuracy in points).
    macro_f1[m] is None unless every run of the method has test_macro_f1 (runs recorded
    before macro F1 have none). per_class_f1: chosen_per_class_f1, present only where some
    chosen run has per-class F1."""
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
            "macro_f1": {n: _stat_or_none([r["results"][n].get("test_macro_f1") for r in group],
                                          100) for n in names},
            "f1_per_seed": {n: [100 * r["results"][n]["test_weighted_f1"] for r in group]
                            for n in names},
            "parameters": {n: group[0]["results"][n]["parameters"] for n in names},
            "macs": {n: group[0]["results"][n].get("macs") for n in names},
            "valid_f1": {n: _stat([r["results"][n].get("valid_weighted_f1") or 0.0
                                   for r in group], 100) for n in names},
            "int8_bytes": {n: group[0]["results"][n].get("int8_bytes") for n in names},
            "seconds_per_epoch": float(np.median([r["seconds_per_epoch"] for r in group])),
            "samples_per_s": float(np.median([r["samples_per_s"] for r in group])),
            "train_seconds": float(np.mean([r.get("train_seconds", 0.0) for r in group])),
            "epochs": group[0]["epochs"],
        }
    methods = summary["methods"]
    if "discomkd" in methods:
        per_seed = lambda label, m: {r["seed"]: 100 * r["results"][m]["test_weighted_f1"]  # noqa: E731
                                     for r in runs[label]}
        summary["differences"] = {}
        for base in methods:
            if base in ("discomkd", "teacher"):
                continue
            summary["differences"][base] = {}
            for m in modalities:
                ours, theirs = per_seed("discomkd", m), per_seed(base, m)
                common = sorted(set(ours) & set(theirs))
                summary["differences"][base][m] = paired_difference(
                    [ours[k] for k in common], [theirs[k] for k in common])
        if summary["differences"]:
            primary = next((b for b in ("unimodal", "single") if b in summary["differences"]),
                           next(iter(summary["differences"])))
            summary["verdicts"] = {m: verdict(m, summary["differences"][primary][m], primary)
                                   for m in modalities}
    if "unimodal" in methods and "discomkd" in methods:
        gains = {b: summary["differences"][b] for b in BASELINES_OF_GAIN if b in methods}
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
    per_class = chosen_per_class_f1(raw, summary)
    if per_class:
        summary["per_class_f1"] = per_class
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
        f"{raw['machine'].get('backend')}). Written by `discomkd_keras/comparison.py` from "
        f"`{Path(png_name).stem}.json`; numbers are never edited by hand.",
        "",
        f"**Settings:** encoders {o.get('encoders') or 'default'}, "
        f"{o.get('branch') or 'separate'} branches, D = {o.get('feature_dim')}, "
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
        *(["## Verdict", "", *[f"- {v}" for v in summary["verdicts"].values()], "",
           "The twin is the very network DisCoM-KD deploys for the modality, trained alone; "
           "helps or hurts only where the 95% interval of the paired per-seed difference "
           "excludes 0.", ""] if summary.get("verdicts") else []),
        "## Test weighted F1, accuracy and macro F1 per deployed classifier",
        "",
    ]
    head = "| method | " + " | ".join(f"{m} F1 | {m} acc" for m in modalities) + \
        " | s / epoch | samples / s | deployed params | deployed MACs | test macro F1 |"
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
        macro = " / ".join(_fmt_or_dash((s.get("macro_f1") or {}).get(m)) for m in modalities)
        lines.append(f"| {label} | " + " | ".join(cells) +
                     f" | {s['seconds_per_epoch']:.1f} | {s['samples_per_s']:.0f} | {params} | {macs} "
                     f"| {macro} |")
    if "teacher" in methods:
        t = methods["teacher"]
        lines += ["", f"Multi-modal teacher (all modalities at test time, not deployable on one "
                  f"sensor): F1 {_fmt(t['f1']['teacher'])}, accuracy {_fmt(t['accuracy']['teacher'])}, "
                  f"macro F1 {_fmt_or_dash((t.get('macro_f1') or {}).get('teacher'))}, "
                  f"{t['seconds_per_epoch']:.1f} s / epoch, {t['parameters']['teacher']:,} parameters."]
    lines += [
        "",
        "s / epoch: median training time of one epoch (epochs 2 onwards, validation excluded); one "
        "run trains every modality's classifier at once (for the unimodal twins too: their "
        "branches share nothing). samples / s counts every modality's samples. The students "
        "also need the teacher's training time. Deployed params / MACs: the exported classifier "
        "of each modality (batch 1; the single-encoder baseline has one encoder, DisCoM-KD's "
        "branch two, or one with shared branches). Test macro F1 (per modality, "
        f"{' / '.join(modalities)}): the unweighted mean of each class's F1 over the classes in "
        "the test split, so a class served badly weighs as much as a frequent one; F1 alone is "
        "the weighted F1 (each class by its share of the test samples); - where the runs were "
        "recorded before macro F1.",
    ]
    if summary.get("differences"):
        weak = summary.get("weak")
        lines += ["", "## DisCoM-KD against each baseline", "",
                  "Per-seed paired differences of test weighted F1 (DisCoM-KD minus baseline, "
                  "same seed), mean, std and 95% confidence interval (Student t); DisCoM-KD "
                  "helps or hurts only where the interval excludes 0.", "",
                  "| modality | baseline | baseline F1 | DisCoM-KD F1 | difference | 95% CI | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for m in modalities:
            for base, differences in summary["differences"].items():
                g = differences[m]
                ci = f"[{g['low']:+.1f}, {g['high']:+.1f}]" if g["n"] > 1 else "(one seed)"
                lines.append(f"| {m}{' (weaker)' if m == weak else ''} | {base} | "
                             f"{_fmt(methods[base]['f1'][m])} | {_fmt(methods['discomkd']['f1'][m])} "
                             f"| {g['mean']:+.1f} ± {g['std']:.1f} | {ci} | {verdict_word(g)} |")
    if "gains" in summary and raw.get("targets", True):
        target_word = "met" if summary["gain_target_met"] else "NOT met"
        lines += ["", f"Target (the weaker modality +{TARGET_GAIN_WEAK:g} points or more against "
                  f"the twin and the single-encoder baseline, each interval above 0; the other "
                  f"modalities not worse than -{TARGET_LOSS_STRONG:g} against their twins): "
                  f"**{target_word}**."]
        ratio = summary["cost_ratio"]
        lines += [f"Training cost, DisCoM-KD / unimodal twins (time per epoch): {ratio:.2f}x "
                  f"(target <= {TARGET_COST_RATIO:g}x: **{'met' if ratio <= TARGET_COST_RATIO else 'NOT met'}**)."]
        if "teacher" in methods:
            for label in STUDENT_METHODS:
                if label in methods:
                    both = methods["teacher"]["seconds_per_epoch"] + methods[label]["seconds_per_epoch"]
                    lines.append(f"Teacher + {label} students: {both:.1f} s / epoch, "
                                 f"{both / methods['discomkd']['seconds_per_epoch']:.2f}x DisCoM-KD.")
    lines += cost_lines(summary)
    lines += per_class_lines(summary)
    if raw.get("exports"):
        lines += ["", "## Exported: the best classifier of each modality", "",
                  "Chosen by mean validation weighted F1 over the seeds (ties to the cheaper "
                  "classifier), never by a test figure; the run of that method with the best "
                  "validation F1 was exported and verified.", ""]
        lines += [f"- {e['modality']}: **{e['method']}**, seed {e['seed']} -> `{e['folder']}` "
                  f"({e['quantization']}; agreement with Keras {100 * e['agreement']:.1f}% on the "
                  f"test split; test F1 {100 * e['test_weighted_f1']:.1f}). Why: {e['why']}."
                  for e in raw["exports"]]
    lines += ["", f"![Test weighted F1 per method]({png_name})", ""]
    return "\n".join(lines)


def per_class_lines(summary):
    """The section "Per-class test F1 of the chosen classifier" (summary["per_class_f1"]):
    one column per modality, one row per class; no lines where the records have no
    per-class F1."""
    chosen = summary.get("per_class_f1")
    if not chosen:
        return []
    modalities = [m for m in summary["modalities"] if m in chosen]
    classes = []
    for m in modalities:
        classes += [c for c in chosen[m]["class_names"] if c not in classes]
    lines = ["", "## Per-class test F1 of the chosen classifier", "",
             "Per modality, the method `--export-best` exports, or would (best mean validation "
             "weighted F1 over the seeds, ties to the cheaper classifier) and, of its runs, the "
             "one with the best validation F1; each class's F1 on the test split, in points, so "
             "a class the weighted F1 hides shows. - where a class is not in that run.", ""]
    head = "| class | " + " | ".join(f"{m}: {chosen[m]['method']}, seed {chosen[m]['seed']}"
                                     for m in modalities) + " |"
    lines += [head, "|" + "---|" * (len(modalities) + 1)]
    for c in classes:
        cells = []
        for m in modalities:
            names = chosen[m]["class_names"]
            cells.append(f"{chosen[m]['f1'][names.index(c)]:.1f}" if c in names else "-")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def cost_lines(summary):
    """The cost table: what each deployed classifier costs on a device, and to train."""
    modalities = summary["modalities"]
    lines = ["", "## Cost", "",
             "| method | deployed params | deployed MACs | int8 TFLite | training per run | s / epoch |",
             "|---|---|---|---|---|---|"]
    for label, s in summary["methods"].items():
        if label == "teacher":
            continue
        sizes = s.get("int8_bytes") or {}
        int8 = " / ".join(f"{sizes[m] / 1024:.0f} KiB" if sizes.get(m) else "n/a"
                          for m in modalities)
        macs = " / ".join(f"{s['macs'][m] / 1e6:.2f} M" if s["macs"].get(m) is not None else "?"
                          for m in modalities)
        params = " / ".join(f"{s['parameters'][m]:,}" for m in modalities)
        lines.append(f"| {label} | {params} | {macs} | {int8} | "
                     f"{_duration(s.get('train_seconds', 0.0))} | {s['seconds_per_epoch']:.1f} |")
    lines += ["", f"Per modality ({' / '.join(modalities)}); MACs of one input (batch 1); int8 "
              "size of the first seed's classifier (n/a without TensorFlow); training time is the "
              "mean over seeds of one run's training (every modality at once)."]
    return lines


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


def write_report(raw, out_dir, stem=None):
    """Write OUT/<stem>.json (raw), .md (tables) and .png (bars), stem defaulting to the
    data set's name; return the paths."""
    from discomkd_keras.run_directory import write_atomic

    if not raw.get("runs"):
        raise ValueError("No runs to report.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or raw["dataset"]
    summary = summarise(raw)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.md", out_dir / f"{stem}.png"]
    write_atomic(paths[0], json.dumps(raw, indent=2))
    write_atomic(paths[1], format_markdown(raw, summary, paths[2].name))
    plot_comparison(raw, summary, paths[2])
    return paths


# --- one command: compare, report, export the best -------------------------------
DEFAULT_METHODS = ("discomkd", "unimodal", "single")
# DKD's warm-up covers 20 of its paper's 240 epochs: the same fraction of every budget here.
DKD_WARMUP_FRACTION = 20 / 240


def shared_options(options, epochs):
    """The options every method of a comparison shares, DKD's warm-up scaled to `epochs`."""
    return dict(options, dkd_warmup_epochs=round(DKD_WARMUP_FRACTION * epochs, 3))


def comparison_options(source, options, data, encoder_items=()):
    """The training options every method of a `compare` shares: the preset's (options["preset"],
    else the data source's) where `options` leave a value unset (None), its encoders and
    augmentation where `encoder_items` and options["augment"] name none, DKD's warm-up
    scaled to the epochs."""
    from discomkd_keras.config import preset_choices, with_preset

    options = preset_choices(with_preset(options, source), data, encoder_items)
    return shared_options(options, options["epochs"])


def compare(spec, options, encoder_items=(), methods=DEFAULT_METHODS, seeds=5, out_dir=None,
            runs_dir=None, export=False, command="", log=print, verbose=0, data=None):
    """`discomkd-keras compare`: train `methods` x `seeds` on the data of `spec` with the
    shared training `options` (None: the data source's preset), write OUT/report.{md,json,png}
    and, with `export`, each modality's best classifier to OUT/export/<modality>/.
    Returns (raw record, report paths)."""
    from discomkd_keras.config import ConfigError, merged_options, with_preset
    from discomkd_keras.data import load_data

    if int(seeds) < 1:
        raise ConfigError(f"--seeds must be >= 1; got {seeds}.")
    try:
        plan_runs(range(seeds), methods)  # unknown methods fail before the data loads
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if export:  # fail now, not after hours of training (JAX, or no TensorFlow installed)
        from discomkd_keras.export.tflite_export import ExportError, require_converter
        try:
            require_converter()
        except ExportError as err:
            raise ExportError(f"--export-best: {err} Or compare without it and export the "
                              "chosen run later.") from None
    options = with_preset(options, spec["source"])
    merged_options(options)
    if data is None:  # in-memory arrays (the Python API) come loaded
        log(f"Loading {spec['source']} data ...")
        data = load_data(spec)
    if data.description:
        log(data.description)
    options = comparison_options(spec["source"], options, data, encoder_items)
    out_dir = Path(out_dir or Path("runs") / f"compare-{data.name}")
    runs_dir = Path(runs_dir or out_dir / "runs")
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"Settings: {', '.join(f'{k} {v}' for k, v in options.items() if v not in ({}, None))}")
    records = run_comparison(spec, options, range(seeds), runs_dir, methods=list(methods), log=log,
                             verbose=verbose, data=data, probe=True, int8_sizes=True)
    raw = make_raw(data.name, spec, options, range(seeds), records, command, out_dir=out_dir,
                   work_dir=runs_dir, targets=False)
    if export:
        raw["exports"] = export_best(raw, out_dir, data, log=log)
    return raw, write_report(raw, out_dir, "report")


def export_best(raw, report_dir, data, log=print):
    """Export each modality's best classifier: the method with the best mean validation
    weighted F1 (ties to fewer deployed parameters, then MACs: choose_method), and of its
    runs the one with the best validation F1 (chosen_run); int8 with the usual
    verification, float16 if int8 fails it. Returns one record per modality for the report."""
    from discomkd_keras.export import ExportError, export_modality

    report_dir = Path(report_dir)
    summary = summarise(raw)
    exports = []
    for m in summary["modalities"]:
        candidates = {label: s for label, s in summary["methods"].items() if label != "teacher"}
        chosen = choose_method(summary, m)  # the report's per-class section shows the same
        best, order, tied = chosen["method"], chosen["ranking"], chosen["tied"]
        runs = [r for r in raw["runs"] if r["method"] == best]
        why = (f"the best mean validation F1 over {len(runs)} seed(s), "
               f"{candidates[best]['valid_f1'][m][0]:.1f}")
        if tied:
            why += f", tied with {', '.join(tied)}, and the cheaper"
        elif len(order) > 1:
            why += f" (next: {order[1]}, {candidates[order[1]]['valid_f1'][m][0]:.1f})"
        run = chosen_run(raw, best, m)
        run_dir = report_dir / run["run_dir"]
        for quantization, fallback in (("int8", "float16"), ("float16", "float32"),
                                       ("float32", None)):
            try:
                card = export_modality(run_dir, m, quantization=quantization,
                                       out_dir=report_dir / "export", overwrite=True, data=data,
                                       log=log)
                break
            except ExportError as err:
                if fallback is None or "verification failed" not in str(err):
                    raise
                log(f"[{m}] {quantization} failed its check ({err}); exporting {fallback} instead.")
                why += f"; {quantization} failed its agreement check, so {fallback}"
        exports.append({"modality": m, "method": best, "seed": run["seed"], "seeds": len(runs),
                        "mean_valid_f1": candidates[best]["valid_f1"][m][0] / 100, "why": why,
                        "folder": f"export/{m}", "quantization": quantization,
                        "agreement": card["verification"]["agreement"],
                        "test_weighted_f1": run["results"][m]["test_weighted_f1"]})
        log(f"Exported {m}: {best}, seed {run['seed']} -> {report_dir / 'export' / m}; {why}")
    return exports
