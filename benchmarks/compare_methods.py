"""DisCoM-KD against its baselines and ablations, several seeds, one command.

    python benchmarks/compare_methods.py --data av-mnist-hard
    python benchmarks/compare_methods.py --data synthetic-rgbd

Trains, per seed: the unimodal twins, the single-encoder baseline, DisCoM-KD,
DisCoM-KD without each of L_adv / L_mod / L_aux / L_perp, a multi-modal
teacher and its KD / KD-mix / DKD / MLKD students; then writes
benchmarks/results/<data>.{json,md,png} with the paired per-seed differences
and their 95% intervals. The presets (discomkd_keras/config.py BENCHMARKS) are
sized for a 2-core CPU; --paper switches to the paper's protocol (ResNet-18,
D = 512, 300 epochs, batch 128, lr 1e-4) for a GPU. Runs land in
benchmarks/runs/<data>/ (not committed); rerunning with the same settings
reuses finished runs, so an interrupted comparison picks up where it stopped.

A thin caller of `discomkd_keras.comparison`, the code behind `discomkd-keras
compare` (which takes any data and writes a verdict per modality): this script
adds the built-in benchmark presets, all twelve methods, variants (--option,
--tag) and the targets of the committed comparisons.
"""

import shlex
import sys
from pathlib import Path

import click

from discomkd_keras.config import BENCHMARKS
from discomkd_keras.modality_branch import DISCOMKD_BRANCHES

HERE = Path(__file__).resolve().parent


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data", "dataset", type=click.Choice(sorted(BENCHMARKS)), required=True,
              help="Data set and its preset (discomkd_keras/config.py BENCHMARKS; AV-MNIST is "
              "read from ../shared/data, paired by class).")
@click.option("--seeds", type=int, default=5, show_default=True, help="Seeds 0..N-1 per method.")
@click.option("--methods", default=None,
              help="Comma-separated subset of: unimodal, discomkd, 'discomkd -L_adv' (and -L_mod, "
              "-L_aux, -L_perp), teacher, kd, dkd, mlkd. Default: all.")
@click.option("--paper", is_flag=True, help="The paper's protocol: resnet18, D=512, 300 epochs, "
              "batch 128, lr 1e-4, 5 seeds (a GPU job).")
@click.option("--epochs", type=int, default=None, help="Override the preset's epochs.")
@click.option("--encoder", default=None, help="Override the preset's encoder family.")
@click.option("--feature-dim", type=int, default=None, help="Override the preset's D.")
@click.option("--batch-size", type=int, default=None, help="Override the preset's batch size.")
@click.option("--lr", "learning_rate", type=float, default=None, help="Override the preset's lr.")
@click.option("--fsdd-dir", type=click.Path(path_type=Path), default=None, help="AV-MNIST audio.")
@click.option("--mnist", "mnist_path", type=click.Path(path_type=Path), default=None,
              help="AV-MNIST images (mnist-10k.npz).")
@click.option("--augment", type=click.Choice(["default", "none", "released", "independent"]),
              default=None, help="Override the preset's augmentation of every image modality "
              "(default: each kind's default).")
@click.option("--option", "extra", multiple=True, metavar="KEY=JSON",
              help="Another training option for DisCoM-KD's runs (a variant; the baselines stay "
              "as they are), e.g. modality_targets='\"released\"' or loss_weights='{\"aux\": 2}' "
              "(the ablations keep their zero).")
@click.option("--grl-schedule", type=click.Choice(["constant", "dann"]), default="constant",
              show_default=True, help="DisCoM-KD's gradient-reversal schedule.")
@click.option("--branch", type=click.Choice(DISCOMKD_BRANCHES), default=None,
              help="Every branch's form for DisCoM-KD, its ablations, the unimodal twins and "
              "the students (default: the runs' own default, separate encoders).")
@click.option("--tag", default=None,
              help="Name suffix for a variant: results go to <data>-<tag>.* and runs to "
              "<work-dir>-<tag>, leaving the default comparison alone.")
@click.option("--mixed-precision", "precision", type=click.Choice(
              ["float32", "mixed_float16", "mixed_bfloat16"]), default="float32", show_default=True)
@click.option("--work-dir", type=click.Path(path_type=Path), default=None,
              help="Where the runs go (default benchmarks/runs/<data>).")
@click.option("--out-dir", type=click.Path(path_type=Path), default=HERE / "results",
              show_default=True, help="Where <data>.json/.md/.png go.")
@click.option("--verbose", is_flag=True, help="Keras progress bars for every run.")
def main(dataset, seeds, methods, paper, epochs, encoder, feature_dim, batch_size, learning_rate,
         fsdd_dir, mnist_path, augment, extra, grl_schedule, branch, tag, precision, work_dir,
         out_dir, verbose):
    """Compare DisCoM-KD with unimodal twins, teacher + KD/DKD/MLKD students
    and its own ablations; write a Markdown table and a PNG."""
    import json

    from discomkd_keras.comparison import (METHOD_LABELS, make_raw, run_comparison, shared_options,
                                           write_report)
    from discomkd_keras.config import PAPER
    from discomkd_keras.data import DataError
    from discomkd_keras.run_directory import RunError

    preset = BENCHMARKS[dataset]
    data_spec = dict(preset["data"])
    if data_spec["source"] == "av-mnist":
        data_spec.update(fsdd_dir=str(fsdd_dir.resolve()) if fsdd_dir else None,
                         mnist_path=str(mnist_path.resolve()) if mnist_path else None)
    paper_options = {k if k != "encoder" else "encoders": v for k, v in PAPER.items()}
    base = dict(preset["options"], **(paper_options if paper else {}))
    for key, value in (("epochs", epochs), ("encoders", encoder), ("feature_dim", feature_dim),
                       ("batch_size", batch_size), ("learning_rate", learning_rate),
                       ("augment", augment)):
        if value is not None:
            base[key] = value
    from discomkd_keras.data import load_data
    try:
        data = load_data(data_spec)
    except DataError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    options = shared_options({
        "epochs": base["epochs"], "batch_size": base["batch_size"],
        "learning_rate": base["learning_rate"], "feature_dim": base["feature_dim"],
        "encoders": {m: base["encoders"] for m in data.modalities if data.kinds[m] != "vector"},
        # None and "default" leave each modality to its kind's default.
        "augment": ({m: base["augment"] for m in data.modalities}
                    if base.get("augment") not in (None, "default") else {}),
        "precision": precision,
    }, base["epochs"])
    variant = {}
    for item in extra:
        key, _, value = item.partition("=")
        try:
            variant[key.strip()] = json.loads(value)
        except json.JSONDecodeError as err:
            raise click.BadParameter(f"{item!r}: the value is not JSON ({err})",
                                     param_hint="--option") from None
    if grl_schedule != "constant":
        options["grl_schedule"] = grl_schedule
    if branch is not None:
        options["branch"] = branch
    name = f"{dataset}-{tag}" if tag else dataset
    wanted = [m.strip() for m in methods.split(",")] if methods else list(METHOD_LABELS)
    command = "python " + " ".join(shlex.quote(a) for a in
                                   [str(Path(sys.argv[0]).as_posix())] + sys.argv[1:])
    click.echo(f"{dataset}: {len(wanted)} methods x {seeds} seeds; options {options}")
    try:
        work_dir = work_dir or HERE / "runs" / name
        records = run_comparison(data_spec, options, range(seeds), work_dir, methods=wanted,
                                 log=click.echo, verbose=1 if verbose else 0,
                                 discomkd_options=variant, data=data, int8_sizes=True)
        raw = make_raw(name, data_spec, dict(options, discomkd_variant=variant), range(seeds),
                       records, command, out_dir=out_dir, work_dir=work_dir, targets=True)
        paths = write_report(raw, out_dir)
    except (DataError, RunError, ValueError) as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    click.echo("Wrote " + ", ".join(str(p) for p in paths))
    click.echo(paths[1].read_text())


if __name__ == "__main__":
    main()
