"""What a device runs for one modality: x -> class probabilities."""

import keras

from discomkd_keras.models.modality_branch import ModalityBranch


@keras.saving.register_keras_serializable(package="discomkd_keras")
class ModalityClassifier(keras.Model):
    """x -> class probabilities of one modality: the deployable part of a
    `ModalityBranch` (`logits_model()`) and a float32 softmax named "probabilities".

    Built from the branch's own layers, so it shares their weights: a classifier
    taken from a training model follows its training. It is the one softmax path:
    validation, the best/<modality>.keras checkpoints, evaluation and export all
    use it. Saved and loaded (`keras.saving.load_model`, safe mode) it is rebuilt
    from the branch's config; it computes in the dtype policy in force when it is
    built or loaded, its weights being float32 either way.

    Args:
        branch: the `ModalityBranch` whose deployed layers it runs.
    """

    def __init__(self, branch, **kwargs):
        deployed = branch.logits_model()
        probabilities = keras.layers.Softmax(name="probabilities", dtype="float32")(deployed.output)
        kwargs.setdefault("name", f"{branch.modality}_classifier")
        super().__init__(inputs=deployed.input, outputs=probabilities, **kwargs)
        self.modality = branch.modality
        # The branch's config, not the branch: a tracked branch would add the layers
        # it keeps for training alone to this model's weights and files.
        self.branch_config = branch.get_config()

    def get_config(self):
        branch = dict(self.branch_config)
        return {"name": self.name, "trainable": self.trainable,
                "branch": dict(branch, input_shape=list(branch["input_shape"]))}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ModalityBranch.from_config(config.pop("branch")), **config)
