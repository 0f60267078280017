"""The report of a comparison: Markdown tables (scores, differences, cost, per-class
F1, exports), the bar plot (plots.py) and the raw JSON, each written atomically."""

import json
from pathlib import Path

from discomkd_keras.comparison.statistics import (BASELINES_OF_GAIN, JOINT,  # noqa: F401
                                                  TARGET_COST_RATIO, TARGET_GAIN_WEAK,
                                                  TARGET_LOSS_STRONG, summarise,
                                                  verdict_word)
from discomkd_keras.methods import STUDENT_METHODS

DEFAULT_AUGMENTATION = "default (images: the released flips and rotations; spectrograms: none)"


def duration(seconds):
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def _fmt(mean_std, digits=1):
    mean, std = mean_std
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _fmt_or_dash(mean_std, digits=1):
    return "-" if mean_std is None else _fmt(mean_std, digits)


def format_markdown(raw, summary, png_name):
    o = raw["options"]
    modalities = summary["modalities"]
    methods = summary["methods"]
    seeds = raw["seeds"]
    lines = [
        f"# DisCoM-KD against its baselines: {raw['dataset']}",
        "",
        f"Measured {raw['date']} on {raw['machine'].get('cpus')} CPU core(s) "
        f"({raw['machine'].get('platform')}; Keras {raw['machine'].get('keras')} on "
        f"{raw['machine'].get('backend')}). Written by `discomkd_keras/comparison/report.py` from "
        f"`{Path(png_name).stem}.json`; numbers are never edited by hand.",
        "",
        f"**Settings:** encoders {o.get('encoders') or 'default'}, "
        f"{o.get('branch') or 'separate'} branches, D = {o.get('feature_dim')}, "
        f"{o.get('epochs')} epochs, batch {o.get('batch_size')} per modality, Adam lr "
        f"{o.get('learning_rate')}, augmentation {o.get('augment') or DEFAULT_AUGMENTATION}, "
        f"GRL lambda {o.get('grl_schedule', 'constant')}, "
        f"DisCoM-KD variant {json.dumps(o.get('discomkd_variant') or {})}, "
        f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); data `{json.dumps(raw['data'])}`.",
        f"Each classifier is the epoch with the best validation weighted F1; figures are on the "
        f"test split, mean ± std over seeds, in points (%).",
        "",
        f"**Command:** `{raw['command']}`",
        "",
        *(["## Verdict", "", *[f"- {v}" for v in summary["verdicts"].values()], "",
           "The twin is the very network DisCoM-KD deploys for the modality, trained alone; "
           "helps or hurts only where the 95% interval of the paired per-seed difference "
           "excludes 0.", ""] if summary.get("verdicts") else []),
        "## Test weighted F1, accuracy and macro F1 per deployed classifier",
        "",
    ]
    head = "| method | " + " | ".join(f"{m} F1 | {m} acc" for m in modalities) + \
        " | s / epoch | samples / s | deployed params | deployed MACs | test macro F1 |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for label, s in methods.items():
        if label in JOINT:
            continue
        cells = []
        for m in modalities:
            cells += [_fmt(s["f1"][m]), _fmt(s["accuracy"][m])]
        params = " / ".join(f"{s['parameters'][m]:,}" for m in modalities)
        macs = " / ".join(f"{s['macs'][m] / 1e6:.2f} M" if s["macs"].get(m) is not None else "?"
                          for m in modalities)
        macro = " / ".join(_fmt_or_dash((s.get("macro_f1") or {}).get(m)) for m in modalities)
        lines.append(f"| {label} | " + " | ".join(cells) +
                     f" | {s['seconds_per_epoch']:.1f} | {s['samples_per_s']:.0f} | {params} | {macs} "
                     f"| {macro} |")
    if "teacher" in methods:
        t = methods["teacher"]
        lines += ["", f"Multi-modal teacher (all modalities at test time, not deployable on one "
                  f"sensor): F1 {_fmt(t['f1']['teacher'])}, accuracy {_fmt(t['accuracy']['teacher'])}, "
                  f"macro F1 {_fmt_or_dash((t.get('macro_f1') or {}).get('teacher'))}, "
                  f"{t['seconds_per_epoch']:.1f} s / epoch, {t['parameters']['teacher']:,} parameters."]
    lines += [
        "",
        "s / epoch: median training time of one epoch (epochs 2 onwards, validation excluded); one "
        "run trains every modality's classifier at once (for the unimodal twins too: their "
        "branches share nothing). samples / s counts every modality's samples. The students "
        "also need the teacher's training time. Deployed params / MACs: the exported classifier "
        "of each modality (batch 1; the single-encoder baseline has one encoder, DisCoM-KD's "
        "branch two, or one with shared branches). Test macro F1 (per modality, "
        f"{' / '.join(modalities)}): the unweighted mean of each class's F1 over the classes in "
        "the test split, so a class served badly weighs as much as a frequent one; F1 alone is "
        "the weighted F1 (each class by its share of the test samples); - where the runs were "
        "recorded before macro F1.",
    ]
    if summary.get("differences"):
        weak = summary.get("weak")
        lines += ["", "## DisCoM-KD against each baseline", "",
                  "Per-seed paired differences of test weighted F1 (DisCoM-KD minus baseline, "
                  "same seed), mean, std and 95% confidence interval (Student t); DisCoM-KD "
                  "helps or hurts only where the interval excludes 0.", "",
                  "| modality | baseline | baseline F1 | DisCoM-KD F1 | difference | 95% CI | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for m in modalities:
            for base, differences in summary["differences"].items():
                g = differences[m]
                ci = f"[{g['low']:+.1f}, {g['high']:+.1f}]" if g["n"] > 1 else "(one seed)"
                lines.append(f"| {m}{' (weaker)' if m == weak else ''} | {base} | "
                             f"{_fmt(methods[base]['f1'][m])} | {_fmt(methods['discomkd']['f1'][m])} "
                             f"| {g['mean']:+.1f} ± {g['std']:.1f} | {ci} | {verdict_word(g)} |")
    if "gains" in summary and raw.get("targets", True):
        target_word = "met" if summary["gain_target_met"] else "NOT met"
        lines += ["", f"Target (the weaker modality +{TARGET_GAIN_WEAK:g} points or more against "
                  f"the twin and the single-encoder baseline, each interval above 0; the other "
                  f"modalities not worse than -{TARGET_LOSS_STRONG:g} against their twins): "
                  f"**{target_word}**."]
        ratio = summary["cost_ratio"]
        lines += [f"Training cost, DisCoM-KD / unimodal twins (time per epoch): {ratio:.2f}x "
                  f"(target <= {TARGET_COST_RATIO:g}x: **{'met' if ratio <= TARGET_COST_RATIO else 'NOT met'}**)."]
        if "teacher" in methods:
            for label in STUDENT_METHODS:
                if label in methods:
                    both = methods["teacher"]["seconds_per_epoch"] + methods[label]["seconds_per_epoch"]
                    lines.append(f"Teacher + {label} students: {both:.1f} s / epoch, "
                                 f"{both / methods['discomkd']['seconds_per_epoch']:.2f}x DisCoM-KD.")
    lines += cost_lines(summary)
    lines += per_class_lines(summary)
    if raw.get("exports"):
        lines += ["", "## Exported: the best classifier of each modality", "",
                  "Chosen by mean validation weighted F1 over the seeds (ties to the cheaper "
                  "classifier), never by a test figure; the run of that method with the best "
                  "validation F1 was exported and verified.", ""]
        lines += [f"- {e['modality']}: **{e['method']}**, seed {e['seed']} -> `{e['folder']}` "
                  f"({e['quantization']}; agreement with Keras {100 * e['agreement']:.1f}% on the "
                  f"test split; test F1 {100 * e['test_weighted_f1']:.1f}). Why: {e['why']}."
                  for e in raw["exports"]]
    lines += ["", f"![Test weighted F1 per method]({png_name})", ""]
    return "\n".join(lines)


def per_class_lines(summary):
    """The section "Per-class test F1 of the chosen classifier" (summary["per_class_f1"]):
    one column per modality, one row per class; no lines where the records have no
    per-class F1."""
    chosen = summary.get("per_class_f1")
    if not chosen:
        return []
    modalities = [m for m in summary["modalities"] if m in chosen]
    classes = []
    for m in modalities:
        classes += [c for c in chosen[m]["class_names"] if c not in classes]
    lines = ["", "## Per-class test F1 of the chosen classifier", "",
             "Per modality, the method `--export-best` exports, or would (best mean validation "
             "weighted F1 over the seeds, ties to the cheaper classifier) and, of its runs, the "
             "one with the best validation F1; each class's F1 on the test split, in points, so "
             "a class the weighted F1 hides shows. - where a class is not in that run.", ""]
    head = "| class | " + " | ".join(f"{m}: {chosen[m]['method']}, seed {chosen[m]['seed']}"
                                     for m in modalities) + " |"
    lines += [head, "|" + "---|" * (len(modalities) + 1)]
    for c in classes:
        cells = []
        for m in modalities:
            names = chosen[m]["class_names"]
            cells.append(f"{chosen[m]['f1'][names.index(c)]:.1f}" if c in names else "-")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def cost_lines(summary):
    """The cost table: what each deployed classifier costs on a device, and to train."""
    modalities = summary["modalities"]
    lines = ["", "## Cost", "",
             "| method | deployed params | deployed MACs | int8 TFLite | training per run | s / epoch |",
             "|---|---|---|---|---|---|"]
    for label, s in summary["methods"].items():
        if label in JOINT:
            continue
        sizes = s.get("int8_bytes") or {}
        int8 = " / ".join(f"{sizes[m] / 1024:.0f} KiB" if sizes.get(m) else "n/a"
                          for m in modalities)
        macs = " / ".join(f"{s['macs'][m] / 1e6:.2f} M" if s["macs"].get(m) is not None else "?"
                          for m in modalities)
        params = " / ".join(f"{s['parameters'][m]:,}" for m in modalities)
        lines.append(f"| {label} | {params} | {macs} | {int8} | "
                     f"{duration(s.get('train_seconds', 0.0))} | {s['seconds_per_epoch']:.1f} |")
    lines += ["", f"Per modality ({' / '.join(modalities)}); MACs of one input (batch 1); int8 "
              "size of the first seed's classifier (n/a without TensorFlow); training time is the "
              "mean over seeds of one run's training (every modality at once)."]
    return lines


def write_report(raw, out_dir, stem=None):
    """Write OUT/<stem>.json (raw), .md (tables) and .png (bars), stem defaulting to the
    data set's name; return the paths."""
    from discomkd_keras.plots import plot_comparison
    from discomkd_keras.run_directory import write_atomic

    if not raw.get("runs"):
        raise ValueError("No runs to report.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or raw["dataset"]
    summary = summarise(raw)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.md", out_dir / f"{stem}.png"]
    write_atomic(paths[0], json.dumps(raw, indent=2))
    write_atomic(paths[1], format_markdown(raw, summary, paths[2].name))
    plot_comparison(raw, summary, paths[2])
    return paths
