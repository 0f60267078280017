"""The `discomkd-keras` command: parses options, calls one library function per
command, prints. Presets and defaults live in config.py, training in
training.py, export in export/."""

import os
import sys
from pathlib import Path

import click

from discomkd_keras import __version__
from discomkd_keras.cli_support import (BugReportingGroup, deprecated, errors, fail,
                                        help_sections, image_size_items, knob_value, pairs,
                                        print_summary)

# The option vocabularies come from modules that import no backend, so that --help
# answers at once; a command imports what it runs (and Keras with it) when it runs.
from discomkd_keras.choices import (APPLICATION_FAMILIES, AUGMENT_OPS,
                                    CONVENTIONS, DISCOMKD_BRANCH_FORMS as DISCOMKD_BRANCHES,
                                    ENCODER_FAMILIES, GRL_SCHEDULES, IO_TYPES, LAYER_DEFAULTS,
                                    MODALITY_TARGETS, PERP_MODES, PRECISIONS, PRESET_CHOICES,
                                    QUANTIZATION_VARIANTS, SCHEDULES, SOURCES, STRATEGIES)
from discomkd_keras.config import TRAIN_DEFAULTS, describe_presets
from discomkd_keras.methods import (COMPARE_LABELS as COMPARE_METHODS,
                                    DEFAULT_COMPARISON as DEFAULT_METHODS,
                                    methods_help)


@click.group(cls=BugReportingGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100,
                               "show_default": True})
@click.version_option(__version__, prog_name="discomkd-keras")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up log lines.")
def main(verbose):
    """DisCoM-KD: train all single-modality classifiers of a multi-modal data
    set at once, then export each one as a small quantized TFLite model.

    Typical day: `discomkd-keras train ...` on a GPU box, then
    `discomkd-keras export --modality depth`, then copy `edge_demo/` and the
    `.tflite` to the device.
    """


# The data options, shared by `train` and `compare`.
DATA_OPTIONS = (
    click.option("--data", "source", type=click.Choice(SOURCES), default=None,
                 help="Data source. Default: with --data-dir, the layout found there (released, "
                 "or files: modality trees or a manifest), else the built-in synthetic RGB-D set."),
    click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                 help="Your data; the layout is recognised (docs/data.md): modality trees "
                 "DIR/<modality>/[train|valid|test/]<class>/<file>, a DIR/manifest.csv (split, label, "
                 "one path column per modality), or the released DIR/{MOD}_data_normalized.npy + "
                 "labels.npy + *_idx.npy. Files: PNG/JPEG (16-bit PNG = depth), TIFF, WAV, .npy."),
    click.option("--modalities", default=None,
                 help="Comma-separated modalities to use, in order (default: all of the data's)."),
    click.option("--split-seed", type=int, default=None,
                 help="Data without splits: stratified 70/10/20 splits from this seed (files: "
                 "default 0; released layout: required without index files)."),
    click.option("--image-size", "image_sizes", multiple=True, metavar="[MOD=]H,W",
                 help="Files: resize images to H x W (all image modalities, or MOD=H,W for one; "
                 "repeatable). Default: each modality's first file. Depth: nearest neighbour; "
                 "colour and bands: antialiased bilinear."),
    click.option("--crop-to-aspect/--stretch", "crop_to_aspect", default=True, show_default=True,
                 help="Files: centre-crop to the target aspect ratio before resizing, or stretch."),
    click.option("--depth-unit", "depth_units", multiple=True, metavar="MOD=mm|sunrgbd|F",
                 help="Files: MOD holds 16-bit depth PNGs in millimetres (mm), SUN RGB-D's "
                 "3-bit-rotated millimetres (sunrgbd), or F millimetres per stored unit."),
    click.option("--clip-seconds", type=float, default=1.0, show_default=True,
                 help="Files: WAV clips are padded or centre-cropped to this length."),
    click.option("--skip-bad-files", is_flag=True,
                 help="Files: leave unreadable files out (counted in the summary and config.json) "
                 "instead of stopping at the first."),
    click.option("--synthetic-size", type=int, default=48, show_default=True,
                 help="Synthetic RGB-D: image side in pixels."),
    click.option("--synthetic-per-class", type=int, default=500, show_default=True,
                 help="Synthetic RGB-D: samples per class (6 classes)."),
    click.option("--synthetic-knob", "synthetic_knobs", multiple=True, metavar="NAME=VALUE",
                 help="Synthetic RGB-D: a scene difficulty knob (docs/data.md, 'Built-in synthetic RGB-D'); "
                 "a range as LOW,HIGH; repeatable."),
    click.option("--fsdd-dir", type=click.Path(path_type=Path), default=None,
                 help="AV-MNIST: FSDD recordings folder (default ../shared/data/fsdd/recordings)."),
    click.option("--mnist", "mnist_path", type=click.Path(path_type=Path), default=None,
                 help="AV-MNIST: mnist-10k.npz (default ../shared/data/mnist/mnist-10k.npz)."),
    click.option("--av-split", type=click.Choice(["official", "speaker"]), default="official",
                 show_default=True, help="AV-MNIST audio split: FSDD's official one (takes 0-4 test) "
                 "or one speaker held out."),
    click.option("--test-speaker", default="theo", show_default=True,
                 help="AV-MNIST with --av-split speaker: the held-out speaker."),
    click.option("--pairing", type=click.Choice(["unpaired", "paired"]), default="unpaired",
                 show_default=True, help="AV-MNIST: keep modalities unpaired, or pair by class."),
    click.option("--av-image-energy", "image_energy", type=float, default=None,
                 help="AV-MNIST: rebuild images from the principal components keeping this fraction "
                 "of their energy (hard AV-MNIST: 0.25)."),
    click.option("--av-audio-snr", "audio_snr_db", type=float, default=None,
                 help="AV-MNIST: mix clips with --av-noise at this SNR in dB."),
    click.option("--av-noise", "audio_noise", type=click.Choice(["babble", "pink"]), default="babble",
                 show_default=True, help="AV-MNIST noise: other clips of the same split, or 1/f noise."),
)


def data_options(command):
    """Decorate `command` with DATA_OPTIONS."""
    for option in reversed(DATA_OPTIONS):
        command = option(command)
    return command


# The parameter names those options give a command (click keeps them on the function).
DATA_KEYS = tuple(option.name for option in data_options(lambda: None).__click_params__)


def pop_data_spec(options, seed=0):
    """The data spec of a command's data options, removed from `options`."""
    from discomkd_keras.config import data_spec

    o = {key: options.pop(key) for key in DATA_KEYS}
    names = [m.strip() for m in o["modalities"].split(",") if m.strip()] if o["modalities"] else None
    return data_spec(o["source"], o["data_dir"], names, o["split_seed"], o["synthetic_size"],
                     o["synthetic_per_class"], o["fsdd_dir"], o["mnist_path"], o["av_split"],
                     o["test_speaker"], o["pairing"], seed,
                     pairs(o["synthetic_knobs"], "--synthetic-knob", knob_value),
                     o["image_energy"], o["audio_snr_db"], o["audio_noise"],
                     files={"image_size": image_size_items(o["image_sizes"]),
                            "crop_to_aspect": o["crop_to_aspect"],
                            "depth_units": pairs(o["depth_units"], "--depth-unit"),
                            "clip_seconds": o["clip_seconds"],
                            "skip_bad_files": o["skip_bad_files"]})


# The --encoder and --pretrained help of train and compare.
ENCODER_HELP = (
    "Encoder family for all image modalities, or MOD=FAMILY for one; repeatable: "
    + ", ".join(f for f in ENCODER_FAMILIES if f not in APPLICATION_FAMILIES)
    + ", or a keras.applications backbone (any channel count, images of at least 32x32 (files: "
    "--image-size), random weights unless --pretrained): mobilenetv3small (minimalistic: ReLU, "
    "no hard-swish), mobilenetv3small-hardswish, mobilenetv2[-0.75|-0.5|-0.35], efficientnetv2b0.")
PRETRAINED_HELP = ("Start MOD's keras.applications encoders from ImageNet weights (3 channels; "
                   "Keras downloads them once) or from PATH, a .weights.h5 of the backbone "
                   "(discomkd_keras.models.encoders.build_backbone(family, shape).save_weights(PATH)); "
                   "repeatable. Loaded when a run builds its model, never over a checkpoint's "
                   "(--resume).")


# The options a preset fixes, and the optimiser's (train, compare): None = the preset's.
PRESET_HELP = ("Settings by name (every value below is also an option that overrides it). "
               "edge: a small classifier for a device, trained in minutes: encoder by modality "
               "kind and size, D 128, batch 64, early stopping, no augmentation (the default for "
               "your own files); paper: the paper's protocol, ResNet-18 / MLP, D 512, Adam 1e-4, "
               "batch 128, 300 epochs (the default for the released layout). Built-in data sets "
               "have presets of their own (see above).")
AUGMENT_HELP = ("Augmentation of MOD: operations joined by commas, "
                f"{','.join(AUGMENT_OPS)} (flip: left-right mirror; rot90: k x 90 degrees; crop: "
                "random shift by up to 1/8 of the side; contrast: x0.8-1.2 about the mean; noise: "
                "Gaussian, 5% of the sample's std; vectors: noise only), or a whole policy: "
                "flip-rotate (the released script's: with p 0.5 a sample gets random flips and a "
                "quarter turn), flip-rotate-each (each of those with p 0.5), none; repeatable; "
                "deterministic per seed, epoch and step. Default: the preset's (edge: none, since "
                "flips and rotations turn a 6 into a 9; paper and built-in: flip-rotate for "
                "images). Former names: released, independent.")


def optimiser_options(command):
    """The preset, optimiser, early-stopping and class-weight options of train and compare."""
    for option in reversed((
        click.option("--preset", type=click.Choice(PRESET_CHOICES), default=None,
                     help=PRESET_HELP),
        click.option("--schedule", type=click.Choice(SCHEDULES), default=None,
                     help="Learning rate over the run: constant, or cosine decay to 0 at the "
                     "last epoch of --epochs (after the warm-up). Default: the preset's."),
        click.option("--warmup-epochs", type=float, default=None,
                     help="Epochs of linear learning-rate warm-up (fractions allowed). Default: "
                     "the preset's."),
        click.option("--weight-decay", type=float, default=None,
                     help="AdamW's decoupled weight decay (0: Adam). Default: the preset's."),
        click.option("--patience", type=int, default=None,
                     help="Stop once no modality's validation weighted F1 has improved for this "
                     "many epochs (0: never; --epochs is then a ceiling). Default: the preset's "
                     "(edge 5, paper 0)."),
        click.option("--class-weight", type=click.Choice(["balanced"]), default=None,
                     help="balanced: weigh each training sample of class c by n / (K n_c) in "
                     "the task losses (per modality; Keras' class_weight meaning), for "
                     "imbalanced classes."),
    )):
        command = option(command)
    return command


# What --branch says (train, compare).
BRANCH_HELP = ("Each modality's branch, for discomkd, unimodal and the students: separate (the "
               "paper's two encoders, E_inv and E_spec) or shared (one backbone per modality, "
               "z_inv, z_inf and z_irr three projections of it: the deployed classifier holds one "
               "backbone). Not for single or teacher, which have architectures of their own.")


TRAIN_HELP = f"""Train DisCoM-KD: one run learns every modality's classifier.

    With no arguments: the built-in synthetic RGB-D set (6 shapes, RGB + depth),
    a few minutes on a laptop CPU. With --data-dir: your files get the edge preset,
    the released layout the paper's. Presets (--preset; any value is an option):
    {describe_presets()}.

    Before training it prints the plan: per modality the encoder, the exported
    classifier's parameters, MACs and int8 size, and the time from a short probe.

    Per modality, the classifier with the best validation weighted F1 is kept
    in RUN_DIR/best/<modality>.keras; test figures are printed at the end.

    --method picks a baseline instead (the comparison of benchmarks/compare_methods.py):
    unimodal twins, the single-encoder baseline, or a teacher (--method teacher)
    and then its students (--method kd --teacher RUN_DIR). Twins and students
    are the exact networks DisCoM-KD deploys, so their exports and edge demo
    are the same.
    """


def stop_line(run_dir, config):
    """How the run ended: early stopping's epoch and reason, or every epoch trained."""
    from discomkd_keras.run_directory import read_run

    _, state = read_run(run_dir)
    stopped = state.get("stopped_early")
    if stopped:
        return (f"Stopped early after epoch {stopped['epoch']} of at most {config['epochs']}: "
                f"{stopped['reason']}.")
    return f"Trained all {state['epoch']} epochs."


class MethodChoice(click.Choice):
    """--method's choices, read from methods.METHODS each time they are used, so a method
    registered there after this module was imported is taken too."""

    def __init__(self):
        super().__init__(())

    @property
    def choices(self):
        from discomkd_keras.methods import METHODS as registry
        return tuple(registry)

    @choices.setter
    def choices(self, value):  # click.Choice.__init__ sets it; the registry is the source
        pass


# The options of train and compare whose values changed names in 0.1 (old ones still work).
PRECISION_HELP = ("Precision policy: float32, or mixed precision (float16 or bfloat16 compute, "
                  "float32 variables) on a GPU.")
LAYER_DEFAULTS_HELP = ("Layer defaults: kaiming (the released script's PyTorch ones: Kaiming-"
                       "uniform weights, BatchNorm eps 1e-5, Adam eps 1e-8, symmetric padding) or "
                       "glorot (Keras' own: Glorot weights, zero biases, eps 1e-3 / 1e-7, 'same' "
                       "padding). config.json records them as conventions torch / keras.")
OLD_NAMES = (
    click.option("--mixed-precision", "old_precision", type=click.Choice(PRECISIONS), hidden=True,
                 is_flag=False, flag_value="mixed_float16", default=None),
    click.option("--conventions", "old_conventions", type=click.Choice(CONVENTIONS), hidden=True,
                 default=None),
)


def renamed_options(command):
    """--precision and --layer-defaults, with their former names hidden but accepted."""
    for option in reversed((
        click.option("--precision", type=click.Choice(PRECISIONS), default=None,
                     help=PRECISION_HELP + " Default: float32."),
        click.option("--layer-defaults", type=click.Choice(list(LAYER_DEFAULTS)), default=None,
                     help=LAYER_DEFAULTS_HELP + " Default: kaiming."),
    ) + OLD_NAMES):
        command = option(command)
    return command


def take_renamed(options):
    """options["precision"] and ["conventions"] from the new options or, with a note, the
    old ones, else the defaults (TRAIN_DEFAULTS)."""
    old_precision, old_conventions = options.pop("old_precision"), options.pop("old_conventions")
    layer_defaults = options.pop("layer_defaults")
    if old_precision is not None:
        deprecated("--mixed-precision", f"--precision {old_precision}")
    if old_conventions is not None:
        new = {v: k for k, v in LAYER_DEFAULTS.items()}[old_conventions]
        deprecated(f"--conventions {old_conventions}", f"--layer-defaults {new}")
    options["precision"] = options["precision"] or old_precision or TRAIN_DEFAULTS["precision"]
    options["conventions"] = (LAYER_DEFAULTS[layer_defaults] if layer_defaults else
                              old_conventions or TRAIN_DEFAULTS["conventions"])
    return options


# train's --help sections (the data options: DATA_SECTIONS).
DATA_SECTIONS = dict(
    data="source data_dir modalities split_seed image_sizes crop_to_aspect depth_units "
         "clip_seconds skip_bad_files",
    advanced="synthetic_size synthetic_per_class synthetic_knobs fsdd_dir mnist_path av_split "
             "test_speaker pairing image_energy audio_snr_db audio_noise")


@help_sections(
    data=DATA_SECTIONS["data"],
    model="method teacher_run encoders pretrained feature_dim branch layer_defaults",
    training="preset epochs batch_size learning_rate schedule warmup_epochs weight_decay "
             "patience class_weight augment seed",
    run="run_dir config_path resume_dir overwrite strategy precision tensorboard workers "
        "checkpoint_seconds probe_steps quiet",
    advanced=DATA_SECTIONS["advanced"] + " loss_weights perp_mode modality_targets grl_schedule "
             "grl_lambda dkd_warmup_epochs")
@main.command(help=TRAIN_HELP)
@data_options
@click.option("--method", type=MethodChoice(), default=TRAIN_DEFAULTS["method"],
              help=f"The method. {methods_help()}.")
@click.option("--teacher", "teacher_run", type=click.Path(path_type=Path), default=None,
              help="For kd, kd-mix, dkd and mlkd: a run trained with --method teacher on the same "
              "data.")
@click.option("--encoder", "encoders", multiple=True, metavar="[MOD=]FAMILY",
              help=f"{ENCODER_HELP} Vector modalities always default to mlp.")
@click.option("--pretrained", "pretrained", multiple=True, metavar="MOD=imagenet|PATH",
              help=PRETRAINED_HELP)
@click.option("--feature-dim", type=int, default=None,
              help="D, even (z_* get D/2 each). Default: the preset's.")
@click.option("--branch", type=click.Choice(DISCOMKD_BRANCHES), default=TRAIN_DEFAULTS["branch"],
              help=BRANCH_HELP)
@click.option("--epochs", type=int, default=None,
              help="Epochs (one pass over the largest modality); with early stopping, a ceiling. "
              "Default: the preset's.")
@click.option("--batch-size", type=int, default=None,
              help="Per modality. Default: the preset's (edge 64, paper 128).")
@click.option("--lr", "learning_rate", type=float, default=None,
              help="Peak learning rate (Adam, or AdamW with --weight-decay). Default: the preset's.")
@optimiser_options
@click.option("--loss-weight", "loss_weights", multiple=True, metavar="TERM=W",
              help="Weight of cl, adv, mod, aux or perp (default 1; 0 switches it off); repeatable.")
@click.option("--perp-mode", type=click.Choice(PERP_MODES), default=TRAIN_DEFAULTS["perp_mode"],
              help="How L_perp penalises the cosine.")
@click.option("--modality-targets", type=click.Choice(MODALITY_TARGETS),
              default=TRAIN_DEFAULTS["modality_targets"], help="Targets of L_adv and L_mod: "
              "integer modality labels (the paper), or the released script's all-ones / all-zeros "
              "probability vectors (to reproduce its numbers).")
@renamed_options
@click.option("--grl-schedule", type=click.Choice(GRL_SCHEDULES),
              default=TRAIN_DEFAULTS["grl_schedule"],
              help="Gradient-reversal lambda: constant (paper) or the DANN ramp.")
@click.option("--grl-lambda", type=float, default=TRAIN_DEFAULTS["grl_lambda"],
              help="Gradient-reversal lambda (the ramp's maximum with --grl-schedule dann).")
@click.option("--dkd-warmup", "dkd_warmup_epochs", type=float,
              default=TRAIN_DEFAULTS["dkd_warmup_epochs"],
              help="--method dkd: epochs over which the distillation weight ramps up linearly.")
@click.option("--augment", "augment", multiple=True, metavar="MOD=OPS", help=AUGMENT_HELP)
@click.option("--seed", type=int, default=TRAIN_DEFAULTS["seed"], help="Seed of the whole run.")
@click.option("--run-dir", "--out", "run_dir", type=click.Path(path_type=Path), default=None,
              help="The run's folder (default: runs/<timestamp>-<dataset>).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              metavar="RUN_DIR/config.json", help="Repeat a saved run's settings: its data and "
              "every resolved value; options given on this command line override them (data "
              "options excepted: the data is the run's).")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), default=None,
              help="Continue the run in this directory from its last finished epoch, same config.")
@click.option("--overwrite", is_flag=True, help="Replace whatever --run-dir holds.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=TRAIN_DEFAULTS["strategy"],
              help="auto: the default device; mirrored: all GPUs of this machine "
              "(tf.distribute.MirroredStrategy; on jax keras.distribution.DataParallel); "
              "multiworker: several machines, from TF_CONFIG (tensorflow) or "
              "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID (jax); the chief "
              "alone writes the run directory (docs/training.md, 'More than one machine').")
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard logs to RUN_DIR/tensorboard.")
@click.option("--workers", type=int, default=TRAIN_DEFAULTS["workers"],
              help="Threads preparing batches.")
@click.option("--checkpoint-every", "checkpoint_seconds", type=float,
              default=TRAIN_DEFAULTS["checkpoint_seconds"], help="Seconds of training a crash "
              "may lose (at least one epoch is always kept): the resume checkpoint is written no "
              "more often; 0: every epoch.")
@click.option("--probe-steps", type=int, default=5,
              envvar="DISCOMKD_PROBE_STEPS", show_envvar=True,
              help="Training steps the plan times (after one that traces) to estimate the run's "
              "time; 0: print the plan without a time.")
@click.option("--quiet", is_flag=True, help="No progress bar, no per-epoch lines. (When stdout is "
              "not a terminal, each epoch is one plain line instead of the bar.)")
@click.pass_context
def train(ctx, encoders, resume_dir, run_dir, config_path, overwrite, quiet, probe_steps,
          **options):
    from discomkd_keras.distribution import LostWorkerError
    from discomkd_keras.training import resume_run, start_run

    # A terminal gets Keras' progress bar; a file (nohup, a cluster job) one line per epoch.
    verbose = 0 if quiet else 1 if sys.stdout.isatty() else 2
    try:
        take_renamed(options)
        if resume_dir is not None:
            run_dir, config, results = resume_run(resume_dir, log=click.echo, verbose=verbose)
        else:
            options.update(loss_weights=pairs(options["loss_weights"], "--loss-weight", float),
                           augment=pairs(options["augment"], "--augment"),
                           pretrained=pairs(options["pretrained"], "--pretrained"),
                           teacher_run=str(options["teacher_run"]) if options["teacher_run"] else None)
            if config_path is not None:
                spec, options, encoders = saved_settings(ctx, config_path, options, encoders)
            else:
                spec = pop_data_spec(options, options["seed"])
            run_dir, config, results = start_run(spec, options, encoders, run_dir, overwrite,
                                                 log=click.echo, verbose=verbose,
                                                 probe_steps=max(0, probe_steps))
    except LostWorkerError as err:
        # Interpreter shutdown would meet Keras' batch threads still blocked on the aborted
        # collectives (and print their tracebacks): leave at once, the checkpoint is on disk.
        click.echo(f"Error: {err}", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)
    except errors() as err:
        fail(str(err))
    print_summary(run_dir, results, config)
    if run_dir is not None:
        click.echo(f"Preset {config.get('preset') or '-'} (every resolved value in "
                   f"{run_dir}/config.json). {stop_line(run_dir, config)}")


def saved_settings(ctx, config_path, options, encoders):
    """(data spec, training options, encoder items) of `train --config`: the saved run's,
    overridden by the options this command line gave (ConfigError for a data option)."""
    import json

    from click.core import ParameterSource

    from discomkd_keras.config import ConfigError

    given = {name for name in ctx.params
             if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                                   ParameterSource.ENVIRONMENT)}
    data_given = sorted(given & set(DATA_KEYS))
    if data_given:
        raise ConfigError(f"--config repeats the saved run's data; drop --"
                          f"{data_given[0].replace('_', '-')} (or train without --config).")
    try:
        saved = json.loads(Path(config_path).read_text())
        spec = dict(saved["data"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"--config {config_path}: not a run's config.json ({err}).") from None
    for key in DATA_KEYS:
        options.pop(key, None)
    # The options the command line left alone take the saved run's resolved values.
    aliases = {"precision": ("old_precision",), "conventions": ("layer_defaults", "old_conventions")}
    for key, value in saved.items():
        if key in TRAIN_DEFAULTS and key in options and key != "encoders" and \
                not ({key, *aliases.get(key, ())} & given):
            options[key] = value
    if "encoders" not in given:
        encoders = tuple(f"{m}={family}" for m, family in (saved.get("encoders") or {}).items()
                         if isinstance(family, str))
    return spec, options, encoders


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--max-points", type=int, default=400, show_default=True,
              help="Test samples per modality in the embedding map.")
def evaluate(run_dir, max_points):
    """Test accuracy, weighted F1, confusion matrices and the z_inv / z_inf /
    z_irr embedding map of a run (default: the most recent under runs/).

    Writes RUN_DIR/evaluation/: results.json (with each classifier's per-class
    precision, recall, F1, support and macro F1), per_class.csv (modality, class,
    precision, recall, f1, support), confusion_<modality>.png and embeddings.png
    (PCA, coloured by modality and by class: z_inv should mix the modalities, z_inf
    and z_irr should separate them). Prints each classifier's three worst classes by F1.
    """
    from discomkd_keras.evaluation import evaluate_run, worst_classes_line
    from discomkd_keras.run_directory import latest_run

    try:
        run_dir = run_dir or latest_run()
        results = evaluate_run(run_dir, max_points=max_points, log=click.echo)
    except errors() as err:
        fail(str(err))
    separation = results.pop("_modality_separation", None)
    print_summary(run_dir, results)
    worst = worst_classes_line(results)
    if worst:
        click.echo(worst)
    if separation:
        click.echo("Modality separability (nearest-centroid accuracy; ~1/M = mixed, 1 = separated): "
                   + ", ".join(f"{k} {v:.2f}" for k, v in separation.items()))
    click.echo(f"Figures in {Path(run_dir) / 'evaluation'}")


COMPARE_HELP = f"""Does DisCoM-KD beat training each modality alone, on your data?

    Trains --methods x --seeds runs on the data (any data option `train` takes),
    then writes OUT/report.md, report.json and report.png: per modality each
    method's test weighted F1 and accuracy (mean +- std over seeds), the paired
    per-seed difference of DisCoM-KD against each baseline with its 95% interval,
    a verdict in words ("DisCoM-KD helps depth: +4.4 [+2.4, +6.4] ...", "hurts",
    or "no evidence either way"), and what each deployed classifier costs.
    Methods are chosen on the validation split, never the test split.

    Before training it prints the plan and an estimated time (from a 5-step probe);
    finished runs are reused, so the same command resumes an interrupted comparison.
    --export-best exports each modality's best classifier (mean validation F1,
    ties to the cheaper) to OUT/export/<modality>/ with the usual verification.

    Methods: {', '.join(COMPARE_METHODS)} (default: {','.join(DEFAULT_METHODS)};
    students need teacher, which needs paired data).
    """


@help_sections(
    data=DATA_SECTIONS["data"],
    model="methods encoders pretrained feature_dim branch layer_defaults",
    training="seeds preset epochs batch_size learning_rate schedule warmup_epochs weight_decay "
             "patience class_weight augment",
    run="out_dir runs_dir export precision quiet",
    advanced=DATA_SECTIONS["advanced"])
@main.command(help=COMPARE_HELP)
@data_options
@click.option("--methods", default=",".join(DEFAULT_METHODS), show_default=True,
              help="Comma-separated methods to compare (see above).")
@click.option("--seeds", type=int, default=5, show_default=True, help="Seeds 0..N-1 per method.")
@click.option("--encoder", "encoders", multiple=True, metavar="[MOD=]FAMILY",
              help=f"{ENCODER_HELP} Default: the data source's preset.")
@click.option("--pretrained", "pretrained", multiple=True, metavar="MOD=imagenet|PATH",
              help=PRETRAINED_HELP)
@click.option("--feature-dim", type=int, default=None, help="D, even. Default: the preset's.")
@click.option("--branch", type=click.Choice(DISCOMKD_BRANCHES), default="separate",
              show_default=True, help=BRANCH_HELP + " Single and teacher runs keep theirs.")
@click.option("--epochs", type=int, default=None,
              help="Epochs per run (a ceiling with early stopping). Default: the preset's.")
@click.option("--batch-size", type=int, default=None, help="Per modality. Default: the preset's.")
@click.option("--lr", "learning_rate", type=float, default=None,
              help="Peak learning rate. Default: the preset's.")
@optimiser_options
@click.option("--augment", "augment", multiple=True, metavar="MOD=OPS",
              help="Augmentation per modality, as for train; repeatable.")
@renamed_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Where report.* (and export/) go. Default: runs/compare-<data set>.")
@click.option("--runs-dir", type=click.Path(path_type=Path), default=None,
              help="Where the runs go. Default: OUT/runs.")
@click.option("--export-best", "export", is_flag=True,
              help="Export each modality's best classifier to OUT/export/<modality>/.")
@click.option("--quiet", is_flag=True, help="Only the plan and one line per run.")
def compare(methods, seeds, encoders, out_dir, runs_dir, export, quiet, **options):
    import shlex

    from discomkd_keras.comparison import compare as run_compare, summarise

    import logging
    import os

    verbose = 0 if quiet else 1 if sys.stdout.isatty() else 2
    # Each run's classifiers trace their own predict step; TensorFlow would call that excessive.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # The command as typed, but no absolute path of this machine: paths inside the working
    # folder are written relative to it.
    here = os.getcwd()
    words = [os.path.relpath(a, here) if os.path.isabs(a) and a.startswith(here + os.sep) else a
             for a in sys.argv[1:]]
    command = "discomkd-keras " + " ".join(shlex.quote(a) for a in words)
    try:
        take_renamed(options)
        spec = pop_data_spec(options, 0)
        options.update(augment=pairs(options["augment"], "--augment"),
                       pretrained=pairs(options["pretrained"], "--pretrained"))
        names = [m.strip() for m in methods.split(",") if m.strip()]
        raw, paths = run_compare(spec, options, encoders, names, seeds, out_dir, runs_dir, export,
                                 command, log=click.echo, verbose=verbose)
    except errors() as err:
        fail(str(err))
    verdicts = summarise(raw).get("verdicts", {}).values()
    click.echo("\n" + "".join(f"- {v}\n" for v in verdicts)
               + f"\nReport: {paths[1]} (and {paths[0].name}, {paths[2].name})")


PREDICT_HELP = """Classify files with a run's Keras classifiers or an exported model.

    TARGET is a run directory (each modality's best/<modality>.keras) or an
    export folder as `discomkd-keras export` writes it (one modality's folder, or
    RUN_DIR/export with one folder per modality: run with LiteRT, as on the
    device). INPUTS are files or folders (walked recursively, hidden files
    skipped); each file is read exactly as training read its modality's files.

    A file goes to the modality of its encoding: a 16-bit PNG to the depth
    modality, an 8-bit PNG or JPEG to the 8-bit image one, a WAV to the audio one,
    a TIFF to the bands one, a .npy to the one whose sample shape it has. Where two
    modalities could take a file, --modality says which. Files of types no modality
    takes are ignored (and counted) in folders and refused when named; a file of
    another encoding (an 8-bit PNG where the only image modality is depth) or an
    unreadable one stops the command with one line naming it, before anything is
    printed.

    Prints one line per input: path, modality, top-1 class and its probability,
    the top-k.

    \b
    Examples:
      discomkd-keras predict runs/20250101-120000-files photos/ depth/
      discomkd-keras predict runs/20250101-120000-files/export/depth scan.png
      discomkd-keras predict RUN_DIR test/ --csv predictions.csv --against RUN_DIR/export
    """


@main.command("predict", help=PREDICT_HELP)
@click.argument("target", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--modality", default=None,
              help="Send every input to this modality (files of other types in folders are "
              "ignored); needed where two modalities could take a file (e.g. two RGB ones).")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True,
              help="Classes listed per input (at most the number of classes).")
@click.option("--csv", "csv_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the predictions here (written whole, then renamed): path, modality, "
              "top1, probability, topk as class:prob;class:prob.")
@click.option("--against", "export_dir", type=click.Path(path_type=Path), default=None,
              help="TARGET being a run directory: also predict with this export folder and print "
              "the top-1 agreement of the Keras classifier and the exported model on INPUTS.")
def predict(target, inputs, modality, top_k, csv_file, export_dir):
    from discomkd_keras.edge_demo.preprocessing import InputError
    from discomkd_keras.edge_demo.runtime import ModelFileError
    from discomkd_keras.predict import (csv_text, format_row, predict_against, predict_files)
    from discomkd_keras.run_directory import write_atomic

    if csv_file is not None and not csv_file.resolve().parent.is_dir():
        fail(f"--csv {csv_file}: the folder {csv_file.resolve().parent} does not exist.")
    summary = None
    try:
        if export_dir is not None:
            rows, summary = predict_against(target, export_dir, inputs, modality, top_k)
        else:
            rows = predict_files(target, inputs, modality, top_k)
        if csv_file is not None:
            write_atomic(csv_file, csv_text(rows))
    except errors() + (InputError, ModelFileError) as err:
        fail(str(err))
    width = min(60, max((len(r["path"]) for r in rows), default=0))
    for row in rows:
        click.echo(format_row(row, width))
    counts = {}
    for row in rows:
        counts[row["modality"]] = counts.get(row["modality"], 0) + 1
    model = "Keras classifier" if rows.target == "run" else "exported model"
    click.echo(f"\n{len(rows)} input{'s' if len(rows) != 1 else ''} classified by {target}'s "
               f"{model}{'s' if len(counts) > 1 else ''} ("
               + ", ".join(f"{m} {n}" for m, n in counts.items()) + ").")
    if rows.ignored:
        types = {}
        for path in rows.ignored:
            types[path.suffix.lower() or "(none)"] = types.get(path.suffix.lower() or "(none)", 0) + 1
        n = len(rows.ignored)
        click.echo(f"Ignored {n} file{'s' if n != 1 else ''} of a type no modality takes: "
                   + ", ".join(f"{s} {c}" for s, c in sorted(types.items())) + ".")
    for note, n in rows.notes.items():
        click.echo(f"Note: {note.rstrip('.')} ({n} input{'s' if n != 1 else ''}).")
    if csv_file is not None:
        click.echo(f"Wrote {csv_file}.")
    if summary is not None:
        agree, total = summary["agree"], summary["total"]
        click.echo(f"\nKeras classifier vs {export_dir}:")
        click.echo(f"top-1 agreement: {agree}/{total} ({100 * agree / total:.1f}%)")
        if len(summary["by_modality"]) > 1:
            for m, (a, n) in summary["by_modality"].items():
                click.echo(f"  {m}: {a}/{n} ({100 * a / n:.1f}%)")
        for path, m, (kc, kp), (ec, ep) in summary["differences"][:10]:
            click.echo(f"  differs: {path} ({m}): Keras {kc} {kp:.3f}, export {ec} {ep:.3f}")
        if len(summary["differences"]) > 10:
            click.echo(f"  ... and {len(summary['differences']) - 10} more")
        for m, n in summary["not_compared"].items():
            click.echo(f"  not compared: {n} {m} file{'s' if n != 1 else ''} (the export "
                       f"holds no {m} model)")
        for m in summary["other_checkpoint"]:
            click.echo(f"  note: the {m} export was made from another checkpoint than "
                       f"{target}/best/{m}.keras (its sha256 differs): not this run's model")




if __name__ == "__main__":
    main()


# --- the converter side (export/) ---------------------------------------------------
QUANTIZE_HELP = (
    "int8: full-integer post-training quantization (representative data from the run's "
    "training split; the input layers stay float only if the full-integer model disagrees "
    "with Keras on the validation split); int8-integer-only: never float layers (fail "
    "instead: integer-only accelerators); int8-float-input: input layers always float; "
    "int8-per-tensor / dynamic-per-tensor: one weight scale per kernel instead of per output "
    "channel (smaller, usually a little less accurate); float16 / dynamic: weights only; "
    "float32: none.")


@main.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--modality", default="all", help="Modality to export, or all.")
@click.option("--quantize", "variant", type=click.Choice(list(QUANTIZATION_VARIANTS)),
              default="int8", help=QUANTIZE_HELP)
@click.option("--io", "io_type", type=click.Choice(IO_TYPES), default="float32",
              help="Input/output tensor type (int8/uint8 only with int8 quantizations; the card "
              "gives the scale and zero point).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output folder (default RUN_DIR/export); writes OUT/<modality>/.")
@click.option("--representative-size", type=int, default=300,
              help="Training samples used to calibrate int8 quantization.")
@click.option("--threshold", type=float, default=None,
              help="Minimum TFLite-vs-Keras argmax agreement on the test split "
              "(default 0.98 int8/dynamic, 0.995 float16, 0.999 float32).")
@click.option("--per-tensor", is_flag=True, hidden=True)  # before 0.1: --quantize int8-per-tensor
@click.option("--integer-only", is_flag=True, hidden=True)  # --quantize int8-integer-only
@click.option("--overwrite", is_flag=True, help="Replace an existing export folder.")
@click.option("--check", "check_dir", type=click.Path(path_type=Path), default=None,
              help="Re-run the verification of an existing export folder against RUN_DIR "
              "(default: the run the folder sits in) and exit: 0 passed, 2 failed or bad input.")
def export_command(run_dir, modality, check_dir, out_dir, variant, per_tensor, integer_only,
                   **options):
    """Export each modality's best classifier (or --modality's) as a standalone,
    quantized, verified TFLite model: OUT/<modality>/{<modality>.tflite, labels.txt,
    model_card.json}.

    RUN_DIR defaults to the most recent run under runs/. Every export runs the
    TFLite model with the LiteRT interpreter on the run's test split and
    compares it with the Keras classifier; below --threshold nothing is written.
    Exit status 0 done; 2 a failed check or a mistake in the input (one Error:
    line); 1 a bug.
    """
    from discomkd_keras.export import check_export, export_modalities, format_report
    from discomkd_keras.run_directory import latest_run

    if per_tensor or integer_only:
        base, how = variant.split("-")[0], "per-tensor" if per_tensor else "integer-only"
        deprecated(f"--{how}", f"--quantize {base}-{how}")
        variant = f"{base}-{how}"
        if variant not in QUANTIZATION_VARIANTS:
            fail(f"--{how} applies to {'int8 and dynamic' if per_tensor else 'int8'} "
                 f"quantization, not {base}.")
    try:
        if check_dir is not None:
            card, report = check_export(check_dir, run_dir)
            click.echo(format_report(card["modality"], report))
            if not report["passed"]:  # an export problem, as any other: exit 2
                fail(f"{check_dir} failed its check against the run (see above); export it "
                     "again.")
            return
        run_dir = run_dir or latest_run()

        def written(folder, card):
            click.echo(format_report(card["modality"], card["verification"]))
            click.echo(f"Wrote {folder}/ ({card['file_size_bytes'] / 1024:.1f} KiB model). "
                       f"On the device: discomkd-edge classify {folder} INPUT_FILE (or python "
                       "edge_demo/classify.py)\n")

        export_modalities(run_dir, modality, out_dir=out_dir, log=click.echo, on_export=written,
                          **QUANTIZATION_VARIANTS[variant], **options)
    except errors() as err:
        fail(str(err))


@main.command("bench-export")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--modality", default="all", help="Modality, or all.")
@click.option("--quantize", "quantizations", default="float32,float16,dynamic,int8,int8-per-tensor",
              help="Comma-separated quantizations to compare, named as export --quantize names "
              f"them: {', '.join(QUANTIZATION_VARIANTS)}.")
@click.option("--runs", type=int, default=200,
              help="Timed batch-1 invocations per model and thread count.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Also write the Markdown tables to OUT/bench-export.md.")
def bench_export_command(run_dir, modality, quantizations, runs, out_dir):
    """Compare quantizations of a run's classifiers: file size and ratio to
    float32, test weighted F1, TFLite/Keras agreement, median 1- and 2-thread
    latency, parameters and MACs. Figures are printed (and optionally saved)."""
    from discomkd_keras.export.benchmark import bench_export_run
    from discomkd_keras.run_directory import latest_run

    wanted = [q.strip() for q in quantizations.split(",") if q.strip()]
    unknown = [q for q in wanted if q not in QUANTIZATION_VARIANTS]
    if unknown or not wanted:
        fail(f"--quantize: unknown quantization {unknown[0] if unknown else '(none)'!r}; "
             f"expected some of {', '.join(QUANTIZATION_VARIANTS)}.")
    try:
        out_file = None
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            out_file = Path(out_dir) / "bench-export.md"
        for table in bench_export_run(run_dir or latest_run(), modality, wanted, runs, out_file,
                                      log=click.echo):
            click.echo(table + "\n")
        if out_file is not None:
            click.echo(f"Wrote {out_file}")
    except errors() as err:
        fail(str(err))


@main.command("serve-demo", cls=click.Command)  # TF-free: starts no Keras backend
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1",
              help="Address to listen on (127.0.0.1: this machine only; 0.0.0.0 for a phone on "
              "the same network).")
@click.option("--port", type=int, default=8000, help="Port (0: any free one).")
@click.option("--https", nargs=2, type=click.Path(path_type=Path), default=None,
              metavar="CERT KEY", help="Serve HTTPS with this PEM certificate and key (a phone's "
              "camera needs HTTPS off localhost).")
def serve_demo(export_dir, host, port, https):
    """Serve the web page (edge_demo/web, LiteRT.js) that runs EXPORT_DIR's classifiers
    in a browser, on files or camera frames; the same as `discomkd-edge serve`. Needs
    `npm ci` in edge_demo/web once. Prints the URLs; Ctrl-C stops it (exit 0)."""
    import argparse

    from discomkd_keras.edge_demo import serve

    args = argparse.Namespace(export_dir=str(export_dir), host=host, port=port,
                              https=[str(p) for p in https] if https else None, web=serve.WEB_DIR)
    try:
        sys.exit(serve.serve(args))
    except (serve.ServeError, *errors()) as err:
        fail(str(err))
