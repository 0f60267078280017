"""Plan and run a comparison: every method x every seed as ordinary run directories
(a finished run with the same settings is reused, so an interrupted comparison
resumes), one record per run, and `compare`, the command's one call."""

import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from discomkd_keras.comparison.export_best import export_best
from discomkd_keras.comparison.report import duration, write_report
from discomkd_keras.comparison.statistics import JOINT
from discomkd_keras.methods import (COMPARE_LABELS, COMPARE_RUNS, DEFAULT_COMPARISON,
                                    STUDENT_METHODS, method_of)


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
    run_options = dict(options, seed=seed)
    if method_of(change["method"]).own_architecture:
        run_options.pop("branch", None)
    layers = ([discomkd_options or {}] if change.get("method") == "discomkd" else []) + [change]
    for layer in layers:
        for key, value in layer.items():
            run_options[key] = ({**run_options.get(key, {}), **value} if isinstance(value, dict)
                                else value)
    return run_options


def plan_runs(seeds, methods):
    """[(seed, label, change)] of a comparison, in training order (teachers before students)."""
    unknown = [m for m in methods if m not in COMPARE_LABELS]
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; expected some of {list(COMPARE_LABELS)}.")
    if any(m in STUDENT_METHODS for m in methods) and "teacher" not in methods:
        raise ValueError(f"{', '.join(STUDENT_METHODS)} need the teacher method in the same "
                         "comparison.")
    return [(seed, label, change) for seed in seeds for label, change in COMPARE_RUNS
            if label in methods]


def run_comparison(data_spec, options, seeds, work_dir, methods=COMPARE_LABELS, log=print,
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
    from discomkd_keras.recorder import RunInterrupted
    from discomkd_keras.training import train_run

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
                log(f"Estimated time: {bound} {duration(estimate * len(todo))} for {len(todo)} "
                    f"run(s), {duration(estimate)} each (from the probe of {first[1]}; the "
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
            remaining = f", remaining ~{duration(per_run * left)}" if per_run else ""
            log(f"[run {i + 1}/{len(plan)}] seed {seed} {label}: elapsed "
                f"{duration(started - started_all)}{remaining}")
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
    from discomkd_keras.model_cost import count_macs
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
        if record["method"] in seen or record["method"] in JOINT:
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


def compare(spec, options, encoder_items=(), methods=DEFAULT_COMPARISON, seeds=5, out_dir=None,
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
