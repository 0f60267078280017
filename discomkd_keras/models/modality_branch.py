"""One modality's branch of a per-branch model (docs/method.md, "Architecture"),
in one of three forms:

- `separate`, the paper's branch: two encoders of one family, E_inv and E_spec;
  z_inv = ReLU(BN(Dense_{D/2}(E_inv x))) and (z_inf, z_irr) = the two halves of E_spec x.
- `shared`: one backbone E to D features, and z_inv, z_inf, z_irr three
  projections of E x, each ReLU(BN(Dense_{D/2})): the deployed network holds one
  backbone instead of two (z_irr's projection is not deployed).
- `single`, the single-encoder baseline: one encoder and a linear head, no z_*.

In the first two, logits = Dense_K(concat(z_inv, z_inf)).
"""

import keras
from keras import layers

from discomkd_keras.choices import BRANCH_FORMS, DISCOMKD_BRANCH_FORMS, EMBEDDING_KEYS
from discomkd_keras.models.encoders import (Conventions, EncoderChoices, build_encoder,
                                            encoder_spec_from_config, encoder_spec_to_config)
from discomkd_keras.models.feature_split import FeatureSplit

# The name this tuple had before choices.py (benchmarks and older code import it).
DISCOMKD_BRANCHES = DISCOMKD_BRANCH_FORMS


@keras.saving.register_keras_serializable(package="discomkd_keras")
class ModalityBranch(keras.Model):
    """x -> {"z_inv", "z_inf", "z_irr", "logits"} of one modality ({"logits"} for `single`).

    Args:
        modality: the modality's name, the prefix of every layer name.
        input_shape: one sample's shape, (H, W, C) or (F,).
        num_classes: K.
        encoder: the encoder family (`encoders.ENCODER_FAMILIES`), or a custom
            encoder: a keras.Model template or a function input_shape -> keras.Model
            (`encoders.build_encoder`).
        feature_dim: D, even: each z_* has D/2 features.
        form: "separate" (default), "shared" or "single" (module docstring).
        conventions: "torch" (default) or "keras" (`encoders.Conventions`).

    `encoders` lists the branch's encoder models ([E_inv, E_spec], or [E]), for
    loading pretrained weights into them. `logits_model()` is the part a
    device runs.
    """

    def __init__(self, modality, input_shape, num_classes, encoder, feature_dim, form="separate",
                 conventions="torch", **kwargs):
        if form not in BRANCH_FORMS:
            raise ValueError(f"Unknown branch form {form!r}; expected one of {BRANCH_FORMS}.")
        sample_shape = tuple(int(d) for d in input_shape)
        encoder = encoder_spec_from_config(encoder)  # a saved custom encoder's config
        conv = Conventions(conventions)
        m = modality
        x = keras.Input(shape=sample_shape, name=m)
        # Layers are created in the order of the code before the branches became
        # models of their own: a seeded run draws the same initial weights.
        if form == "separate":
            inv_encoder = build_encoder(encoder, sample_shape, feature_dim, f"{m}_inv_encoder",
                                        conventions)
            inv_features = inv_encoder(x)
            spec_encoder = build_encoder(encoder, sample_shape, feature_dim, f"{m}_spec_encoder",
                                         conventions)
            spec_features = spec_encoder(x)
            encoders = [inv_encoder, spec_encoder]
            z_inv = conv.dense(inv_features, feature_dim // 2, f"{m}_proj_dense")
            z_inv = conv.batch_norm(z_inv, f"{m}_proj_bn")
            z_inv = layers.ReLU(name=f"{m}_z_inv")(z_inv)
            z_inf, z_irr = FeatureSplit(name=f"{m}_split")(spec_features)
        else:
            backbone = build_encoder(encoder, sample_shape, feature_dim, f"{m}_encoder", conventions)
            features = backbone(x)
            encoders = [backbone]
        if form == "shared":
            # ReLU keeps the projections >= 0, as the encoders' features: L_perp's cosine
            # then lies in [0, 1] (docs/method.md).
            projections = []
            for part in ("inv", "inf", "irr"):
                z = conv.dense(features, feature_dim // 2, f"{m}_{part}_proj_dense")
                z = conv.batch_norm(z, f"{m}_{part}_proj_bn")
                projections.append(layers.ReLU(name=f"{m}_z_{part}")(z))
            z_inv, z_inf, z_irr = projections
        if form == "single":
            outputs = {"logits": conv.dense(features, num_classes, f"{m}_classifier")}
        else:
            joint = layers.Concatenate(name=f"{m}_concat")([z_inv, z_inf])
            outputs = {"z_inv": z_inv, "z_inf": z_inf, "z_irr": z_irr,
                       "logits": conv.dense(joint, num_classes, f"{m}_classifier")}
        kwargs.setdefault("name", f"{m}_branch")
        super().__init__(inputs=x, outputs=outputs, **kwargs)
        self.modality = modality
        self.sample_shape = sample_shape
        self.num_classes = int(num_classes)
        # Untracked: a custom encoder's template Model is no sub-layer of the branch.
        self._encoder_choice = EncoderChoices({modality: encoder})
        self.feature_dim = int(feature_dim)
        self.form = form
        self.conventions = conventions
        self.encoders = encoders

    @property
    def encoder(self):
        """The encoder argument: a family name, or the custom Model template / function."""
        return self._encoder_choice[self.modality]

    @property
    def has_embeddings(self):
        """Whether the branch computes z_inv, z_inf and z_irr (all forms but `single`)."""
        return self.form != "single"

    def logits_model(self):
        """The deployable sub-graph, x -> logits: this branch's own layers (shared
        weights) without what only training uses (the `shared` form's z_irr projection)."""
        return keras.Model(self.input, self.output["logits"], name=f"{self.modality}_logits")

    def training_only_layers(self):
        """The layers `logits_model()` leaves out (the `shared` form's z_irr projection)."""
        deployed = {id(layer) for layer in self.logits_model().layers}
        return [layer for layer in self.layers if id(layer) not in deployed]

    def embedder(self):
        """x -> {"z_inv", "z_inf", "z_irr"} (shared weights), for embedding maps."""
        if not self.has_embeddings:
            raise ValueError(f"A {self.form!r} branch has no z_inv, z_inf or z_irr.")
        return keras.Model(self.input, {k: self.output[k] for k in EMBEDDING_KEYS},
                           name=f"{self.modality}_embedder")

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "modality": self.modality,
                "input_shape": list(self.sample_shape), "num_classes": self.num_classes,
                "encoder": encoder_spec_to_config(self.encoder), "feature_dim": self.feature_dim, "form": self.form,
                "conventions": self.conventions}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
