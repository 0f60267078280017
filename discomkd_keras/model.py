"""The DisCoM-KD training model for M >= 2 modalities (method.md, "Architecture").

One functional Keras model holds, for every modality m, two encoders
(E_inv[m], E_spec[m]), a projection head giving z_inv[m], the split of the
spec features into z_inf[m] / z_irr[m], and a task head C[m]; and, shared by
all modalities, C_aux, D_inf, D_irr and D_adv behind a gradient-reversal layer.
The loss is computed in `compute_loss`, the backend-agnostic Keras hook, so
`model.fit` trains it on TensorFlow and on JAX alike.
"""

import re

import keras
from keras import layers

from discomkd_keras.encoders import (CONVENTIONS, Conventions, build_encoder, check_encoder,
                                     default_encoder)
from discomkd_keras.gradient_reversal import GradientReversal
from discomkd_keras.losses import (LOSS_TERMS, MODALITY_TARGETS, PERP_MODES, loss_terms,
                                   total_loss)

MODALITY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
HEADS_OF_TERM = {"adv": ("adv_discriminator",), "mod": ("inf_discriminator", "irr_discriminator"),
                 "aux": ("aux_classifier",)}
OUTPUT_KEYS = ("z_inv", "z_inf", "z_irr", "logits", "aux_inv", "aux_inf",
               "adv", "mod_inf", "mod_irr")


@keras.saving.register_keras_serializable(package="discomkd_keras")
class FeatureSplit(layers.Layer):
    """Splits E_spec's D features into (z_inf, z_irr): the first and second half."""

    def call(self, inputs):
        half = inputs.shape[-1] // 2
        return inputs[..., :half], inputs[..., half:]

    def compute_output_shape(self, input_shape):
        half = input_shape[-1] // 2
        shape = tuple(input_shape[:-1]) + (half,)
        return shape, shape


def check_model_arguments(input_shapes, num_classes, encoders=None, feature_dim=512,
                          loss_weights=None, perp_mode="abs", modality_targets="labels",
                          conventions="torch"):
    """Normalise the constructor's arguments; raise ValueError naming any problem."""
    if isinstance(input_shapes, dict):
        pairs = list(input_shapes.items())
    else:
        pairs = [tuple(p) for p in input_shapes]
    names = [name for name, _ in pairs]
    if len(names) < 2:
        raise ValueError(f"DisCoM-KD needs at least 2 modalities; got {names}.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Duplicate modality names: {duplicates}.")
    for name in names:
        if not isinstance(name, str) or not MODALITY_NAME.match(name):
            raise ValueError(
                f"Modality name {name!r} must start with a letter and hold only "
                "letters, digits, '_' or '-'."
            )
    shapes = {name: tuple(int(d) for d in shape) for name, shape in pairs}

    if isinstance(num_classes, dict):
        counts = {m: int(k) for m, k in num_classes.items()}
        if set(counts) != set(names):
            raise ValueError(
                f"num_classes names modalities {sorted(counts)}, the inputs {sorted(names)}."
            )
        if len(set(counts.values())) != 1:
            raise ValueError(
                f"All modalities must share one label set; class counts differ: {counts}."
            )
        num_classes = next(iter(counts.values()))
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}.")

    if isinstance(feature_dim, bool) or not isinstance(feature_dim, int) \
            or feature_dim <= 0 or feature_dim % 2:
        raise ValueError(
            f"feature_dim (D) must be a positive even integer, so that z_inf and z_irr "
            f"each get D/2; got {feature_dim!r}."
        )

    if encoders is None:
        encoders = {}
    elif isinstance(encoders, str):
        encoders = {name: encoders for name in names}
    unknown = sorted(set(encoders) - set(names))
    if unknown:
        raise ValueError(f"Encoders given for unknown modalities {unknown}; modalities: {names}.")
    encoders = {name: encoders.get(name) or default_encoder(shapes[name]) for name in names}
    for name in names:
        try:
            check_encoder(encoders[name], shapes[name])
        except ValueError as err:
            raise ValueError(f"Modality {name!r}: {err}") from None

    weights = {term: 1.0 for term in LOSS_TERMS}
    for term, value in (loss_weights or {}).items():
        if term not in weights:
            raise ValueError(f"Unknown loss term {term!r}; expected one of {LOSS_TERMS}.")
        if not float(value) >= 0.0:
            raise ValueError(f"Loss weight {term}={value!r} must be a number >= 0.")
        weights[term] = float(value)
    if not any(weights.values()):
        raise ValueError("Every loss weight is 0: nothing to train.")
    if perp_mode not in PERP_MODES:
        raise ValueError(f"Unknown perp mode {perp_mode!r}; expected one of {PERP_MODES}.")
    if modality_targets not in MODALITY_TARGETS:
        raise ValueError(f"Unknown modality targets {modality_targets!r}; "
                         f"expected one of {MODALITY_TARGETS}.")
    if conventions not in CONVENTIONS:
        raise ValueError(f"Unknown conventions {conventions!r}; expected one of {CONVENTIONS}.")
    return shapes, num_classes, encoders, weights


def set_architecture(model, shapes, num_classes, encoders, feature_dim, conventions):
    """The constructor arguments every model of this package keeps (and saves)."""
    model.input_shapes = shapes
    model.modalities = list(shapes)
    model.num_classes = num_classes
    model.encoders = encoders
    model.feature_dim = feature_dim
    model.conventions = conventions


def architecture_config(model):
    """`get_config` of what `set_architecture` kept, plus the name and trainable flag."""
    return {
        "name": model.name,
        "trainable": model.trainable,
        "input_shapes": {m: list(s) for m, s in model.input_shapes.items()},
        "num_classes": model.num_classes,
        "encoders": dict(model.encoders),
        "feature_dim": model.feature_dim,
        "conventions": model.conventions,
    }


def _scale_for_replicas(loss):
    """Divide by the replica count under tf.distribute, as Keras' own losses do.

    Each replica returns the mean over its share of the global batch and
    tf.distribute sums the replicas' gradients; the TF train step multiplies
    the logged loss back. JAX's DataParallel averages by itself.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / replicas
    return loss


@keras.saving.register_keras_serializable(package="discomkd_keras")
class DisCoMKD(keras.Model):
    """Multi-branch DisCoM-KD model.

    Args:
        input_shapes: {modality: shape}, in modality-index order: modality i
            has modality label i. Images are (H, W, C) channels-last,
            vectors (F,).
        num_classes: K, shared by all modalities (an int, or a dict of
            per-modality counts that must agree).
        encoders: a family name for all modalities or {modality: family};
            default resnet18 for images, mlp for vectors.
        feature_dim: D, even; z_inv, z_inf and z_irr each have D/2 features.
        loss_weights: {cl, adv, mod, aux, perp} -> weight (default 1 each;
            0 switches a term off).
        perp_mode: `abs` (default), `cos` or `square`: how L_perp penalises
            the cosine.
        grl_lambda: the initial gradient-reversal lambda.
        modality_targets: `labels` (default, the paper: integer modality
            labels, M-way heads) or `released` (the released script's
            all-ones / all-zeros probability targets; see `losses.py`).
        conventions: `torch` (default: the released script's PyTorch
            initialisation, BatchNorm epsilon and padding) or `keras`.
        extra_outputs: for subclasses: a function of the {modality: Input}
            dict returning more named outputs (not serialised; a subclass
            rebuilds it from its own config).

    Inputs: {modality: batch}; the batches are independent (unpaired).
    Outputs: {modality: {key: tensor}} with keys `OUTPUT_KEYS`.
    Train with `fit(x={m: x_m}, y={m: y_m})`.
    """

    def __init__(self, input_shapes, num_classes, encoders=None, feature_dim=512,
                 loss_weights=None, perp_mode="abs", grl_lambda=1.0, modality_targets="labels",
                 conventions="torch", extra_outputs=None, **kwargs):
        shapes, num_classes, encoders, weights = check_model_arguments(
            input_shapes, num_classes, encoders, feature_dim, loss_weights, perp_mode,
            modality_targets, conventions)
        modalities = list(shapes)
        num_modalities = len(modalities)
        half = feature_dim // 2

        conv = Conventions(conventions)
        # Shared across modalities.
        aux_classifier = conv.dense_layer(half, num_classes, "aux_classifier")
        inf_discriminator = conv.dense_layer(half, num_modalities, "inf_discriminator")
        irr_discriminator = conv.dense_layer(half, num_modalities, "irr_discriminator")
        gradient_reversal = GradientReversal(grl_lambda, name="gradient_reversal")
        adv_discriminator = conv.dense_layer(half, num_modalities, "adv_discriminator")

        inputs, outputs = {}, {}
        for m in modalities:
            x = keras.Input(shape=shapes[m], name=m)
            inputs[m] = x
            inv_features = build_encoder(encoders[m], shapes[m], feature_dim, f"{m}_inv_encoder",
                                         conventions)(x)
            spec_features = build_encoder(encoders[m], shapes[m], feature_dim, f"{m}_spec_encoder",
                                          conventions)(x)
            z_inv = conv.dense(inv_features, half, f"{m}_proj_dense")
            z_inv = conv.batch_norm(z_inv, f"{m}_proj_bn")
            z_inv = layers.ReLU(name=f"{m}_z_inv")(z_inv)
            z_inf, z_irr = FeatureSplit(name=f"{m}_split")(spec_features)
            joint = layers.Concatenate(name=f"{m}_concat")([z_inv, z_inf])
            logits = conv.dense(joint, num_classes, f"{m}_classifier")
            outputs[m] = {
                "z_inv": z_inv,
                "z_inf": z_inf,
                "z_irr": z_irr,
                "logits": logits,
                "aux_inv": aux_classifier(z_inv),
                "aux_inf": aux_classifier(z_inf),
                "adv": adv_discriminator(gradient_reversal(z_inv)),
                "mod_inf": inf_discriminator(z_inf),
                "mod_irr": irr_discriminator(z_irr),
            }
        if extra_outputs is not None:
            extra = extra_outputs(inputs)
            clash = sorted(set(extra) & set(outputs))
            if clash:
                raise ValueError(f"Output names {clash} clash with modality names.")
            outputs.update(extra)
        kwargs.setdefault("name", "discomkd")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # A head whose only loss term is switched off gets no gradient: freeze
        # it, so the optimizer neither warns about it nor keeps state for it.
        for term, names in HEADS_OF_TERM.items():
            if weights[term] == 0.0:
                for name in names:
                    self.get_layer(name).trainable = False

        set_architecture(self, shapes, num_classes, encoders, feature_dim, conventions)
        self.loss_weights = weights
        self.perp_mode = perp_mode
        self.modality_targets = modality_targets
        self.initial_grl_lambda = float(grl_lambda)
        self.term_trackers = [keras.metrics.Mean(name=term) for term in LOSS_TERMS]
        self.accuracy_trackers = [
            keras.metrics.SparseCategoricalAccuracy(name=f"{m}_acc") for m in modalities
        ]

    # --- training step -----------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            raise ValueError("DisCoM-KD needs labels: y = {modality: class labels}.")
        terms = loss_terms(y_pred, y, self.modalities, self.perp_mode, self.modality_targets)
        loss = total_loss(terms, self.loss_weights)
        for extra in self.losses:  # regularisers, if a user adds any
            loss = loss + keras.ops.cast(keras.ops.sum(extra), "float32")
        for tracker in self.term_trackers:
            tracker.update_state(terms[tracker.name])
        return _scale_for_replicas(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        for m, tracker in zip(self.modalities, self.accuracy_trackers):
            tracker.update_state(y[m], y_pred[m]["logits"])
        return super().compute_metrics(x, y, y_pred, sample_weight)

    # --- deployable classifiers ---------------------------------------------
    def _branch(self, modality):
        """(input, z_inv, z_inf, z_irr) of one modality, rebuilt on a fresh Input
        from the training model's own layer objects (shared weights)."""
        if modality not in self.input_shapes:
            raise ValueError(f"Unknown modality {modality!r}; this model has {self.modalities}.")
        m = modality
        x = keras.Input(shape=self.input_shapes[m], name=m)
        z_inv = self.get_layer(f"{m}_inv_encoder")(x)
        for name in (f"{m}_proj_dense", f"{m}_proj_bn", f"{m}_z_inv"):
            z_inv = self.get_layer(name)(z_inv)
        z_inf, z_irr = self.get_layer(f"{m}_split")(self.get_layer(f"{m}_spec_encoder")(x))
        return x, z_inv, z_inf, z_irr

    def classifier(self, modality, probabilities=False):
        """The standalone classifier of one modality: x -> C[m](z_inv, z_inf).

        Built from the same layer objects as the training model (so it shares
        their weights), with no GRL, discriminator or auxiliary head.
        Outputs class logits, or softmax probabilities if `probabilities`.
        """
        x, z_inv, z_inf, _ = self._branch(modality)
        joint = self.get_layer(f"{modality}_concat")([z_inv, z_inf])
        out = self.get_layer(f"{modality}_classifier")(joint)
        if probabilities:
            out = layers.Softmax(name="probabilities", dtype="float32")(out)
        return keras.Model(x, out, name=f"{modality}_classifier")

    def embedder(self, modality):
        """x -> {"z_inv", "z_inf", "z_irr"} of one modality (for embedding maps)."""
        x, z_inv, z_inf, z_irr = self._branch(modality)
        return keras.Model(x, {"z_inv": z_inv, "z_inf": z_inf, "z_irr": z_irr},
                           name=f"{modality}_embedder")

    def get_config(self):
        return dict(architecture_config(self), loss_weights=dict(self.loss_weights),
                    perp_mode=self.perp_mode, grl_lambda=self.initial_grl_lambda,
                    modality_targets=self.modality_targets)

    @classmethod
    def from_config(cls, config):
        # Files saved before these options existed were built with Keras' conventions.
        return cls(**{"conventions": "keras", **config})
