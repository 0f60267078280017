"""Size, accuracy and speed of every quantization of one modality's classifier.

Each quantization is exported (and verified) into a temporary folder; then
the model is timed with the LiteRT interpreter at batch 1, one and two
threads, over `runs` invocations after a warm-up. Figures are printed and
returned, never asserted.
"""

import statistics
import tempfile
import time
from pathlib import Path

from discomkd_keras.choices import QUANTIZATION_VARIANTS
from discomkd_keras.model_cost import count_macs
from discomkd_keras.export.tflite_export import QUANTIZATIONS, export_modality, load_best_classifier


def time_model(model_path, x, threads, runs, warmup=20):
    from discomkd_keras.edge_demo.runtime import Classifier

    classifier = Classifier(model_path, num_threads=threads)
    sample = x[0]
    for _ in range(warmup):
        classifier(sample)
    times = []
    for i in range(runs):
        sample = x[i % len(x)]
        start = time.perf_counter()
        classifier(sample)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bench_export(run_dir, modality, quantizations=QUANTIZATIONS, runs=200, data=None, log=print,
                 keep_dir=None):
    """Rows of {quantization, size, ratio, F1, agreement, latencies, params, MACs, path}.

    Quantizations are named as `export --quantize` names them (choices.
    QUANTIZATION_VARIANTS); int8 variants are timed full-integer unless the name
    says float input. The exports go
    to `keep_dir`/<q>/<modality>/ when given (to be timed again later), else to a
    temporary directory that is removed (their "path" then names nothing)."""
    from discomkd_keras.data import load_data
    from discomkd_keras.export.tflite_export import read_run

    config, _ = read_run(run_dir)
    data = data if data is not None else load_data(config["data"])
    classifier, _ = load_best_classifier(run_dir, modality)
    params, macs = int(classifier.count_params()), count_macs(classifier)
    x_test, _ = data.split(modality, "test")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(keep_dir) if keep_dir is not None else scratch
        for q in quantizations:
            # Plain "int8" is timed full-integer: the model the name promises, not the
            # fallback export picks when it disagrees ("int8-float-input" is that one).
            how = {"float_input_layers": False} \
                if QUANTIZATION_VARIANTS[q]["quantization"] == "int8" else {}
            card = export_modality(run_dir, modality, out_dir=f"{tmp}/{q}", data=data,
                                   threshold=0.0, log=lambda *_: None,
                                   **{**how, **QUANTIZATION_VARIANTS[q]})
            path = f"{tmp}/{q}/{modality}/{modality}.tflite"
            v = card["verification"]
            rows.append({
                "quantization": q, "size_kib": card["file_size_bytes"] / 1024,
                "keras_f1": v["keras_weighted_f1"], "tflite_f1": v["tflite_weighted_f1"],
                "agreement": v["agreement"], "max_abs_prob_diff": v["max_abs_prob_diff"],
                "ms_1_thread": time_model(path, x_test, 1, runs),
                "ms_2_threads": time_model(path, x_test, 2, runs),
                "parameters": params, "macs": macs, "path": path,
            })
            log(f"  {q}: done")
    base = next((r["size_kib"] for r in rows if r["quantization"] == "float32"), None)
    for r in rows:
        r["size_ratio"] = r["size_kib"] / base if base else float("nan")
    return rows


def format_table(modality, rows, runs):
    head = (f"| {modality} | size KiB | x float32 | Keras F1 | TFLite F1 | agreement | "
            f"max dprob | ms 1 thr | ms 2 thr |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['quantization']} | {r['size_kib']:.1f} | {r['size_ratio']:.3f} | "
                     f"{r['keras_f1']:.4f} | {r['tflite_f1']:.4f} | {r['agreement']:.4f} | "
                     f"{r['max_abs_prob_diff']:.3g} | {r['ms_1_thread']:.3f} | {r['ms_2_threads']:.3f} |")
    r = rows[0]
    lines.append(f"\n{modality} branch: {r['parameters']:,} parameters, {r['macs'] / 1e6:.2f} M MACs; "
                 f"latency = median of {runs} batch-1 invocations after 20 warm-up runs "
                 f"(LiteRT interpreter, XNNPACK).")
    return "\n".join(lines)


def bench_export_run(run_dir, modality="all", quantizations=QUANTIZATIONS, runs=200, out_file=None,
                     log=print):
    """`discomkd-keras bench-export`: the table of every requested modality (its data
    loaded once), yielded as it is done; all of them also written to `out_file`."""
    from discomkd_keras.data import load_data
    from discomkd_keras.export.tflite_export import ExportError, read_run
    from discomkd_keras.run_directory import write_atomic

    config, _ = read_run(run_dir)
    modalities = config["modalities"] if modality == "all" else [modality]
    for m in modalities:
        if m not in config["modalities"]:
            raise ExportError(f"Unknown modality {m!r}; this run has: {', '.join(config['modalities'])}.")
    data = load_data(config["data"])
    tables = []
    for m in modalities:
        log(f"Benchmarking {m} ...")
        tables.append(format_table(m, bench_export(run_dir, m, quantizations, runs=runs, data=data,
                                                   log=log), runs))
        yield tables[-1]
    if out_file:
        write_atomic(out_file, report_header(run_dir, modality, quantizations, runs) + "\n\n"
                     + "\n\n".join(tables) + "\n")


def report_header(run_dir, modality, quantizations, runs):
    """What a saved table needs to be read later: the run, the command that remakes it, the
    date, the machine and the converter and runtime versions (latencies depend on all)."""
    import datetime
    import platform
    from importlib import metadata

    from discomkd_keras.comparison.runs import describe_machine

    machine = describe_machine()  # what compare's reports record: platform, cores, versions
    try:
        litert = metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        litert = "not installed"
    command = (f"discomkd-keras bench-export {run_dir} --modality {modality} "
               f"--quantize {','.join(quantizations)} --runs {runs}")
    return (f"# Quantizations of {Path(run_dir).name}'s classifiers\n\n"
            f"Command: `{command}`\n\n"
            f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, "
            f"{machine['cpus']} CPU cores ({machine['platform']}); TensorFlow "
            f"{machine.get('tensorflow', 'not installed')}, Keras {machine['keras']}, "
            f"ai-edge-litert {litert}. Latencies depend on the machine and its load; sizes, "
            f"F1 and agreement do not.")
