"""Separate encoders or one shared backbone per branch: the choice, made on validation.

    python benchmarks/compare_methods.py --data synthetic-rgbd --methods unimodal,discomkd \\
        --branch separate --tag branch-separate      # and --branch shared --tag branch-shared,
                                                     # and the same for --data av-mnist-hard
    python benchmarks/branch_choice.py

Reads the four comparisons' records (benchmarks/results/<data>-branch-<form>.json:
DisCoM-KD and its unimodal twins, the same 5 seeds, each form) and writes
benchmarks/results/branch-choice.md with, per data set and modality, the per-seed
paired differences (95% Student t intervals) of
  - DisCoM-KD shared minus DisCoM-KD separate, on validation (the choice) and test;
  - DisCoM-KD minus its unimodal twin of the same form, on test (what the cross-modal
    terms add when they act on the deployed features themselves, shared, or on a second
    encoder, separate), the weaker modality first.

The rule (issue 17): shared becomes the CPU presets' default if, on both data sets and
for every modality, the mean paired validation difference shared - separate is above
-1 point. The test split only reports.
"""

from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
DATASETS = ("synthetic-rgbd", "av-mnist-hard")
MARGIN = 1.0  # points of weighted F1


def records_of(results_dir, dataset, form):
    import json

    path = Path(results_dir) / f"{dataset}-branch-{form}.json"
    if not path.exists():
        raise click.ClickException(
            f"{path} is missing: run benchmarks/compare_methods.py --data {dataset} "
            f"--methods unimodal,discomkd --branch {form} --tag branch-{form}")
    raw = json.loads(path.read_text())
    if raw["options"].get("branch", "separate") != form:
        raise click.ClickException(f"{path} holds {raw['options'].get('branch')} branches.")
    return raw


def scores(raw, method, split):
    """{modality: {seed: F1 in points}} of `method` on `split` ("valid" or "test")."""
    out = {}
    for record in raw["runs"]:
        if record["method"] != method:
            continue
        for m, r in record["results"].items():
            value = r[f"{split}_weighted_f1"]
            if value is None:
                raise click.ClickException(f"{method} seed {record['seed']} has no {split} F1.")
            out.setdefault(m, {})[record["seed"]] = 100.0 * value
    return out


def paired(a, b):
    """Paired difference of {seed: value} dicts over their common seeds."""
    from discomkd_keras.comparison import paired_difference

    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        raise click.ClickException(f"Only {len(seeds)} common seed(s); need at least 2.")
    return dict(paired_difference([a[s] for s in seeds], [b[s] for s in seeds]), seeds=seeds)


def fmt(d):
    return f"{d['mean']:+.1f} ± {d['std']:.1f} [{d['low']:+.1f}, {d['high']:+.1f}]"


def mean(values):
    return sum(values.values()) / len(values)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--results-dir", type=click.Path(path_type=Path), default=HERE / "results",
              show_default=True, help="Where <data>-branch-<form>.json are; branch-choice.md "
              "is written there.")
def main(results_dir):
    """Write branch-choice.md: shared against separate branches, paired, on validation."""
    from discomkd_keras.run_directory import write_atomic

    lines = ["# Separate encoders or one shared backbone per branch", "",
             "Written by `python benchmarks/branch_choice.py` from the comparisons "
             "`<data>-branch-separate.json` and `<data>-branch-shared.json` (DisCoM-KD and its "
             "unimodal twins, same seeds; their commands are in those files). Weighted F1 in "
             "points; differences are per-seed paired: mean ± std [95% interval].", "",
             f"**Rule** (issue 17): shared becomes the default of the CPU presets if, on both "
             f"data sets and for every modality, the mean paired *validation* difference "
             f"(DisCoM-KD shared - separate) is above -{MARGIN:.0f} point. The test split only "
             "reports.", ""]
    within = []
    for dataset in DATASETS:
        raws = {form: records_of(results_dir, dataset, form) for form in ("separate", "shared")}
        sep, sh = raws["separate"], raws["shared"]
        lines += [f"## {dataset}", "",
                  f"Settings: encoders {sep['options']['encoders']}, D = "
                  f"{sep['options']['feature_dim']}, {sep['options']['epochs']} epochs, seeds "
                  f"{', '.join(map(str, sep['seeds']))}.", "",
                  "| modality | valid F1 separate | valid F1 shared | shared - separate (valid) "
                  "| test F1 separate | test F1 shared | shared - separate (test) | deployed "
                  "params separate / shared | MACs separate / shared |",
                  "|---|---:|---:|---|---:|---:|---|---:|---:|"]
        cost = {form: next(r for r in raws[form]["runs"] if r["method"] == "discomkd")["results"]
                for form in raws}
        valid = {f: scores(raws[f], "discomkd", "valid") for f in raws}
        test = {f: scores(raws[f], "discomkd", "test") for f in raws}
        for m in valid["separate"]:
            dv = paired(valid["shared"][m], valid["separate"][m])
            dt = paired(test["shared"][m], test["separate"][m])
            within.append((dataset, m, dv["mean"] > -MARGIN, dv))
            lines.append(
                f"| {m} | {mean(valid['separate'][m]):.1f} | {mean(valid['shared'][m]):.1f} | "
                f"{fmt(dv)} | {mean(test['separate'][m]):.1f} | {mean(test['shared'][m]):.1f} | "
                f"{fmt(dt)} | {cost['separate'][m]['parameters']:,} / "
                f"{cost['shared'][m]['parameters']:,} | {cost['separate'][m]['macs'] / 1e6:.2f} M"
                f" / {cost['shared'][m]['macs'] / 1e6:.2f} M |")
        # The weaker modality first: the one DisCoM-KD is meant to lift.
        twin_test = {f: scores(raws[f], "unimodal", "test") for f in raws}
        order = sorted(test["separate"], key=lambda m: mean(twin_test["separate"][m]))
        lines += ["", "DisCoM-KD against its unimodal twin of the same branch form (test, "
                  "paired; the weaker modality first):", "",
                  "| modality | form | twin F1 | DisCoM-KD F1 | DisCoM-KD - twin |",
                  "|---|---|---:|---:|---|"]
        for m in order:
            for form in ("separate", "shared"):
                d = paired(test[form][m], twin_test[form][m])
                lines.append(f"| {m} | {form} | {mean(twin_test[form][m]):.1f} | "
                             f"{mean(test[form][m]):.1f} | {fmt(d)} |")
        lines.append("")
    chosen = "shared" if all(ok for *_, ok, _ in within) else "separate"
    failing = [f"{d} / {m} ({dv['mean']:+.1f})" for d, m, ok, dv in within if not ok]
    lines += ["## Verdict", "",
              (f"Shared is within {MARGIN:.0f} point of separate on validation for every "
               "modality of both data sets: **shared** becomes the CPU presets' default "
               "(the paper's protocol keeps separate encoders)." if chosen == "shared" else
               f"Shared falls more than {MARGIN:.0f} point below separate on validation for "
               f"{', '.join(failing)}: the CPU presets keep **separate** encoders."), ""]
    out = Path(results_dir) / "branch-choice.md"
    write_atomic(out, "\n".join(lines))
    click.echo(f"Wrote {out}: {chosen}")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
