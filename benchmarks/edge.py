"""The edge table: what each encoder family and branch form costs and scores on a device.

    python benchmarks/edge.py                      # both data sets, every family, both forms
    python benchmarks/edge.py --data synthetic-rgbd --families dscnn,mobilenetv3small

For each data set (the built-in RGB-D with the default run's preset, and hard
AV-MNIST with its comparison preset; config.py BENCHMARKS), each encoder family
and each branch form (`separate`: the paper's two encoders; `shared`: one
backbone, three projections), one DisCoM-KD run (seed 0), then per modality the
deployed classifier exported as float32, full-integer int8 and int8 with its
input layers float (what `export` falls back to when the full-integer model
disagrees on the validation split), the check's threshold off so every
variant gets its figures: deployed parameters, MACs (batch 1), full-integer
int8 file size and its ratio to float32, its LiteRT latency on one thread
(median of --calls batch-1 calls after 20 warm-ups), test weighted F1 of the
Keras model and of the int8 file, and the test agreement of both int8
variants with the Keras model.

The reference is the paper's branch, two ResNet-18s (`resnet18`, separate).
The target (issue 17): a branch with >= 10x fewer MACs than the reference,
test F1 within 1 point of it and int8 agreement >= 98%; the report says per
data set and modality which branches meet it. A family that cannot take a
modality (the applications need 32x32 images; AV-MNIST digits are 28x28)
leaves that modality on the preset's family in its run and shows "n/a".

Runs land in --work-dir and are reused when finished, with their exports and
scores (RUN/edge/); the latencies are measured afresh on every invocation, so
the last one, on a quiet machine, times every model alike. Writes
benchmarks/results/edge.{json,md}. One seed: the F1 differences carry the
seed-to-seed spread the comparison reports show (about 1-3 points), so a
"within 1 point" here is indicative, not a paired interval.
"""

import json
import shlex
import sys
import time
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
REFERENCE = ("resnet18", "separate")
FAMILIES = ("resnet18", "dscnn", "mobilenetv3small", "mobilenetv3small-hardswish",
            "mobilenetv2-0.35", "efficientnetv2b0")
FORMS = ("separate", "shared")
DATASETS = ("synthetic-rgbd", "av-mnist-hard")
AGREEMENT_TARGET, F1_MARGIN, MAC_RATIO = 0.98, 0.01, 10.0
LEARNED = 1.5  # a reference whose test F1 is below 1.5x chance did not learn


def fitting_encoders(data, family, preset_family):
    """{modality: family}: `family` where it takes the modality's input, else the preset's."""
    from discomkd_keras.models.encoders import check_encoder

    chosen = {}
    for m in data.modalities:
        try:
            check_encoder(family, data.input_shape(m))
            chosen[m] = family
        except ValueError:
            chosen[m] = preset_family
    return chosen


def train_one(name, data, encoders, form, run_dir, log, epochs=None, train=True):
    """Train (or reuse) one run with {modality: family} `encoders`; return its config.
    With `train` False, a finished run of other settings is an error, not retrained."""
    from discomkd_keras.config import BENCHMARKS, resolve_config
    from discomkd_keras.run_directory import prepare_run_dir
    from discomkd_keras.training import train_run

    bench = BENCHMARKS[name]
    preset = dict(bench["options"])
    del preset["encoders"]  # `encoders` replaces the preset's family
    config_file = Path(run_dir) / "config.json"
    if (Path(run_dir) / "results.json").exists() and config_file.exists():
        old = json.loads(config_file.read_text())
        if (old["epochs"], old["branch"], old["encoders"]) == \
                (epochs or preset["epochs"], form, encoders):
            log(f"  reusing {run_dir}")
            return old
    if not train:
        raise click.ClickException(f"{run_dir} holds a run of other settings; rerun without "
                                   "--finished-only to train it again.")
    augment = preset.pop("augment")
    options = dict(preset, encoders=encoders, branch=form, seed=0,
                   epochs=epochs or preset["epochs"],
                   augment={m: augment for m in data.modalities} if augment else {})
    config = resolve_config(bench["data"], data, options)
    prepare_run_dir(run_dir, overwrite=True)
    start = time.perf_counter()
    train_run(config, run_dir, data=data, verbose=0, log=lambda *_: None)
    log(f"  trained in {time.perf_counter() - start:.0f} s")
    return config


def measure(run_dir, modality, data, calls):
    """{params, macs, sizes, F1s, agreement, latency} of one modality's deployed classifier.

    The exports and their scores are kept in RUN/edge/ (edge-<modality>.json and the
    .tflite files) and reused; the latencies are measured again on every call, so a
    final pass on a quiet machine times every model under the same conditions."""
    from discomkd_keras.export.benchmark import bench_export, time_model
    from discomkd_keras.run_directory import write_json

    keep = Path(run_dir) / "edge"
    cached = keep / f"edge-{modality}.json"
    if cached.exists():
        scores = json.loads(cached.read_text())
    else:
        rows = {r["quantization"]: r for r in bench_export(
            run_dir, modality, ("float32", "int8", "int8-float-input"), runs=1, data=data,
            log=lambda *_: None, keep_dir=keep)}
        f32, int8, mixed = rows["float32"], rows["int8"], rows["int8-float-input"]
        scores = {"parameters": f32["parameters"], "macs": f32["macs"],
                  "int8_kib": int8["size_kib"], "int8_ratio": int8["size_ratio"],
                  "keras_f1": f32["keras_f1"], "int8_f1": int8["tflite_f1"],
                  "agreement": int8["agreement"], "float_input_agreement": mixed["agreement"],
                  "float_input_kib": mixed["size_kib"],
                  # relative to RUN/edge: a run directory may move
                  "files": {q: str(Path(rows[q]["path"]).relative_to(keep))
                            for q in ("float32", "int8")}}
        write_json(cached, scores)
    x_test, _ = data.split(modality, "test")
    files = {q: str(keep / f) for q, f in scores["files"].items()}
    return dict(scores, ms_1_thread=time_model(files["int8"], x_test, 1, calls),
                float_ms_1_thread=time_model(files["float32"], x_test, 1, calls))


def exported(row):
    """The int8 agreement `export` gets with no flag: full integer if it passes, else with
    the input layers float (export decides on validation; these figures are test)."""
    if row["agreement"] >= AGREEMENT_TARGET:
        return f"int8 agreement {100 * row['agreement']:.1f}%, full integer"
    return (f"int8 agreement {100 * row['float_input_agreement']:.1f}% with the input layers "
            f"float (full integer {100 * row['agreement']:.1f}%)")


def target_lines(results):
    """Per data set and modality: the branches meeting the 10x target, or why none does."""
    lines = []
    for name in dict.fromkeys(r["data"] for r in results):
        for m in dict.fromkeys(r["modality"] for r in results if r["data"] == name):
            rows = [r for r in results if r["data"] == name and r["modality"] == m
                    and r.get("family_used") == r["family"]]
            ref = next((r for r in rows if (r["family"], r["form"]) == REFERENCE), None)
            if ref is None:
                lines.append(f"- {name} / {m}: no reference run.")
                continue
            chance = 1.0 / ref["classes"]
            if ref["keras_f1"] < LEARNED * chance:
                # "Within 1 point" of a classifier at chance says nothing about any branch.
                lines.append(f"- {name} / {m}: **no verdict**: the reference did not learn "
                             f"(test F1 {100 * ref['keras_f1']:.1f}, chance "
                             f"{100 * chance:.1f}) with this preset's training settings.")
                continue
            met = [r for r in rows if ref["macs"] / r["macs"] >= MAC_RATIO
                   and r["keras_f1"] >= ref["keras_f1"] - F1_MARGIN
                   and max(r["agreement"], r["float_input_agreement"]) >= AGREEMENT_TARGET]
            if met:
                best = min(met, key=lambda r: r["macs"])
                lines.append(f"- {name} / {m}: **met** by " + ", ".join(
                    f"{r['family']} ({r['form']}, {ref['macs'] / r['macs']:.0f}x fewer MACs, "
                    f"F1 {100 * (r['keras_f1'] - ref['keras_f1']):+.1f}, {exported(r)})"
                    for r in met) +
                    f"; the cheapest: {best['family']} ({best['form']}).")
            else:
                cheap = [r for r in rows if ref["macs"] / r["macs"] >= MAC_RATIO]
                why = ("no branch has 10x fewer MACs" if not cheap else "the 10x-cheaper branches "
                       + ", ".join(f"{r['family']} ({r['form']}): F1 "
                                   f"{100 * (r['keras_f1'] - ref['keras_f1']):+.1f}, agreement "
                                   f"{100 * r['agreement']:.1f}%" for r in cheap))
                lines.append(f"- {name} / {m}: **not met**: {why}.")
    return lines


def write_report(raw, out_dir):
    from discomkd_keras.run_directory import write_atomic, write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "edge.json", raw)
    results = raw["results"]
    lines = ["# Edge table: deployed branch per encoder family and branch form", "",
             f"Written by `{raw['command']}` on {raw['date']}; {raw['machine']}; seed 0, one run "
             "per row (see the docstring of benchmarks/edge.py for what each column measures). "
             "Reference: the paper's branch, two ResNet-18s (resnet18, separate).", ""]
    if "--finished-only" in raw["command"]:
        lines += ["The runs were trained beforehand by `python benchmarks/edge.py` (--data, "
                  "--families and --forms chosen per call; the built-in RGB-D's dscnn runs are "
                  "seed 0 of the branch comparisons, the same settings, copied in); rows "
                  "marked *not run* were left "
                  "out for CPU time. This pass measured the finished runs and timed every "
                  "model with nothing else running.", ""]
    for name in dict.fromkeys(r["data"] for r in results):
        for m in dict.fromkeys(r["modality"] for r in results if r["data"] == name):
            rows = [r for r in results if r["data"] == name and r["modality"] == m]
            ref = next((r for r in rows if (r["family"], r["form"]) == REFERENCE
                        and r.get("family_used") == r["family"]), None)
            lines += [f"## {name} / {m}", "",
                      "| family | branch | params | MACs | x fewer MACs | int8 KiB | int8 / f32 "
                      "| ms (1 thread, int8) | F1 float | F1 int8 | int8 agreement "
                      "| agreement, input layers float |",
                      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for r in rows:
                if r.get("family_used") != r["family"]:
                    lines.append(f"| {r['family']} | {r['form']} | n/a: {r['why']} |"
                                 + " |" * 9)
                    continue
                fewer = f"{ref['macs'] / r['macs']:.1f}" if ref else "n/a"
                lines.append(
                    f"| {r['family']} | {r['form']} | {r['parameters']:,} | "
                    f"{r['macs'] / 1e6:.2f} M | {fewer} | {r['int8_kib']:.0f} | "
                    f"{r['int8_ratio']:.2f} | {r['ms_1_thread']:.2f} | {100 * r['keras_f1']:.1f} | "
                    f"{100 * r['int8_f1']:.1f} | {100 * r['agreement']:.1f}% | "
                    f"{100 * r['float_input_agreement']:.1f}% |")
            lines.append("")
    lines += ["## The 10x target", "", f"A branch with >= {MAC_RATIO:.0f}x fewer MACs than the "
              f"reference, test F1 within {100 * F1_MARGIN:.0f} point of it and int8 agreement "
              f">= {100 * AGREEMENT_TARGET:.0f}% (one seed):", ""] + target_lines(results)
    write_atomic(out_dir / "edge.md", "\n".join(lines) + "\n")
    return out_dir / "edge.md"


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data", "datasets", default=",".join(DATASETS), show_default=True,
              help="Comma-separated: synthetic-rgbd (the default run's preset), av-mnist-hard.")
@click.option("--families", default=",".join(FAMILIES), show_default=True)
@click.option("--forms", default=",".join(FORMS), show_default=True)
@click.option("--epochs", type=int, default=None,
              help="Override the presets' epochs (a quick check of the script; the table's "
              "figures use the presets).")
@click.option("--calls", type=int, default=200, show_default=True,
              help="Timed LiteRT calls per model (the median is reported).")
@click.option("--work-dir", type=click.Path(path_type=Path), default=HERE / "runs" / "edge",
              show_default=True, help="Runs; finished ones are reused.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=HERE / "results",
              show_default=True)
@click.option("--finished-only", is_flag=True,
              help="Train nothing: measure the runs already finished in --work-dir, list the "
              "others as not run (a final pass that times every model on a quiet machine).")
@click.option("--report-only", is_flag=True, help="Rewrite edge.md from OUT_DIR/edge.json.")
def main(datasets, families, forms, epochs, calls, work_dir, out_dir, finished_only,
         report_only):
    """Train every family x branch form once, export float32 and int8, write edge.md."""
    import os
    import platform

    from discomkd_keras.config import BENCHMARKS
    from discomkd_keras.data import load_data

    if report_only:
        raw = json.loads((Path(out_dir) / "edge.json").read_text())
        click.echo(f"Wrote {write_report(raw, out_dir)}")
        return
    results = []
    for name in datasets.split(","):
        data = load_data(BENCHMARKS[name]["data"])
        preset_family = BENCHMARKS[name]["options"]["encoders"]
        for family in families.split(","):
            used = fitting_encoders(data, family, preset_family)
            if all(f != family for f in used.values()):
                click.echo(f"{name}: {family} fits no modality; skipped")
                for m in data.modalities:
                    results.append({"data": name, "modality": m, "family": family, "form": "-",
                                    "family_used": used[m], "why": "input too small"})
                continue
            for form in forms.split(","):
                run_dir = Path(work_dir) / name / f"{family}-{form}"
                if finished_only and not (run_dir / "results.json").exists():
                    click.echo(f"{name}: {family}, {form}: not run")
                    results += [{"data": name, "modality": m, "family": family, "form": form,
                                 "family_used": None, "why": "not run"} for m in data.modalities]
                    continue
                click.echo(f"{name}: {family}, {form} ...")
                train_one(name, data, used, form, run_dir, click.echo, epochs,
                          train=not finished_only)
                for m in data.modalities:
                    row = {"data": name, "modality": m, "family": family, "form": form,
                           "family_used": used[m], "run": f"{name}/{family}-{form}",
                           "classes": data.num_classes}
                    if used[m] == family:
                        row.update(measure(run_dir, m, data, calls))
                    else:
                        row["why"] = f"input {tuple(data.input_shape(m))} too small"
                    results.append(row)
    raw = {"command": "python " + shlex.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d"),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores", "results": results}
    click.echo(f"Wrote {write_report(raw, out_dir)}")


if __name__ == "__main__":
    main()
