"""Training runs: the model a config describes and the fit loop. The CLI's `train`
is a thin layer over `start_run` and `resume_run`; devices and processes live in
`distribution.py`, the per-epoch recorder in `recorder.py`, the run directory's
layout in `run_directory.py`, the methods in `methods.py`.
"""

import shutil
from pathlib import Path

import keras
import numpy as np

from discomkd_keras.config import (ConfigError, merged_options, preset_choices,
                                   resolve_config, with_preset)
from discomkd_keras.data import load_data
from discomkd_keras.distribution import (across_processes, build_from_batch, lost_worker,
                                         make_strategy, multiworker_task,  # noqa: F401
                                         start_jax_processes, this_process_only, worker_dir)
from discomkd_keras.evaluation import score_best_classifiers
from discomkd_keras.learning_rate import make_learning_rate
from discomkd_keras.methods import JOINT_CLASSIFIER, method_of
from discomkd_keras.models.conventions import ADAM_EPSILON
from discomkd_keras.models.pretrained import apply_pretrained
from discomkd_keras.recorder import (RunInterrupted, RunRecorder,  # noqa: F401
                                     epochs_without_improvement, stop_on_ctrl_c)
from discomkd_keras.run_directory import (CONFIG, RunError, best_path, default_run_dir,
                                          fresh_state, load_checkpoint, load_model_file,
                                          lock_run_dir, prepare_run_dir, read_history, read_run,
                                          write_json)


def build_model(config):
    """The training model a run's config describes, untrained (methods.py builds it)."""
    return method_of(config).build(config)


def make_optimizer(config, steps_per_epoch=1):
    """Adam with the run's learning rate (a float, or its warm-up / cosine schedule over
    the epoch ceiling) and its conventions' epsilon (PyTorch 1e-8); AdamW when the run
    has a weight decay (decoupled, on every weight: Keras' default)."""
    learning_rate = make_learning_rate(config, steps_per_epoch)
    epsilon = ADAM_EPSILON[config.get("conventions", "keras")]
    weight_decay = float(config.get("weight_decay") or 0.0)
    if weight_decay:
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay, epsilon=epsilon)
    return keras.optimizers.Adam(learning_rate, epsilon=epsilon)


# --- train ------------------------------------------------------------------------
def start_run(spec, options, encoder_items=(), run_dir=None, overwrite=False, log=print, verbose=1,
              probe_steps=None, callbacks=(), data=None):
    """Load the data of `spec`, resolve the config (the preset's values where an option
    is None: options["preset"], else the data source's), create the run directory and
    train; return (run_dir, config, results).

    encoder_items: `[MOD=]FAMILY` strings, as `--encoder` takes them.
    probe_steps: None, no plan; else print the plan (plan.py) first, with a time
        estimate from that many timed training steps when > 0.
    callbacks: more Keras callbacks for fit (see train_run).
    data: the MultiModalDataset of `spec`, if the caller has it (in-memory arrays).
    """
    options = with_preset(options, spec["source"])
    merged_options(options)  # bad values fail before the data loads
    if options.get("strategy") == "multiworker" and keras.backend.backend() == "jax":
        start_jax_processes()  # before any JAX computation
    if data is None:
        log(f"Loading {spec['source']} data ...")
        data = load_data(spec)
    if data.description:
        log(data.description)
    config = resolve_config(spec, data, preset_choices(options, data, encoder_items))
    worker = multiworker_task() if config["strategy"] == "multiworker" else None
    if worker and not worker["chief"]:
        with worker_dir(worker, log) as scratch:
            return None, config, train_run(config, scratch, data=data, verbose=verbose, log=log,
                                           callbacks=callbacks)
    run_dir = prepare_run_dir(run_dir or default_run_dir(data.name), overwrite=overwrite)
    log(f"Run directory: {run_dir}")
    described = [f"{m} {tuple(shape)} [{config['encoders'].get(m, 'default')}]"
                 for m, shape in config["input_shapes"].items()]
    log(f"Method {config['method']}; modalities: {', '.join(described)}; "
        f"{len(config['class_names'])} classes; {config['epochs']} epochs")
    if probe_steps is not None and config["strategy"] == "multiworker":
        # TensorFlow's collectives must be configured before any op runs: no model first.
        log("Plan: not probed with --strategy multiworker (the cluster must start before any "
            "model is built).")
    elif probe_steps is not None:
        from discomkd_keras.plan import make_plan, plan_lines

        for line in plan_lines(make_plan(config, data, probe_steps)):
            log(line)
    return run_dir, config, train_run(config, run_dir, data=data, verbose=verbose, log=log,
                                      callbacks=callbacks)


def resume_run(run_dir, log=print, verbose=1, data=None, callbacks=()):
    """Continue a run from its last checkpoint; return (run_dir, config, results).
    A multi-worker run's other workers read RUN_DIR (the chief's, on a shared disk
    or a copy) and continue from a private copy of it."""
    config, _ = read_run(run_dir)
    if config["strategy"] == "multiworker" and keras.backend.backend() == "jax":
        start_jax_processes()  # before any JAX computation
    worker = multiworker_task() if config["strategy"] == "multiworker" else None
    if worker and not worker["chief"]:
        with worker_dir(worker, log) as scratch:
            shutil.copytree(run_dir, scratch, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".lock", "tensorboard", "plots"))
            return None, config, train_run(None, scratch, data=data, resume=True, verbose=verbose,
                                           log=log, callbacks=callbacks)
    log(f"Resuming {run_dir}")
    return Path(run_dir), config, train_run(None, run_dir, data=data, resume=True,
                                            verbose=verbose, log=log, callbacks=callbacks)


def constant_modalities(data, split="train", rows=512):
    """Modalities whose `split` values are all one number (a dead sensor, an all-zero
    array): nothing to learn from. Up to `rows` evenly spaced rows are read (files
    stay on disk); an in-memory array is checked whole."""
    found = []
    for m in data.modalities:
        x, _ = data.split(m, split)
        if len(x) == 0:
            continue
        sample = np.asarray(x if isinstance(x, np.ndarray)
                            else x[np.unique(np.linspace(0, len(x) - 1, rows).astype(int))])
        if sample.size and sample.min() == sample.max():
            found.append((m, float(sample.flat[0])))
    return found


def train_run(config, run_dir, data=None, resume=False, verbose=1, log=print, callbacks=()):
    """Train (or resume) the run in `run_dir`; return {modality: test metrics}.

    verbose: 0 silent, 1 Keras' progress bar (a terminal), 2 one plain line per
    epoch on stdout (a log file: no carriage returns or escape codes).

    For a new run, `config` comes from `resolve_config` and `run_dir` from
    `prepare_run_dir`. With `resume`, both the config and the data spec are
    read back from `run_dir`. `callbacks` (Keras callbacks: CSVLogger, EarlyStopping, your
    own) run after the run's own, so their `logs` hold each kept classifier's validation
    weighted F1 and accuracy as val_<name>_f1 and val_<name>_accuracy. The process holds
    the run directory's lock
    throughout (RunError if a live run holds it). Ctrl-C stops at the next step
    with a checkpoint and raises RunInterrupted; a full disk raises DiskFullError.
    """
    run_dir = Path(run_dir)
    lock = lock_run_dir(run_dir)
    policy = keras.mixed_precision.global_policy().name
    try:
        return _train_locked(config, run_dir, data, resume, verbose, log, callbacks)
    finally:
        # The run's precision is its own: the caller's models (a test, a notebook) keep theirs.
        keras.mixed_precision.set_global_policy(policy)
        if lock:
            lock.close()


def make_batches(config, data, epoch=0, share=(0, 1)):
    """The run's training batches: paired rows for a teacher and its students, else one
    stream per modality; per-sample class weights with --class-weight balanced."""
    from discomkd_keras.data.unpaired_batches import (PairedBatches, UnpairedBatches,
                                                      balanced_class_weights)

    paired = method_of(config).paired
    weights = balanced_class_weights(data) if config.get("class_weight") == "balanced" else None
    return (PairedBatches if paired else UnpairedBatches)(
        data, batch_size=config["batch_size"], augment=config["augment"], seed=config["seed"],
        epoch=epoch, workers=config["workers"], share=share, class_weights=weights)


def _train_locked(config, run_dir, data, resume, verbose, log, extra_callbacks=()):
    if resume:
        config, state = read_run(run_dir)
        if state["epoch"] >= config["epochs"]:
            raise RunError(f"{run_dir} already finished all {config['epochs']} epochs; "
                           "nothing to resume (evaluate it with: discomkd-keras evaluate).")
        if state.get("stopped_early"):
            raise RunError(f"{run_dir} stopped early at epoch {state['stopped_early']['epoch']} "
                           f"({state['stopped_early']['reason']}); nothing to resume (evaluate "
                           "it with: discomkd-keras evaluate).")
    else:
        write_json(run_dir / CONFIG, config)
        state = fresh_state()
    if data is None:
        data = load_data(config["data"])
    for m, value in constant_modalities(data):
        log(f"Warning: every training value of modality {m!r} is {value:g} (a dead sensor or an "
            f"empty array?): its classifier has nothing to learn from.")

    method = method_of(config)
    keras.utils.set_random_seed(int(config["seed"]) + state["epoch"])
    keras.mixed_precision.set_global_policy(config["precision"])
    strategy = make_strategy(config["strategy"])
    if getattr(strategy, "num_replicas_in_sync", 1) > 1:
        print(f"Training on {strategy.num_replicas_in_sync} replicas")
    share = (0, 1)
    if across_processes():  # each process feeds its share of every global batch
        import jax
        share = (jax.process_index(), jax.process_count())
        if config["batch_size"] % share[1]:
            raise ConfigError(f"--batch-size {config['batch_size']} must be a multiple of the "
                              f"{share[1]} processes that share each batch.")
    batches = make_batches(config, data, epoch=state["epoch"], share=share)
    # Rows of epochs after the last checkpoint (a crash between the two writes) are dropped.
    rows = [r for r in read_history(run_dir) if r["epoch"] <= state["epoch"]]

    with strategy.scope():
        if state["checkpoint"]:
            model = load_checkpoint(run_dir, config, state)
        else:
            model = build_model(config)
            try:  # pretrained backbones start a new model, never replace a checkpoint's weights
                apply_pretrained(model, config.get("pretrained"))
            except ValueError as err:
                raise ConfigError(str(err)) from None
            if method.teacher:  # a student: the frozen teacher gets its finished run's weights
                model.load_teacher_weights(
                    load_model_file(best_path(config["teacher_run"], method.teacher)))
            model.compile(optimizer=make_optimizer(config, len(batches)))
        if method.joint:
            classifiers = {JOINT_CLASSIFIER: model}
        else:
            classifiers = {m: model.classifier(m) for m in data.modalities}

    if keras.backend.backend() == "tensorflow" and config["strategy"] != "auto":
        build_from_batch(model, batches.batch(0, 0))
    epoch_log = (lambda line: print(line, flush=True)) if verbose == 2 else None
    recorder = RunRecorder(run_dir, data, config, state, rows, classifiers, len(batches),
                           epoch_log=epoch_log)
    callbacks = [recorder]
    schedules = method.make_schedules(config, len(batches))
    callbacks = schedules + callbacks
    if config["tensorboard"]:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")))
    callbacks += list(extra_callbacks)
    epoch, step = state["epoch"], state.get("step", 0)
    fit_verbose = 1 if verbose == 1 else 0
    # `batches` is an endless stream that set_epoch positions; Keras must not reorder it.
    with stop_on_ctrl_c(recorder), lost_worker(config, run_dir, recorder):
        if step:  # stopped mid-epoch: finish that epoch from its next step
            for c in schedules + [recorder]:
                c.step_offset = step
            batches.set_epoch(epoch, step)
            model.fit(batches, epochs=epoch + 1, initial_epoch=epoch,
                      steps_per_epoch=len(batches) - step, shuffle=False, callbacks=callbacks,
                      verbose=fit_verbose)
            for c in schedules:
                c.step_offset = 0
            epoch += 1
        if recorder.stopped_at is None and epoch < config["epochs"]:
            batches.set_epoch(epoch)
            model.fit(batches, epochs=config["epochs"], initial_epoch=epoch,
                      steps_per_epoch=len(batches), shuffle=False, callbacks=callbacks,
                      verbose=fit_verbose)
    if recorder.stopped_at is not None:
        done, steps = recorder.stopped_at
        where = f"epoch {done} of {config['epochs']}" + (
            f" and {steps} of epoch {done + 1}'s {len(batches)} steps" if steps else "")
        raise RunInterrupted(f"Interrupted: {run_dir} is checkpointed after {where}. Continue "
                             f"with: discomkd-keras train --resume {run_dir}")
    with this_process_only():
        return score_best_classifiers(run_dir, data, config)
