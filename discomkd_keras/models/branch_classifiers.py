"""The shared base of the per-branch models: one `ModalityBranch` per modality,
trained at once on unpaired batches with the task loss L_cl, each branch's
deployable classifier a `ModalityClassifier`.

DisCoM-KD (model.py) adds its shared heads and loss terms; the unimodal twins
(unimodal.py) and the single-encoder baseline (single_encoder.py) are the base
with DisCoM-KD's or the single form of branch; the distilled students
(students.py) add a frozen teacher and a distillation term.
"""

import re

import keras

from discomkd_keras.models.encoders import (CONVENTIONS, EncoderChoices, check_encoder, default_encoder,
                                            encoder_spec_from_config, encoder_spec_to_config)
from discomkd_keras.models.losses import class_weighted, cross_entropy
from discomkd_keras.models.modality_branch import BRANCH_FORMS, ModalityBranch
from discomkd_keras.models.modality_classifier import ModalityClassifier

MODALITY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def check_architecture(input_shapes, num_classes, encoders=None, feature_dim=512,
                       conventions="torch"):
    """Normalise the architecture arguments every model of this package takes:
    (shapes, num_classes, encoders); raise ValueError naming any problem."""
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
    elif not isinstance(encoders, dict):  # one family name, Model or function for all
        encoders = {name: encoders for name in names}
    unknown = sorted(set(encoders) - set(names))
    if unknown:
        raise ValueError(f"Encoders given for unknown modalities {unknown}; modalities: {names}.")
    encoders = {name: encoder_spec_from_config(encoders.get(name)) or default_encoder(shapes[name])
                for name in names}
    for name in names:
        try:
            check_encoder(encoders[name], shapes[name])
        except ValueError as err:
            raise ValueError(f"Modality {name!r}: {err}") from None
    if conventions not in CONVENTIONS:
        raise ValueError(f"Unknown conventions {conventions!r}; expected one of {CONVENTIONS}.")
    return shapes, num_classes, encoders


def set_architecture(model, shapes, num_classes, encoders, feature_dim, conventions):
    """The constructor arguments every model of this package keeps (and saves)."""
    model.input_shapes = shapes
    model.modalities = list(shapes)
    model.num_classes = num_classes
    model.encoders = EncoderChoices(encoders)  # untracked: a custom template is no sub-layer
    model.feature_dim = feature_dim
    model.conventions = conventions


def architecture_config(model):
    """`get_config` of what `set_architecture` kept, plus the name and trainable flag."""
    return {
        "name": model.name,
        "trainable": model.trainable,
        "input_shapes": {m: list(s) for m, s in model.input_shapes.items()},
        "num_classes": model.num_classes,
        "encoders": {m: encoder_spec_to_config(e) for m, e in model.encoders.items()},
        "feature_dim": model.feature_dim,
        "conventions": model.conventions,
    }


def scale_for_replicas(loss):
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


def replica_loss(model, loss):
    """What a `compute_loss` returns: `loss` plus the model's own regularisers (if a
    user adds any), scaled for tf.distribute's replicas."""
    for extra in model.losses:
        loss = loss + keras.ops.cast(keras.ops.sum(extra), "float32")
    return scale_for_replicas(loss)


def task_loss(labels, outputs, modalities, sample_weight=None):
    """L_cl: one mean of the cross-entropy over the samples of all modalities (every
    sample counts once, also when the modalities' batches differ in size), each sample's
    term times its weight when `sample_weight` ({modality: weights}) is given."""
    return keras.ops.mean(keras.ops.concatenate(
        [class_weighted(cross_entropy(labels[m], outputs[m]["logits"]), sample_weight, m)
         for m in modalities], axis=0))


@keras.saving.register_keras_serializable(package="discomkd_keras")
class BranchClassifiers(keras.Model):
    """{modality: batch} -> {modality: that branch's outputs}, one `ModalityBranch`
    per modality, trained with the task loss L_cl.

    Args:
        input_shapes: {modality: shape}, in modality-index order. Images are
            (H, W, C) channels-last, vectors (F,).
        num_classes: K, shared by all modalities (an int, or a dict of
            per-modality counts that must agree).
        encoders: a family name for all modalities or {modality: family};
            default resnet18 for images, mlp for vectors.
        feature_dim: D, even.
        branch: the form of every branch, "separate" (default), "shared" or
            "single" (`modality_branch`).
        conventions: "torch" (default: the released script's PyTorch
            initialisation, BatchNorm epsilon and padding) or "keras".
        head_outputs: for subclasses: a function (modality, branch outputs) ->
            more named outputs of that modality (heads the subclass made).
        z_irr_in_loss: for subclasses: whether their loss reaches z_irr (the
            task loss does not).
        extra_outputs: for subclasses: a function of the {modality: Input} dict
            returning more named outputs. Neither function is serialised: a
            subclass rebuilds them from its own config.

    Inputs: {modality: batch}; the batches are independent (unpaired).
    Train with `fit(x={m: x_m}, y={m: y_m})`. `classifier(m)` is the deployable
    network of modality m, `branches[m]` its `ModalityBranch`.
    """

    # The loss terms logged as metrics of their own (a subclass logs more).
    LOGGED_TERMS = ("cl",)

    def __init__(self, input_shapes, num_classes, encoders=None, feature_dim=512,
                 branch="separate", conventions="torch", head_outputs=None, extra_outputs=None,
                 z_irr_in_loss=False, **kwargs):
        shapes, num_classes, encoders = check_architecture(input_shapes, num_classes, encoders,
                                                           feature_dim, conventions)
        if branch not in BRANCH_FORMS:
            raise ValueError(f"Unknown branch {branch!r}; expected one of {BRANCH_FORMS}.")
        inputs, outputs, branches = {}, {}, {}
        for m, shape in shapes.items():
            inputs[m] = keras.Input(shape=shape, name=m)
            branches[m] = ModalityBranch(m, shape, num_classes, encoders[m], feature_dim,
                                         form=branch, conventions=conventions)
            outputs[m] = dict(branches[m](inputs[m]))
            if head_outputs is not None:
                outputs[m].update(head_outputs(m, outputs[m]))
        if extra_outputs is not None:
            extra = extra_outputs(inputs)
            clash = sorted(set(extra) & set(outputs))
            if clash:
                raise ValueError(f"Output names {clash} clash with modality names.")
            outputs.update(extra)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        if not z_irr_in_loss:
            # No gradient reaches what computes z_irr alone (the shared form's projection):
            # frozen, so the optimizer neither warns about it nor keeps state for it.
            for layer in (layer for b in branches.values() for layer in b.training_only_layers()):
                layer.trainable = False

        set_architecture(self, shapes, num_classes, encoders, feature_dim, conventions)
        self.branch_form = branch
        self.branches = branches
        self.term_trackers = [keras.metrics.Mean(name=term) for term in self.LOGGED_TERMS]
        self.accuracy_trackers = [keras.metrics.SparseCategoricalAccuracy(name=f"{m}_acc")
                                  for m in self.modalities]

    # --- training step -----------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras' backend-agnostic hook, the same for every per-branch model: the
        subclass's terms (`loss_terms`), logged, then combined (`combine_terms`); the
        model's own regularisers and the replica scaling are added here, once."""
        self._check_labels(y)
        terms = self.loss_terms(y, y_pred, sample_weight)
        self.track_terms(terms)
        return replica_loss(self, self.combine_terms(terms))

    def loss_terms(self, y, y_pred, sample_weight=None):
        """{term: scalar} of one step; every name in LOGGED_TERMS is logged. Here L_cl."""
        return {"cl": task_loss(y, y_pred, self.modalities, sample_weight)}

    def combine_terms(self, terms):
        """The scalar to minimise from `loss_terms`' dict."""
        return terms["cl"]

    def _check_labels(self, y):
        if y is None:
            raise ValueError(f"{type(self).__name__} needs labels: y = {{modality: class labels}}.")

    def track_terms(self, terms):
        """Update the metric of every logged term from {term: value}."""
        for tracker in self.term_trackers:
            tracker.update_state(terms[tracker.name])

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        for m, tracker in zip(self.modalities, self.accuracy_trackers):
            tracker.update_state(y[m], y_pred[m]["logits"])
        return super().compute_metrics(x, y, y_pred, sample_weight)

    # --- deployable classifiers ---------------------------------------------
    def branch(self, modality):
        """The `ModalityBranch` of one modality."""
        if modality not in self.branches:
            raise ValueError(f"Unknown modality {modality!r}; this model has {self.modalities}.")
        return self.branches[modality]

    def classifier(self, modality):
        """The deployable classifier of one modality, x -> class probabilities: a
        `ModalityClassifier` sharing this model's weights, with no head that only
        training uses."""
        return ModalityClassifier(self.branch(modality))

    @property
    def has_embeddings(self):
        """Whether the branches compute z_inv, z_inf and z_irr (not the single form)."""
        return self.branch_form != "single"

    def embedder(self, modality):
        """x -> {"z_inv", "z_inf", "z_irr"} of one modality (for embedding maps)."""
        return self.branch(modality).embedder()

    def get_config(self):
        return dict(architecture_config(self), branch=self.branch_form)

    @classmethod
    def from_config(cls, config):
        # Files saved before the conventions option were built with Keras' conventions.
        return cls(**{"conventions": "keras", **config})
