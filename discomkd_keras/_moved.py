"""Old import paths of modules that moved into `discomkd_keras.models`, kept working.

`import discomkd_keras.model` (and a `.keras` file whose config names that module)
gets the very module object `discomkd_keras.models.discomkd`, not a copy: one class
per name, so isinstance checks and Keras' registry see the same classes.
"""

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {"discomkd_keras.model": "discomkd_keras.models.discomkd",
         **{f"discomkd_keras.{name}": f"discomkd_keras.models.{name}" for name in (
             "branch_classifiers", "modality_branch", "modality_classifier", "encoders",
             "feature_split", "gradient_reversal", "losses", "distillation_losses", "teacher",
             "students", "unimodal", "single_encoder")},
         "discomkd_keras.comparison_result": "discomkd_keras.comparison.result"}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A finder for the names in MOVED whose loader returns the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def __init__(self):
        self._own_specs = {}  # new path -> the module's own spec, which importlib overwrites

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        self._own_specs.setdefault(module.__name__, module.__spec__)
        return module

    def exec_module(self, module):
        module.__spec__ = self._own_specs[module.__name__]


def install():
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
