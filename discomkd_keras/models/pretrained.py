"""Pretrained weights for the keras.applications encoders (`--pretrained MOD=imagenet|PATH`):
checked before a run starts, loaded into every backbone of a modality when its model is built."""

import warnings
from pathlib import Path

import keras

from discomkd_keras.choices import APPLICATION_FAMILIES
from discomkd_keras.models.encoders import build_backbone, is_application_family

def check_pretrained(encoder, input_shape, source):
    """Raise a ValueError naming the problem if `source` ("imagenet" or the path of a
    `.weights.h5` file) cannot be loaded into `encoder` (a family) on `input_shape`."""
    if not is_application_family(encoder):
        raise ValueError(f"pretrained weights load into keras.applications backbones "
                         f"({', '.join(APPLICATION_FAMILIES)}), not into encoder "
                         f"{encoder if isinstance(encoder, str) else 'custom'!r}.")
    if source == "imagenet":
        channels = int(input_shape[-1])
        if channels != 3:
            raise ValueError(f"ImageNet weights take 3-channel images; this input has "
                             f"{channels}. Give a .weights.h5 of a {channels}-channel "
                             f"backbone instead, or train from scratch.")
        return
    if not str(source).endswith(".weights.h5"):
        raise ValueError(f"pretrained weights are 'imagenet' or a .weights.h5 file "
                         f"(keras.Model.save_weights); got {source!r}.")
    if not Path(source).is_file():
        raise ValueError(f"pretrained weights file {source} does not exist.")


def backbone_of(encoder):
    """The keras.applications backbone inside an encoder `build_encoder` made."""
    family = getattr(encoder, "backbone_family", None)
    if family is None:
        raise ValueError(f"Encoder {encoder.name!r} has no keras.applications backbone "
                         f"(families {', '.join(APPLICATION_FAMILIES)}).")
    return encoder.get_layer(f"{encoder.name}_backbone")


def load_pretrained(encoder, source):
    """Load pretrained weights into the application backbone of `encoder` (made by
    `build_encoder`); its Dense to D keeps its initialisation.

    source: "imagenet" (3 channels; Keras downloads the weights once into
    ~/.keras/models) or the path of a `.weights.h5` holding the backbone's weights
    (`build_backbone(family, input_shape).save_weights(path)`, the same family, width
    and channel count). Raises ValueError in one line naming the problem.
    """
    backbone = backbone_of(encoder)
    family = encoder.backbone_family
    input_shape = tuple(backbone.input.shape[1:])
    check_pretrained(family, input_shape, source)
    if source == "imagenet":
        try:
            reference = build_backbone(family, input_shape, weights="imagenet")
        except Exception as err:  # Keras raises a bare Exception when a download fails
            reason = " ".join(str(err).split())
            raise ValueError(f"The ImageNet weights of {family} could not be downloaded (no "
                             f"network?): {reason}. Give a .weights.h5 of the backbone instead "
                             "(--pretrained MOD=PATH).") from None
        backbone.set_weights(reference.get_weights())
        return
    with warnings.catch_warnings(record=True) as caught:
        # Keras only warns about parts of a model it found no group for in the file (and
        # leaves their weights as they were): that is a wrong file as well.
        warnings.simplefilter("always", UserWarning)
        try:
            backbone.load_weights(source)
            problem = next((str(w.message) for w in caught if issubclass(w.category, UserWarning)),
                           None)
        except Exception as err:  # h5py's or Keras' own: any failure means a wrong file
            problem = str(err) or type(err).__name__
    if problem:
        # Keras' report starts "A total of N objects could not be loaded. Example ...:",
        # then gives the first object's error, which ends in a dump of the variable.
        lines = [line.strip() for line in problem.splitlines() if line.strip()]
        detail = " ".join(lines[:2]).split(" Target variable:")[0]
        raise ValueError(f"{source} does not hold the weights of a {family} backbone on "
                         f"{input_shape[-1]}-channel images: {detail}")


def encoders_of(model, modality):
    """The encoder sub-models of `modality` in a model of this package.

    A model with per-modality branches lists them: `model.branches[modality].encoders`.
    Otherwise they are found by the names the model classes give `build_encoder`,
    among the model's own layers: f"{modality}_inv_encoder" and
    f"{modality}_spec_encoder" (DisCoMKD, the students), f"{modality}_encoder"
    (single) and f"{modality}_teacher_encoder" (teacher). A nested model (the
    students' frozen teacher) is not searched.
    """
    branches = getattr(model, "branches", None)
    if branches is not None:
        return list(branches[modality].encoders) if modality in branches else []
    names = {f"{modality}_{kind}encoder" for kind in ("inv_", "spec_", "", "teacher_")}
    return [layer for layer in model.layers if isinstance(layer, keras.Model)
            and layer.name in names]


def apply_pretrained(model, pretrained):
    """Load {modality: source} (see `load_pretrained`) into every encoder of each named
    modality; a modality's encoders all start from the same weights."""
    for modality, source in (pretrained or {}).items():
        encoders = encoders_of(model, modality)
        if not encoders:
            raise ValueError(f"pretrained weights for {modality!r}: the model has no encoder "
                             "of that modality.")
        first, *others = encoders
        load_pretrained(first, source)
        for encoder in others:  # one download or file read per modality
            backbone_of(encoder).set_weights(backbone_of(first).get_weights())
