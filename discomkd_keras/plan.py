"""The plan a run prints before it trains: per modality the encoder and what the
classifier to be exported costs (deployed parameters, multiply-accumulates, an
int8 size), then the epochs and a time estimate from a short probe.

The probe builds the run's model, takes one training step to trace it (not
timed), then times `probe_steps` more steps and one validation batch per
classifier; the model is thrown away, so the run itself starts exactly as it
would without a probe (its seed is set afterwards, in train_run).
"""

import time

import numpy as np

from discomkd_keras.config import PI_CLASS_PARAMETERS
from discomkd_keras.methods import JOINT_CLASSIFIER
from discomkd_keras.model_cost import count_macs, int8_bytes  # noqa: F401


def _size(nbytes):
    return f"{nbytes / 2**20:.2f} MB" if nbytes >= 2**20 else f"{nbytes / 1024:.0f} KB"


def _count(n, unit=""):
    return f"{n / 1e6:.2f} M{unit}" if n >= 1e6 else f"{n / 1e3:.0f} k{unit}"


def deployed_costs(config, model):
    """[{name, encoder, input, parameters, macs, int8_bytes}] of the classifiers a run of
    `config` keeps (every modality's, or the teacher)."""
    from discomkd_keras.run_directory import deployed_names

    rows = []
    for name in deployed_names(config):
        classifier = model if name == JOINT_CLASSIFIER else model.classifier(name)
        shape = "+".join("x".join(str(v) for v in s) for m, s in config["input_shapes"].items()) \
            if name == JOINT_CLASSIFIER else "x".join(str(v) for v in config["input_shapes"][name])
        encoders = config["encoders"] or {}
        encoder = encoders.get(name) if name != JOINT_CLASSIFIER else "/".join(
            str(encoders.get(m, "default")) for m in config["modalities"])
        if encoder is None:
            encoder = "mlp" if len(config["input_shapes"][name]) == 1 else "resnet18"
        rows.append({"name": name, "encoder": encoder if isinstance(encoder, str) else "custom",
                     "input": shape, "parameters": int(classifier.count_params()),
                     "macs": count_macs(classifier), "int8_bytes": int8_bytes(classifier)})
    return rows


def probe_step_seconds(config, data, model, batches, probe_steps):
    """(seconds a training step takes, seconds a validation batch takes), measured on
    `model` with the run's `batches` after one untimed step that traces it."""
    from discomkd_keras.evaluation import split_xy
    from discomkd_keras.run_directory import deployed_names
    from discomkd_keras.training import make_optimizer

    model.compile(optimizer=make_optimizer(config, len(batches)))

    def step(i):
        batch = batches.batch(0, i % len(batches))
        model.train_on_batch(*batch[:2], sample_weight=batch[2] if len(batch) > 2 else None)

    step(0)  # traces
    started = time.perf_counter()
    for i in range(1, probe_steps + 1):
        step(i)
    per_step = (time.perf_counter() - started) / probe_steps
    per_valid_batch = 0.0
    for name in deployed_names(config):
        classifier = model if name == JOINT_CLASSIFIER else model.classifier(name)
        x, _ = split_xy(data, name, "valid")
        rows = (lambda a: np.asarray(a[:config["batch_size"]]))
        batch = {m: rows(v) for m, v in x.items()} if isinstance(x, dict) else rows(x)
        classifier.predict_on_batch(batch)  # traces
        started = time.perf_counter()
        classifier.predict_on_batch(batch)
        per_valid_batch += time.perf_counter() - started
    return per_step, per_valid_batch


def make_plan(config, data, probe_steps=5):
    """The plan of a run of `config` on `data`: {"classifiers": deployed_costs rows,
    "epochs", "patience", "steps_per_epoch", and with probe_steps > 0 "step_seconds",
    "epoch_seconds", "total_seconds" (the epoch ceiling's; early stopping may end sooner)}."""
    from discomkd_keras.training import build_model, make_batches

    model = build_model(config)
    batches = make_batches(dict(config, workers=1), data)
    plan = {"classifiers": deployed_costs(config, model), "epochs": config["epochs"],
            "patience": int(config.get("patience") or 0), "preset": config.get("preset"),
            "steps_per_epoch": len(batches)}
    if probe_steps > 0 and config.get("strategy", "auto") == "auto":
        per_step, per_valid_batch = probe_step_seconds(config, data, model, batches, probe_steps)
        valid_batches = max(-(-len(data.split(m, "valid")[1]) // config["batch_size"])
                            for m in data.modalities)
        epoch = per_step * plan["steps_per_epoch"] + per_valid_batch * valid_batches
        plan.update(probe_steps=probe_steps, step_seconds=per_step, epoch_seconds=epoch,
                    total_seconds=epoch * config["epochs"])
    return plan


def plan_lines(plan):
    """The plan as printed: a table of the classifiers to be exported, a line on epochs
    and time, and a note for a classifier bigger than a Pi-class branch."""
    from discomkd_keras.comparison.report import duration as _duration

    lines = [f"Plan ({'preset ' + plan['preset'] if plan.get('preset') else 'no preset'}): "
             "the classifiers to be exported",
             f"  {'modality':<10}{'input':<12}{'encoder':<18}{'parameters':>12}{'MACs':>10}"
             f"{'int8 (about)':>14}"]
    for row in plan["classifiers"]:
        lines.append(f"  {row['name']:<10}{row['input']:<12}{row['encoder']:<18}"
                     f"{row['parameters']:>12,}{_count(row['macs']):>10}"
                     f"{_size(row['int8_bytes']):>14}")
    stop = (f"at most, stopping once no modality's validation F1 has improved for "
            f"{plan['patience']}" if plan["patience"] else "(no early stopping)")
    line = f"  {plan['epochs']} epochs {stop}; {plan['steps_per_epoch']} steps an epoch"
    if "epoch_seconds" in plan:
        line += (f"; about {plan['epoch_seconds']:.1f} s an epoch ({plan['probe_steps']}-step "
                 f"probe after tracing): {'at most ' if plan['patience'] else ''}"
                 f"{_duration(plan['total_seconds'])}")
    lines.append(line + ".")
    for row in plan["classifiers"]:
        if row["parameters"] > PI_CLASS_PARAMETERS:
            lines.append(f"  Note: the {row['name']} classifier has {_count(row['parameters'])} "
                         f"parameters, more than a Pi-class branch ({PI_CLASS_PARAMETERS / 1e6:g} M"
                         "); --preset edge or --encoder chooses a smaller one.")
    return lines
