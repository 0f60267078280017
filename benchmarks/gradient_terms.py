"""Which DisCoM-KD terms push a modality's deployed branch, and how hard, against L_cl.

    python benchmarks/gradient_terms.py RUN_DIR [RUN_DIR ...] [--modality image] [--batches 8]

Loads each run's last checkpoint (the full training model) and, on training
batches drawn as in training, measures for each weighted loss term t (cl, adv,
mod, aux, perp) the gradient with respect to the trainable weights of one
modality's deployed classifier (its `ModalityClassifier`: both encoders, or the
shared backbone, the projections it deploys and the head): its norm,
the ratio of that norm to L_cl's, and the cosine between the two gradients
(negative: the term pulls the branch against its own task). Means over the
batches and runs (e.g. the seeds of one comparison) are printed as a Markdown
table (and written with --out). TensorFlow backend (it uses GradientTape);
figures are printed, never asserted.
"""

import json
import sys
from pathlib import Path

import click
import numpy as np

TERMS = ("cl", "adv", "mod", "aux", "perp")


def term_gradients(model, x, y, modality):
    """{term: flat gradient of weight * term w.r.t. the modality's deployed weights}."""
    import tensorflow as tf

    from discomkd_keras.models.losses import loss_terms

    weights = model.classifier(modality).trainable_weights
    with tf.GradientTape(persistent=True) as tape:  # the weighting too: taped ops only
        terms = loss_terms(model(x, training=True), y, model.modalities, model.perp_mode,
                           model.modality_targets)
        weighted = {t: model.loss_weights[t] * terms[t] for t in TERMS if model.loss_weights[t]}
    out = {}
    for t, term in weighted.items():
        grads = tape.gradient(term, weights)  # None where the term does not reach a weight
        out[t] = np.concatenate([np.zeros(int(np.prod(w.shape))) if g is None else g.numpy().ravel()
                                 for g, w in zip(grads, weights)])
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--modality", default=None, help="Default: every modality.")
@click.option("--batches", type=int, default=8, show_default=True, help="Batches per run.")
@click.option("--out", "out_file", type=click.Path(path_type=Path), default=None)
def main(run_dirs, modality, batches, out_file):
    """Per-term gradient norms and cosines against L_cl on deployed branches."""
    from discomkd_keras.data import load_data
    from discomkd_keras.data.unpaired_batches import UnpairedBatches
    from discomkd_keras.run_directory import load_checkpoint, read_run, write_atomic

    found, epochs, datasets = {}, [], {}
    for run_dir in run_dirs:
        config, state = read_run(run_dir)
        if config.get("method", "discomkd") != "discomkd" or not state.get("checkpoint"):
            click.echo(f"Error: {run_dir} is not a DisCoM-KD run with a checkpoint.", err=True)
            sys.exit(2)
        model = load_checkpoint(run_dir, config, state)
        epochs.append(state["epoch"])
        spec = json.dumps(config["data"], sort_keys=True)  # the seeds of a comparison share it
        if spec not in datasets:
            datasets[spec] = load_data(config["data"])
        stream = UnpairedBatches(datasets[spec], batch_size=config["batch_size"],
                                 augment=config["augment"], seed=12345)
        for m in [modality] if modality else config["modalities"]:
            for step in range(min(batches, len(stream))):
                grads = term_gradients(model, *stream[step], m)
                cl = grads["cl"]
                for t, g in grads.items():
                    cos = float(g @ cl / (np.linalg.norm(g) * np.linalg.norm(cl) + 1e-30))
                    found.setdefault((m, t), []).append(
                        (np.linalg.norm(g), np.linalg.norm(g) / np.linalg.norm(cl), cos))
    names = ", ".join(f"{p.parent.name}/{p.name}" for p in run_dirs)
    lines = [f"{len(run_dirs)} run(s) ({names}), "
             f"last checkpoint (epoch {', '.join(map(str, sorted(set(epochs))))}), {batches} "
             "training batches each; gradients of each weighted term w.r.t. the deployed "
             "classifier's weights, means over batches and runs.", "",
             "| modality | term | norm | norm / L_cl's | cosine with L_cl |", "|---|---|---:|---:|---:|"]
    for (m, t), values in found.items():
        norm, ratio, cos = np.mean(values, axis=0)
        lines.append(f"| {m} | {t} | {norm:.4g} | {ratio:.3f} | {cos:+.3f} |")
    text = "\n".join(lines) + "\n"
    click.echo(text)
    if out_file:
        write_atomic(out_file, text)


if __name__ == "__main__":
    main()
