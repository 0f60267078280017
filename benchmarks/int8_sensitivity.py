"""Which activation's int8 rounding costs a classifier its agreement with Keras?

    python benchmarks/int8_sensitivity.py RUN_DIR --modality rgb [--top 8] [--out FILE]

For one modality's best classifier (TensorFlow backend):

1. Noise injection, in the float model: for every ReLU / ReLU6 output (nested
   encoders included), uniform noise of one int8 step (the step int8 calibration
   gives it: its largest value on the representative rows / 255, or for a branch
   output the concatenation's) is added there alone; the
   logit error (rms) and argmax agreement over the test split rank the
   activations. One step at the most sensitive one moving the logits about as much
   as the whole int8 model does says where the int8 model loses.
2. The full-integer int8 model and the int8 model whose input layers stay float
   (`export/float_input_layers.py`), as `export` builds them: test agreement, logit
   error, size.

Figures are printed (and written as Markdown with --out), never asserted. The
figures behind the export's fallback (issue 17) came from this script on the quick
start's run (`discomkd-keras train`, seeds 0 and 1).
"""

from pathlib import Path

import click
import numpy as np


class _Noise:
    """A call wrapper: the target layer's output plus uniform noise of `step`."""

    def __init__(self, target, step):
        self.target, self.step = target, step

    def __call__(self, layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        return _noise_layer(self.step)(out) if layer.name == self.target else out


def _noise_layer(step):
    import keras

    class UniformNoise(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seeds = keras.random.SeedGenerator(0)

        def call(self, x):
            return x + keras.random.uniform(keras.ops.shape(x), -0.5, 0.5, seed=self.seeds) * step

    return UniformNoise()


def _relu_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _relu_layers(layer)
        elif isinstance(layer, keras.layers.ReLU) or \
                getattr(getattr(layer, "activation", None), "__name__", "") in ("relu", "relu6"):
            yield layer


def _logits_model(probabilities):
    """The classifier without its final softmax (the logits the argmax compares)."""
    import keras

    last = probabilities.layers[-1]
    if not isinstance(last, keras.layers.Softmax):
        raise click.ClickException("expected a classifier ending in a softmax")
    return keras.Model(probabilities.input, last.input)


def _predict(model, x, batch=200):
    return np.concatenate([np.asarray(model(x[i:i + batch], training=False))
                           for i in range(0, len(x), batch)])


def sensitivity(run_dir, modality, log=print):
    """(the injection ranking, the two int8 models, the logits' std): rows of dicts."""
    import keras

    from discomkd_keras import run_directory
    from discomkd_keras.data import load_data
    from discomkd_keras.edge_demo.runtime import Classifier
    from discomkd_keras.export.float_input_layers import input_layer_ops
    from discomkd_keras.export.tflite_export import convert, probability_model

    config, _ = run_directory.read_run(run_dir)
    data = load_data(config["data"])
    x_train = np.asarray(data.split(modality, "train")[0])
    x_test = np.asarray(data.split(modality, "test")[0])
    representative = x_train[np.sort(np.random.default_rng(0).permutation(len(x_train))[:300])]
    classifier, _ = run_directory.load_best(run_dir, modality)
    logits_model = _logits_model(probability_model(classifier, modality))
    reference = _predict(logits_model, x_test)

    def compare(logits):
        return (float(np.sqrt(np.mean((logits - reference) ** 2))),
                float(np.mean(logits.argmax(1) == reference.argmax(1))))

    layers = list(_relu_layers(logits_model))
    # TFLite gives a concatenation's inputs its own scale (slices keep theirs): the
    # branch outputs (an encoder's last activation, z_inv) are rounded on that grid.
    concats = [l for l in logits_model.layers if isinstance(l, keras.layers.Concatenate)]
    joint = float(np.max(_predict(keras.Model(logits_model.input, concats[0].output),
                                  representative))) if len(concats) == 1 else None
    ends = {id(l) for l in logits_model.layers} | {
        id(m.layers[-1]) for m in logits_model.layers if isinstance(m, keras.Model)}
    injection = []
    for layer in layers:
        top = joint if joint is not None and id(layer) in ends else \
            _activation_max(logits_model, layer, representative)
        step = top / 255
        noisy = keras.models.clone_model(logits_model, clone_function=lambda l: l,
                                         call_function=_Noise(layer.name, step), recursive=True)
        rms, agreement = compare(_predict(noisy, x_test))
        injection.append({"activation": layer.name, "step": step, "logit_rms": rms,
                          "agreement": agreement})
        log(f"  {layer.name}: step {step:.4f}, logit rms {rms:.4f}, agreement {agreement:.4f}")
    injection.sort(key=lambda r: -r["logit_rms"])

    full = convert(logits_model, "int8", representative)
    mixed = convert(logits_model, "int8", representative,
                    float_nodes=[name for _, name in input_layer_ops(full)])
    models = []
    for label, flatbuffer in (("full-integer int8", full), ("int8, input layers float", mixed)):
        rms, agreement = compare(Classifier(flatbuffer).predict(x_test))
        models.append({"model": label, "logit_rms": rms, "agreement": agreement,
                       "size_kib": len(flatbuffer) / 1024})
    return injection, models, float(reference.std())


def _activation_max(model, layer, x):
    """The largest value of `layer`'s output on the rows `x`: the range int8
    calibration gives it. The layer is the model's own or one of a nested model
    that takes the model's input (an encoder)."""
    import keras

    if layer in model.layers:
        return float(np.max(_predict(keras.Model(model.input, layer.output), x)))
    for nested in model.layers:
        if isinstance(nested, keras.Model) and any(l is layer for l in _all_layers(nested)):
            if tuple(nested.input.shape[1:]) != tuple(model.input.shape[1:]):
                raise click.ClickException(f"{nested.name} does not take the classifier's input")
            return _activation_max(nested, layer, x)
    raise click.ClickException(f"{layer.name} is not in {model.name}")


def _all_layers(model):
    import keras

    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def report(modality, injection, models, logit_std, top):
    lines = [f"{modality}: logit std {logit_std:.3f} on the test split", "",
             "| activation (one int8 step of noise there alone) | step | logit rms | agreement |",
             "|---|---:|---:|---:|"]
    lines += [f"| {r['activation']} | {r['step']:.4f} | {r['logit_rms']:.4f} | "
              f"{r['agreement']:.4f} |" for r in injection[:top]]
    lines += ["", "| model | logit rms | agreement | KiB |", "|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['logit_rms']:.4f} | {r['agreement']:.4f} | "
              f"{r['size_kib']:.1f} |" for r in models]
    return "\n".join(lines)


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--modality", required=True)
@click.option("--top", type=int, default=8, show_default=True, help="Activations listed.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(run_dir, modality, top, out):
    injection, models, logit_std = sensitivity(run_dir, modality)
    text = report(modality, injection, models, logit_std, top)
    click.echo(text)
    if out:
        out.write_text(f"Run: {run_dir.name}\n\n{text}\n")


if __name__ == "__main__":
    main()
