"""`Comparison`: what `discomkd_keras.compare` returns, the report of a finished
comparison and the export of each modality's best classifier."""

from pathlib import Path


class Comparison:
    """A finished comparison: its raw record (every run, report.json), the report's
    paths and the verdict per modality (DisCoM-KD against each baseline, paired over
    seeds, 95% interval)."""

    def __init__(self, raw, paths, data=None):
        self.raw = raw
        self.paths = [Path(p) for p in paths]
        self._data = data

    def __repr__(self):
        return f"Comparison({str(self.report_path)!r})"

    @property
    def report_path(self):
        """report.md (report.json and report.png beside it)."""
        return self.paths[1]

    @property
    def summary(self):
        """Per method and modality: test F1 and accuracy (mean, std in points), costs."""
        from discomkd_keras.comparison import summarise

        return summarise(self.raw)

    @property
    def verdicts(self):
        """{modality: one sentence}, e.g. "DisCoM-KD helps depth: +4.4 [+2.4,
        +6.4] points of test weighted F1 over its unimodal twin (5 seeds)"."""
        return dict(self.summary.get("verdicts", {}))

    def export_best(self, log=print):
        """Export each modality's best classifier (best mean validation F1, ties to the
        cheaper; int8, float16 if int8 fails its check) to OUT/export/<modality>/; return
        one record per modality and rewrite the report with them."""
        from discomkd_keras.comparison import export_best, write_report

        out_dir = self.report_path.parent
        self.raw["exports"] = export_best(self.raw, out_dir, self._data, log=log)
        self.paths = write_report(self.raw, out_dir, "report")
        return self.raw["exports"]
