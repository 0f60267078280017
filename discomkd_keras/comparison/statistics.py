"""The statistics of a comparison: per-method means over seeds, paired per-seed
differences with 95% Student t intervals, the verdict in words, and the choice of
each modality's classifier (validation F1 only, never a test figure)."""

import numpy as np

from discomkd_keras.methods import BASELINES, COMPARE_LABELS, METHODS

# Methods whose one classifier takes every modality (the teacher): never deployed or chosen.
JOINT = tuple(m.name for m in METHODS.values() if m.joint)

# Two-sided 95% Student t quantiles, by degrees of freedom (1..30).
T_95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


# The verdict: the weaker modality's DisCoM-KD classifier beats its twin and the
# single-encoder baseline by this many points, 95% intervals above zero, the others
# lose at most TARGET_LOSS_STRONG against their twins.
TARGET_GAIN_WEAK, TARGET_LOSS_STRONG, TARGET_COST_RATIO = 3.0, 1.0, 1.2
# The baselines DisCoM-KD's gain is measured against, in the order a verdict prefers.
BASELINES_OF_GAIN = tuple(BASELINES)


def paired_difference(a, b):
    """Mean, std and 95% confidence interval of the per-seed differences a - b."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return {"mean": mean, "std": 0.0, "low": float("nan"), "high": float("nan"), "n": len(d)}
    std = float(d.std(ddof=1))
    half = (T_95[len(d) - 2] if len(d) - 1 <= len(T_95) else 1.96) * std / np.sqrt(len(d))
    return {"mean": mean, "std": std, "low": mean - half, "high": mean + half, "n": len(d)}


def _by_method(raw):
    grouped = {}
    for run in raw["runs"]:
        grouped.setdefault(run["method"], []).append(run)
    return {label: grouped[label] for label in COMPARE_LABELS if label in grouped}


def _stat(values, scale=1.0):
    values = np.asarray(values, dtype=float) * scale
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _stat_or_none(values, scale=1.0):
    """_stat, or None where a value is missing (a record from before that figure)."""
    return None if any(v is None for v in values) else _stat(values, scale)


def verdict_word(difference):
    """"helps" or "hurts" where the 95% interval of the paired per-seed difference excludes 0,
    "no evidence" where it includes 0, "one seed" where there is no interval."""
    if difference["n"] < 2:
        return "one seed"
    return "helps" if difference["low"] > 0 else "hurts" if difference["high"] < 0 else "no evidence"


def verdict(modality, difference, baseline):
    """One line in words: does DisCoM-KD help `modality` against `baseline`?"""
    against = BASELINES.get(baseline) or baseline
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
    candidates = {label: s for label, s in summary["methods"].items() if label not in JOINT}

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
    deployed = [group for label, group in runs.items() if label not in JOINT]
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
            if base == "discomkd" or base in JOINT:
                continue
            summary["differences"][base] = {}
            for m in modalities:
                ours, theirs = per_seed("discomkd", m), per_seed(base, m)
                common = sorted(set(ours) & set(theirs))
                summary["differences"][base][m] = paired_difference(
                    [ours[k] for k in common], [theirs[k] for k in common])
        if summary["differences"]:
            primary = next((b for b in BASELINES_OF_GAIN if b in summary["differences"]),
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
