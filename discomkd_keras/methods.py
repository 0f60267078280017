"""The training methods, one entry each: what a run of `--method NAME` builds, what it
needs, which schedules it runs, how its loss mixes, and its role in a comparison.

Config validation (config.py), the model factory (`build_model`), the per-step schedules
(training.py), compare's plan and verdicts (comparison/), the public names
(`discomkd_keras.__init__`) and the command line's help all read this table, so adding a
method is one `Method(...)` entry below plus its model file in `models/` (docs/training.md,
"Adding a method"). This module imports no backend: a builder imports its model when it
is called.
"""

import importlib
from dataclasses import dataclass

from discomkd_keras.choices import DISCOMKD_BRANCH_FORMS


@dataclass(frozen=True)
class Method:
    name: str
    summary: str  # one line, for --help and docs
    model: str  # "module:Class" of the training model, imported on first use
    loss: str  # how the loss mixes, in words (docs/method.md defines the terms)
    role: str  # "method", "baseline", "teacher" or "student", for compare's report
    paired: bool = False  # trains on paired rows (every modality of one sample per row)
    teacher: str = None  # the method whose finished run (--teacher RUN) it distils
    branch_forms: tuple = DISCOMKD_BRANCH_FORMS  # the --branch values; () = own architecture
    loss_weights: bool = False  # takes --loss-weight (the other methods: the task loss alone)
    joint: bool = False  # deploys one classifier over all modalities, named JOINT_CLASSIFIER
    against: str = None  # how a verdict names it as a baseline ("its unimodal twin")
    in_default_comparison: bool = False  # compare runs it unless --methods says otherwise
    # (label, what the run changes) of the runs compare makes of it; () = one run, its name.
    compare_runs: tuple = ()
    # Names of functions of this module, (config, steps_per_epoch) -> a schedule callback.
    schedules: tuple = ()

    @property
    def model_class(self):
        module, name = self.model.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def own_architecture(self):
        """No --branch changes it (the single-encoder baseline, the teacher)."""
        return not self.branch_forms

    def runs(self):
        return self.compare_runs or ((self.name, {"method": self.name}),)

    def build(self, config):
        """The untrained training model a run's config describes."""
        kwargs = {"encoders": config["encoders"] or None, "feature_dim": config["feature_dim"],
                  # runs from before the option: Keras' conventions
                  "conventions": config.get("conventions", "keras")}
        if not self.own_architecture:
            kwargs["branch"] = branch_of(config)
        kwargs.update(_MODEL_ARGUMENTS.get(self.name, _no_arguments)(config))
        return self.model_class(config["input_shapes"], len(config["class_names"]), **kwargs)

    def make_schedules(self, config, steps_per_epoch):
        return [globals()[name](config, steps_per_epoch) for name in self.schedules]


def _no_arguments(config):
    return {}


def _discomkd_arguments(config):
    return {"loss_weights": config["loss_weights"], "perp_mode": config["perp_mode"],
            "grl_lambda": config["grl_lambda"],
            "modality_targets": config.get("modality_targets", "labels")}


def _student_arguments(config):
    teacher = config["teacher"]
    return {"method": config["method"], "teacher_encoders": teacher["encoders"] or None,
            "teacher_feature_dim": teacher["feature_dim"],
            "teacher_conventions": teacher.get("conventions", "keras")}


def grl_schedule(config, steps_per_epoch):
    """DisCoM-KD's gradient-reversal lambda, per step (constant or the DANN ramp)."""
    from discomkd_keras.models.gradient_reversal import GRLScheduler
    return GRLScheduler(config["grl_schedule"], config["grl_lambda"], epochs=config["epochs"],
                        steps_per_epoch=steps_per_epoch)


def distill_warmup(config, steps_per_epoch):
    """DKD's linear warm-up of the distillation weight."""
    from discomkd_keras.models.students import DistillWarmup
    return DistillWarmup(config.get("dkd_warmup_epochs", 0), steps_per_epoch)


_STUDENT_LOSS = "a L_cl + b L_distill (a, b) = {mix} (models/students.py)"


def _student(name, summary, mix, **extra):
    return Method(name, summary, "discomkd_keras.models.students:DistilledStudents",
                  _STUDENT_LOSS.format(mix=mix), "student", paired=True, teacher="teacher",
                  **extra)


METHODS = {m.name: m for m in (
    Method("discomkd", "DisCoM-KD: all single-modality classifiers at once, with its "
           "disentangling and adversarial terms", "discomkd_keras.models.discomkd:DisCoMKD",
           "L_cl + L_adv + L_mod + L_aux + L_perp, each weighted by --loss-weight",
           "method", loss_weights=True, in_default_comparison=True,
           compare_runs=(("discomkd", {"method": "discomkd"}),
                         ("discomkd -L_adv", {"method": "discomkd", "loss_weights": {"adv": 0.0}}),
                         ("discomkd -L_mod", {"method": "discomkd", "loss_weights": {"mod": 0.0}}),
                         ("discomkd -L_aux", {"method": "discomkd", "loss_weights": {"aux": 0.0}}),
                         ("discomkd -L_perp",
                          {"method": "discomkd", "loss_weights": {"perp": 0.0}})),
           schedules=("grl_schedule",)),
    Method("unimodal", "the unimodal twins: DisCoM-KD's branches trained alone with L_cl",
           "discomkd_keras.models.unimodal:UnimodalClassifiers", "L_cl", "baseline",
           against="its unimodal twin", in_default_comparison=True),
    Method("single", "the single-encoder baseline: one encoder and a linear head per "
           "modality, trained with L_cl", "discomkd_keras.models.single_encoder:"
           "SingleEncoderClassifiers", "L_cl", "baseline", branch_forms=(),
           against="the single-encoder baseline", in_default_comparison=True),
    Method("teacher", "a multi-modal teacher (needs paired data; the students distil it)",
           "discomkd_keras.models.teacher:MultimodalTeacher", "L_cl of the joint logits",
           "teacher", paired=True, branch_forms=(), joint=True),
    _student("kd", "students distilled from --teacher with Hinton's KD (T = 4)", "(1, 1)"),
    _student("kd-mix", "students distilled with KD, task and distillation mixed 0.5 / 0.5",
             "(0.5, 0.5)"),
    _student("dkd", "students distilled with decoupled KD (alpha 1, beta 8, T = 4, warm-up)",
             "(1, 1)", schedules=("distill_warmup",)),
    _student("mlkd", "students distilled with multi-level KD (T = 2..6)", "(1, 1)"),
)}
_MODEL_ARGUMENTS = {"discomkd": _discomkd_arguments,
                    **{m.name: _student_arguments for m in METHODS.values() if m.teacher}}

METHOD_NAMES = tuple(METHODS)
STUDENT_METHODS = tuple(m.name for m in METHODS.values() if m.teacher)
PAIRED_METHODS = tuple(m.name for m in METHODS.values() if m.paired)
OWN_ARCHITECTURE_METHODS = tuple(m.name for m in METHODS.values() if m.own_architecture)
# compare's runs, in report order: the baselines, DisCoM-KD and its ablations, the teacher
# and its students (a teacher trains before the students that distil it).
_REPORT_ORDER = ("baseline", "method", "teacher", "student")
COMPARE_RUNS = tuple(run for role in _REPORT_ORDER for m in METHODS.values() if m.role == role
                     for run in m.runs())
COMPARE_LABELS = tuple(label for label, _ in COMPARE_RUNS)
DEFAULT_COMPARISON = tuple(m.name for m in METHODS.values() if m.in_default_comparison)
BASELINES = {m.name: m.against for m in METHODS.values() if m.role == "baseline"}


# The name a joint method's one classifier goes by, where other methods name a modality:
# its best/ file, its results.json key, its row in plans and reports.
JOINT_CLASSIFIER = "teacher"


def method_of(config_or_name):
    """The `Method` of a name or of a run's config (config.json files written before
    the option existed are DisCoM-KD runs)."""
    name = config_or_name if isinstance(config_or_name, str) else \
        config_or_name.get("method", "discomkd")
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; expected one of {', '.join(METHODS)}.")
    return METHODS[name]


def branch_of(config):
    """The DisCoM-KD branch form of a run's config: "separate" or "shared", None for
    the methods with architectures of their own; config.json files written before
    the option existed mean "separate"."""
    if method_of(config).own_architecture:
        return None
    return config.get("branch") or "separate"


def methods_help():
    """The --method help: one line per method."""
    return "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values())
