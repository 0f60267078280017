"""Export each modality's chosen classifier after a comparison (choose_method)."""

from pathlib import Path

from discomkd_keras.comparison.statistics import JOINT, choose_method, chosen_run, summarise


def export_best(raw, report_dir, data, log=print):
    """Export each modality's best classifier: the method with the best mean validation
    weighted F1 (ties to fewer deployed parameters, then MACs: choose_method), and of its
    runs the one with the best validation F1 (chosen_run); int8 with the usual
    verification, float16 if int8 fails it. Returns one record per modality for the report."""
    from discomkd_keras.export import ExportError, export_modality

    report_dir = Path(report_dir)
    summary = summarise(raw)
    exports = []
    for m in summary["modalities"]:
        candidates = {label: s for label, s in summary["methods"].items() if label not in JOINT}
        chosen = choose_method(summary, m)  # the report's per-class section shows the same
        best, order, tied = chosen["method"], chosen["ranking"], chosen["tied"]
        runs = [r for r in raw["runs"] if r["method"] == best]
        why = (f"the best mean validation F1 over {len(runs)} seed(s), "
               f"{candidates[best]['valid_f1'][m][0]:.1f}")
        if tied:
            why += f", tied with {', '.join(tied)}, and the cheaper"
        elif len(order) > 1:
            why += f" (next: {order[1]}, {candidates[order[1]]['valid_f1'][m][0]:.1f})"
        run = chosen_run(raw, best, m)
        run_dir = report_dir / run["run_dir"]
        for quantization, fallback in (("int8", "float16"), ("float16", "float32"),
                                       ("float32", None)):
            try:
                card = export_modality(run_dir, m, quantization=quantization,
                                       out_dir=report_dir / "export", overwrite=True, data=data,
                                       log=log)
                break
            except ExportError as err:
                if fallback is None or "verification failed" not in str(err):
                    raise
                log(f"[{m}] {quantization} failed its check ({err}); exporting {fallback} instead.")
                why += f"; {quantization} failed its agreement check, so {fallback}"
        exports.append({"modality": m, "method": best, "seed": run["seed"], "seeds": len(runs),
                        "mean_valid_f1": candidates[best]["valid_f1"][m][0] / 100, "why": why,
                        "folder": f"export/{m}", "quantization": quantization,
                        "agreement": card["verification"]["agreement"],
                        "test_weighted_f1": run["results"][m]["test_weighted_f1"]})
        log(f"Exported {m}: {best}, seed {run['seed']} -> {report_dir / 'export' / m}; {why}")
    return exports
