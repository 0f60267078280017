"""Does DisCoM-KD beat training alone on this data? Several methods x several seeds,
their paired differences, a verdict per modality, and the best classifier exported.

`discomkd-keras compare` (cli.py) and `benchmarks/compare_methods.py` are command
lines over this package:
- `runs.py`: the plan (methods.py's COMPARE_RUNS x seeds) and the runs, each an
  ordinary run directory (train_run), so a run can be inspected, evaluated or
  exported like any other; a finished run with the same settings is reused, so an
  interrupted comparison resumes where it stopped; `compare`, the command's call;
- `statistics.py`: means over seeds, paired differences with 95% intervals, verdicts,
  and the choice of each modality's classifier;
- `report.py`: Markdown, JSON and the bar plot (plots.py);
- `export_best.py`: each modality's chosen classifier exported and verified;
- `result.py`: `Comparison`, what the Python API's `compare` returns.

Model selection uses the validation split only: each run keeps every modality's
classifier at its best validation epoch, and the method is chosen by mean validation
F1; test figures are reported, never used to choose.
"""

from discomkd_keras.comparison.export_best import export_best  # noqa: F401
from discomkd_keras.comparison.report import (DEFAULT_AUGMENTATION, cost_lines,  # noqa: F401
                                              duration, format_markdown, per_class_lines,
                                              write_report)
from discomkd_keras.comparison.runs import (DKD_WARMUP_FRACTION, PATH_KEYS, _finished,  # noqa: F401
                                            _slug,
                                            add_int8_sizes, compare, comparison_options,
                                            describe_machine, make_raw, method_options,
                                            per_class_f1_of, plan_runs, run_comparison,
                                            run_record, shared_options)
from discomkd_keras.comparison.statistics import (BASELINES_OF_GAIN, JOINT, T_95,  # noqa: F401
                                                  TARGET_COST_RATIO, TARGET_GAIN_WEAK,
                                                  TARGET_LOSS_STRONG, choose_method,
                                                  chosen_per_class_f1, chosen_run,
                                                  paired_difference, summarise, verdict,
                                                  verdict_word)
from discomkd_keras.methods import (BASELINES, COMPARE_LABELS, COMPARE_RUNS,  # noqa: F401
                                    DEFAULT_COMPARISON, STUDENT_METHODS)

# The names these had before methods.py (benchmarks and notebooks import them from here).
METHOD_RUNS, METHOD_LABELS, DEFAULT_METHODS = COMPARE_RUNS, COMPARE_LABELS, DEFAULT_COMPARISON
