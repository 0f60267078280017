"""The `discomkd-keras` command: a thin click layer over the library."""

import sys
from pathlib import Path

import click

from discomkd_keras import __version__

# Settings per built-in data set where they differ from the paper's protocol
# (ResNet-18, D=512, Adam 1e-4, 300 epochs): small encoders and few epochs so
# that a run finishes on a laptop CPU in minutes. Every one is an option.
PRESETS = {
    "synthetic-rgbd": {"encoder": "dscnn", "feature_dim": 128, "epochs": 10, "learning_rate": 1e-3,
                       "batch_size": 32},
    "av-mnist": {"encoder": "lenet", "feature_dim": 128, "epochs": 6, "learning_rate": 1e-3,
                 "batch_size": 64},
    "released": {"encoder": None, "feature_dim": 512, "epochs": 300, "learning_rate": 1e-4,
                 "batch_size": 128},
}


def _fail(message):
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _pairs(values, what, cast=str):
    """Parse repeated NAME=VALUE options into a dict."""
    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=what)
        name, value = item.split("=", 1)
        try:
            out[name.strip()] = cast(value.strip())
        except ValueError:
            raise click.BadParameter(f"bad value in {item!r}", param_hint=what) from None
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="discomkd-keras")
def main():
    """DisCoM-KD: train all single-modality classifiers of a multi-modal data
    set at once, then export each one as a small quantized TFLite model.

    Typical day: `discomkd-keras train ...` on a GPU box, then
    `discomkd-keras export --modality depth`, then copy `edge_demo/` and the
    `.tflite` to the device.
    """


@main.command()
@click.option("--data", "source", type=click.Choice(["synthetic-rgbd", "released", "av-mnist"]),
              default=None, help="Data source. Default: released if --data-dir is given, "
              "else the built-in synthetic RGB-D set.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Released layout: DIR/{MOD}_data_normalized.npy (N,C,H,W) or (N,F), labels.npy, "
              "train_idx.npy, valid_idx.npy, test_idx.npy.")
@click.option("--modalities", default=None,
              help="Comma-separated modalities to use, in order (default: all of the data's).")
@click.option("--split-seed", type=int, default=None,
              help="Released layout without index files: stratified 70/10/20 splits from this seed.")
@click.option("--synthetic-size", type=int, default=64, show_default=True,
              help="Synthetic RGB-D: image side in pixels.")
@click.option("--synthetic-per-class", type=int, default=500, show_default=True,
              help="Synthetic RGB-D: samples per class (6 classes).")
@click.option("--fsdd-dir", type=click.Path(path_type=Path), default=None,
              help="AV-MNIST: FSDD recordings folder (default ../shared/data/fsdd/recordings).")
@click.option("--mnist", "mnist_path", type=click.Path(path_type=Path), default=None,
              help="AV-MNIST: mnist-10k.npz (default ../shared/data/mnist/mnist-10k.npz).")
@click.option("--av-split", type=click.Choice(["official", "speaker"]), default="official",
              show_default=True, help="AV-MNIST audio split: FSDD's official one (takes 0-4 test) "
              "or one speaker held out.")
@click.option("--test-speaker", default="theo", show_default=True,
              help="AV-MNIST with --av-split speaker: the held-out speaker.")
@click.option("--pairing", type=click.Choice(["unpaired", "paired"]), default="unpaired",
              show_default=True, help="AV-MNIST: keep modalities unpaired, or pair by class.")
@click.option("--method", type=click.Choice(["discomkd", "unimodal", "teacher", "kd", "dkd", "mlkd"]),
              default="discomkd", show_default=True,
              help="discomkd: this package's method. Baselines: unimodal (each modality's deployed "
              "network trained alone, task loss only); teacher (a multi-modal teacher, paired data); "
              "kd / dkd / mlkd (students distilled from --teacher).")
@click.option("--teacher", "teacher_run", type=click.Path(path_type=Path), default=None,
              help="For kd, dkd and mlkd: a run trained with --method teacher on the same data.")
@click.option("--encoder", "encoders", multiple=True, metavar="[MOD=]FAMILY",
              help="Encoder family (resnet18, lenet, lenet-wide, dscnn, mlp) for all image "
              "modalities, or MOD=FAMILY for one; repeatable. Vector modalities always default "
              "to mlp.")
@click.option("--feature-dim", type=int, default=None, help="D, even (z_* get D/2 each).")
@click.option("--epochs", type=int, default=None, help="Epochs (one pass over the largest modality).")
@click.option("--batch-size", type=int, default=None,
              help="Per modality (paper: 128; built-in presets: smaller, for more steps per epoch).")
@click.option("--lr", "learning_rate", type=float, default=None, help="Adam learning rate.")
@click.option("--loss-weight", "loss_weights", multiple=True, metavar="TERM=W",
              help="Weight of cl, adv, mod, aux or perp (default 1; 0 switches it off); repeatable.")
@click.option("--perp-mode", type=click.Choice(["abs", "cos", "square"]), default="abs",
              show_default=True, help="How L_perp penalises the cosine.")
@click.option("--modality-targets", type=click.Choice(["labels", "released"]), default="labels",
              show_default=True, help="Targets of L_adv and L_mod: integer modality labels (the "
              "paper), or the released script's all-ones / all-zeros probability vectors (to "
              "reproduce its numbers).")
@click.option("--conventions", type=click.Choice(["torch", "keras"]), default="torch",
              show_default=True, help="Layer defaults: torch (the released script's PyTorch "
              "initialisation, BatchNorm eps 1e-5, Adam eps 1e-8, symmetric padding) or keras "
              "(Glorot weights, zero biases, eps 1e-3 / 1e-7, 'same' padding).")
@click.option("--grl-schedule", type=click.Choice(["constant", "dann"]), default="constant",
              show_default=True, help="Gradient-reversal lambda: constant (paper) or the DANN ramp.")
@click.option("--grl-lambda", type=float, default=1.0, show_default=True,
              help="Gradient-reversal lambda (the ramp's maximum with --grl-schedule dann).")
@click.option("--augment", "augment", multiple=True, metavar="MOD=released|independent|none",
              help="Augmentation per modality; repeatable. Default for images: released (with "
              "p 0.5 a flip/flip/rotation-by-k*90 transform, as the authors' script; ~42% of "
              "samples change); independent: each flip and a 90-degree rotation with p 0.5 "
              "(~88% change). Spectrograms and vectors: none.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the whole run.")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Where the run goes (default: runs/<timestamp>-<dataset>).")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), default=None,
              help="Continue the run in this directory from its last finished epoch, same config.")
@click.option("--overwrite", is_flag=True, help="Replace whatever --run-dir holds.")
@click.option("--strategy", type=click.Choice(["auto", "mirrored", "multiworker"]), default="auto",
              show_default=True, help="auto: the default device; mirrored: all GPUs of this machine "
              "(tf.distribute.MirroredStrategy; on jax keras.distribution.DataParallel); "
              "multiworker: several machines from TF_CONFIG (TensorFlow only).")
@click.option("--mixed-precision", "precision", type=click.Choice(
              ["float32", "mixed_float16", "mixed_bfloat16"]), is_flag=False,
              flag_value="mixed_float16", default="float32", show_default=True,
              help="Precision policy; the bare flag means mixed_float16 (GPUs).")
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard logs to RUN_DIR/tensorboard.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Threads preparing batches.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(source, data_dir, modalities, split_seed, synthetic_size, synthetic_per_class, fsdd_dir,
          mnist_path, av_split, test_speaker, pairing, method, teacher_run, encoders, feature_dim,
          epochs, batch_size, learning_rate, loss_weights, perp_mode, modality_targets, conventions,
          grl_schedule, grl_lambda,
          augment, seed, run_dir, resume_dir, overwrite, strategy, precision, tensorboard, workers,
          quiet):
    """Train DisCoM-KD: one run learns every modality's classifier.

    With no arguments: the built-in synthetic RGB-D set (6 shapes, RGB + depth,
    64x64), dscnn encoders, 10 epochs; a few minutes on a laptop CPU. Built-in
    presets (override any): synthetic-rgbd dscnn/D=128/10 epochs/lr 1e-3/batch 32;
    av-mnist lenet/D=128/6 epochs/lr 1e-3/batch 64; released data: the paper's
    resnet18/D=512/300 epochs/lr 1e-4/batch 128.

    Per modality, the classifier with the best validation weighted F1 is kept
    in RUN_DIR/best/<modality>.keras; test figures are printed at the end.

    --method picks a baseline instead (the comparison of benchmarks/compare_methods.py):
    unimodal twins, or a teacher (--method teacher) and then its students
    (--method kd --teacher RUN_DIR). The students and twins are the exact
    networks DisCoM-KD deploys, so their exports and edge demo are the same.
    """
    from discomkd_keras.data import DataError, load_data
    from discomkd_keras.training import (RunError, default_run_dir, prepare_run_dir,
                                         resolve_config, train_run)

    try:
        if resume_dir is not None:
            if not (resume_dir / "config.json").exists():
                _fail(f"{resume_dir} is not a run directory (no config.json).")
            click.echo(f"Resuming {resume_dir}")
            results = train_run(None, resume_dir, resume=True, verbose=0 if quiet else 1)
            _summary(resume_dir, results)
            return
        if source is None:
            source = "released" if data_dir is not None else "synthetic-rgbd"
        if source == "released":
            if data_dir is None:
                _fail("--data released needs --data-dir DIR.")
            spec = {"source": "released", "directory": str(data_dir.resolve()),
                    "split_seed": split_seed}
        elif source == "synthetic-rgbd":
            spec = {"source": source, "n_per_class": synthetic_per_class, "size": synthetic_size,
                    "seed": 0}
        else:
            spec = {"source": source, "fsdd_dir": str(fsdd_dir.resolve()) if fsdd_dir else None,
                    "mnist_path": str(mnist_path.resolve()) if mnist_path else None,
                    "split": av_split, "test_speaker": test_speaker, "pairing": pairing,
                    "seed": seed}
            if av_split != "speaker":
                spec.pop("test_speaker")
        if modalities:
            spec["modalities"] = [m.strip() for m in modalities.split(",") if m.strip()]
        preset = PRESETS[source]
        click.echo(f"Loading {source} data ...")
        data = load_data(spec)
        if run_dir is None:
            run_dir = default_run_dir(data.name)

        family = {}
        for item in encoders:
            if "=" in item:
                family.update(_pairs([item], "--encoder"))
            else:
                family.update({m: item for m in data.modalities if data.kinds[m] != "vector"})
        if not encoders and preset["encoder"]:
            family = {m: preset["encoder"] for m in data.modalities if data.kinds[m] != "vector"}
        options = {
            "method": method, "teacher_run": str(teacher_run) if teacher_run else None,
            "epochs": epochs or preset["epochs"], "batch_size": batch_size or preset["batch_size"],
            "learning_rate": learning_rate or preset["learning_rate"],
            "feature_dim": feature_dim or preset["feature_dim"], "encoders": family,
            "loss_weights": _pairs(loss_weights, "--loss-weight", float),
            "perp_mode": perp_mode, "modality_targets": modality_targets,
            "conventions": conventions, "grl_schedule": grl_schedule, "grl_lambda": grl_lambda,
            "augment": _pairs(augment, "--augment"), "seed": seed, "strategy": strategy,
            "precision": precision, "tensorboard": tensorboard, "workers": workers,
        }
        config = resolve_config(spec, data, options)
        _check_model_args(config)
        run_dir = prepare_run_dir(run_dir, overwrite=overwrite)
        click.echo(f"Run directory: {run_dir}")
        described = [f"{m} {tuple(shape)} [{config['encoders'].get(m, 'default')}]"
                     for m, shape in config["input_shapes"].items()]
        click.echo(f"Method {config['method']}; modalities: {', '.join(described)}; "
                   f"{len(config['class_names'])} classes; {config['epochs']} epochs")
        results = train_run(config, run_dir, data=data, verbose=0 if quiet else 1)
        _summary(run_dir, results)
    except (DataError, RunError, ValueError) as err:
        _fail(str(err))


def _check_model_args(config):
    """The model's own argument checks (encoders, D, loss weights), run before the run
    directory is created, so a bad option leaves nothing behind."""
    from discomkd_keras.model import check_model_arguments
    check_model_arguments(config["input_shapes"], len(config["class_names"]),
                          config["encoders"] or None, config["feature_dim"], config["loss_weights"],
                          config["perp_mode"], config["modality_targets"], config["conventions"])


def _summary(run_dir, results):
    what = "the multi-modal teacher" if "teacher" in results else "each modality's classifier"
    click.echo(f"\nTest split, {what} at its best validation epoch:")
    click.echo(f"  {'model' if 'teacher' in results else 'modality':<12}{'accuracy':>10}{'weighted F1':>13}{'best epoch':>12}{'params':>12}")
    for m, r in results.items():
        click.echo(f"  {m:<12}{r['test_accuracy']:>10.4f}{r['test_weighted_f1']:>13.4f}"
                   f"{r['best_epoch']:>12}{r['parameters']:>12,}")
    click.echo(f"\nRun saved in {run_dir} (plots in {run_dir}/plots). Next:")
    click.echo(f"  discomkd-keras evaluate {run_dir}")
    if "teacher" in results:
        click.echo(f"  discomkd-keras train --method kd --teacher {run_dir} ...  (same data options)")
    else:
        click.echo(f"  discomkd-keras export {run_dir} --modality {next(iter(results))}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--max-points", type=int, default=400, show_default=True,
              help="Test samples per modality in the embedding map.")
def evaluate(run_dir, max_points):
    """Test accuracy, weighted F1, confusion matrices and the z_inv / z_inf /
    z_irr embedding map of a run (default: the most recent under runs/).

    Writes RUN_DIR/evaluation/: results.json, confusion_<modality>.png and
    embeddings.png (PCA, coloured by modality and by class: z_inv should mix
    the modalities, z_inf and z_irr should separate them).
    """
    from discomkd_keras.data import DataError
    from discomkd_keras.training import RunError, evaluate_run, latest_run

    try:
        run_dir = run_dir or latest_run()
        results = evaluate_run(run_dir, max_points=max_points)
    except (DataError, RunError, ValueError) as err:
        _fail(str(err))
    separation = results.pop("_modality_separation", None)
    _summary(run_dir, results)
    if separation:
        click.echo("Modality separability (nearest-centroid accuracy; ~1/M = mixed, 1 = separated): "
               + ", ".join(f"{k} {v:.2f}" for k, v in separation.items()))
    click.echo(f"Figures in {Path(run_dir) / 'evaluation'}")


@main.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--modality", help="Modality to export, or 'all'.")
@click.option("--quantize", "quantization", type=click.Choice(["int8", "float16", "dynamic", "float32"]),
              default="int8", show_default=True,
              help="int8: full-integer post-training quantization (representative data from the "
              "run's training split); float16 / dynamic: weights only; float32: none.")
@click.option("--io", "io_type", type=click.Choice(["float32", "int8", "uint8"]), default="float32",
              show_default=True, help="Input/output tensor type (int8/uint8 only with --quantize "
              "int8; the card gives the scale and zero point).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output folder (default RUN_DIR/export); writes OUT/<modality>/.")
@click.option("--representative-size", type=int, default=300, show_default=True,
              help="Training samples used to calibrate int8 quantization.")
@click.option("--threshold", type=float, default=None,
              help="Minimum TFLite-vs-Keras argmax agreement on the test split "
              "(default 0.98 int8/dynamic, 0.995 float16, 0.999 float32).")
@click.option("--per-tensor", is_flag=True,
              help="int8/dynamic: one weight scale per convolution kernel instead of per output "
              "channel: smaller file (no 12-byte-per-channel parameters), usually a little less accurate.")
@click.option("--overwrite", is_flag=True, help="Replace an existing export folder.")
@click.option("--check", "check_dir", type=click.Path(path_type=Path), default=None,
              help="Re-run the verification of an existing export folder and exit.")
def export_command(run_dir, modality, quantization, io_type, out_dir, representative_size,
                   threshold, per_tensor, overwrite, check_dir):
    """Export a modality's best classifier as a standalone, quantized, verified
    TFLite model: OUT/<modality>/{<modality>.tflite, labels.txt, model_card.json}.

    RUN_DIR defaults to the most recent run under runs/. Every export runs the
    TFLite model with the LiteRT interpreter on the run's test split and
    compares it with the Keras classifier; below --threshold nothing is written
    and the exit status is non-zero.
    """
    from discomkd_keras.data import DataError, load_data
    from discomkd_keras.export import ExportError, check_export, export_modality, format_report, read_run
    from discomkd_keras.training import RunError, latest_run

    try:
        if check_dir is not None:
            card, report = check_export(check_dir, run_dir)
            click.echo(format_report(card["modality"], report))
            if not report["passed"]:
                sys.exit(1)
            return
        if not modality:
            _fail("--modality NAME (or 'all') is required.")
        run_dir = run_dir or latest_run()
        config, _ = read_run(run_dir)
        modalities = config["modalities"] if modality == "all" else [modality]
        data = load_data(config["data"]) if len(modalities) > 1 else None  # once, not per modality
        for m in modalities:
            card = export_modality(run_dir, m, quantization=quantization, out_dir=out_dir,
                                   io_type=io_type, representative_size=representative_size,
                                   threshold=threshold, overwrite=overwrite, data=data,
                                   per_tensor=per_tensor, log=click.echo)
            click.echo(format_report(m, card["verification"]))
            folder = (Path(out_dir) if out_dir else Path(run_dir) / "export") / m
            click.echo(f"Wrote {folder}/ ({card['file_size_bytes'] / 1024:.1f} KiB model). "
                       f"On the device: python edge_demo/classify.py {folder} INPUT_FILE\n")
    except (ExportError, DataError, RunError) as err:
        _fail(str(err))


@main.command("bench-export")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--modality", default="all", show_default=True, help="Modality, or 'all'.")
@click.option("--quantize", "quantizations", default="float32,float16,dynamic,int8,int8-per-tensor",
              show_default=True, help="Comma-separated quantizations to compare; '-per-tensor' "
              "after int8 or dynamic means one weight scale per tensor (export --per-tensor).")
@click.option("--runs", type=int, default=200, show_default=True,
              help="Timed batch-1 invocations per model and thread count.")
@click.option("--out", "out_file", type=click.Path(path_type=Path), default=None,
              help="Also write the Markdown table here.")
def bench_export_command(run_dir, modality, quantizations, runs, out_file):
    """Compare quantizations of a run's classifiers: file size and ratio to
    float32, test weighted F1, TFLite/Keras agreement, median 1- and 2-thread
    latency, parameters and MACs. Figures are printed (and optionally saved)."""
    from discomkd_keras.data import DataError, load_data
    from discomkd_keras.export import ExportError, read_run
    from discomkd_keras.export.benchmark import bench_export, format_table
    from discomkd_keras.training import RunError, latest_run, write_atomic

    try:
        run_dir = run_dir or latest_run()
        config, _ = read_run(run_dir)
        wanted = [q.strip() for q in quantizations.split(",") if q.strip()]
        modalities = config["modalities"] if modality == "all" else [modality]
        for m in modalities:
            if m not in config["modalities"]:
                raise ExportError(f"Unknown modality {m!r}; this run has: {', '.join(config['modalities'])}.")
        data = load_data(config["data"])  # once, for every modality and quantization
        tables = []
        for m in modalities:
            click.echo(f"Benchmarking {m} ...")
            rows = bench_export(run_dir, m, wanted, runs=runs, data=data, log=click.echo)
            tables.append(format_table(m, rows, runs))
            click.echo(tables[-1] + "\n")
        if out_file:
            write_atomic(out_file, f"Run: {run_dir}\n\n" + "\n\n".join(tables) + "\n")
    except (ExportError, DataError, RunError) as err:
        _fail(str(err))


if __name__ == "__main__":
    main()
