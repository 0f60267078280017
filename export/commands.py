"""`discomkd-keras export` and `bench-export`: the converter side's commands,
added to the main command group in discomkd_keras/cli.py."""

import sys
from pathlib import Path

import click

from discomkd_keras.cli_support import errors, fail
from discomkd_keras.export.tflite_export import IO_TYPES, QUANTIZATIONS


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--modality", help="Modality to export, or 'all'.")
@click.option("--quantize", "quantization", type=click.Choice(QUANTIZATIONS),
              default="int8", show_default=True,
              help="int8: full-integer post-training quantization (representative data from the "
              "run's training split); float16 / dynamic: weights only; float32: none.")
@click.option("--io", "io_type", type=click.Choice(IO_TYPES), default="float32",
              show_default=True, help="Input/output tensor type (int8/uint8 only with --quantize "
              "int8; the card gives the scale and zero point).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output folder (default RUN_DIR/export); writes OUT/<modality>/.")
@click.option("--representative-size", type=int, default=300, show_default=True,
              help="Training samples used to calibrate int8 quantization.")
@click.option("--threshold", type=float, default=None,
              help="Minimum TFLite-vs-Keras argmax agreement on the test split "
              "(default 0.98 int8/dynamic, 0.995 float16, 0.999 float32).")
@click.option("--per-tensor", is_flag=True,
              help="int8/dynamic: one weight scale per convolution kernel instead of per output "
              "channel: smaller file (no 12-byte-per-channel parameters), usually a little less accurate.")
@click.option("--integer-only", "float_input_layers", flag_value=False, default=None,
              help="int8: fail rather than keep the input layers in float when the full-integer "
              "model disagrees with Keras on the validation split (for integer-only accelerators).")
@click.option("--overwrite", is_flag=True, help="Replace an existing export folder.")
@click.option("--check", "check_dir", type=click.Path(path_type=Path), default=None,
              help="Re-run the verification of an existing export folder against RUN_DIR "
              "(default: the run the folder sits in) and exit.")
def export_command(run_dir, modality, check_dir, out_dir, **options):
    """Export a modality's best classifier as a standalone, quantized, verified
    TFLite model: OUT/<modality>/{<modality>.tflite, labels.txt, model_card.json}.

    RUN_DIR defaults to the most recent run under runs/. Every export runs the
    TFLite model with the LiteRT interpreter on the run's test split and
    compares it with the Keras classifier; below --threshold nothing is written
    and the exit status is non-zero.
    """
    from discomkd_keras.export import check_export, export_modalities, format_report
    from discomkd_keras.run_directory import latest_run

    try:
        if check_dir is not None:
            card, report = check_export(check_dir, run_dir)
            click.echo(format_report(card["modality"], report))
            if not report["passed"]:
                sys.exit(1)
            return
        if not modality:
            fail("--modality NAME (or 'all') is required.")
        run_dir = run_dir or latest_run()
        def written(folder, card):
            click.echo(format_report(card["modality"], card["verification"]))
            click.echo(f"Wrote {folder}/ ({card['file_size_bytes'] / 1024:.1f} KiB model). "
                       f"On the device: discomkd-edge classify {folder} INPUT_FILE (or python "
                       "edge_demo/classify.py)\n")

        export_modalities(run_dir, modality, out_dir=out_dir, log=click.echo, on_export=written,
                          **options)
    except errors() as err:
        fail(str(err))


@click.command("bench-export")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--modality", default="all", show_default=True, help="Modality, or 'all'.")
@click.option("--quantize", "quantizations", default="float32,float16,dynamic,int8,int8-per-tensor",
              show_default=True, help="Comma-separated quantizations to compare; '-per-tensor' "
              "after int8 or dynamic means one weight scale per tensor (export --per-tensor); "
              "int8 is full-integer, 'int8-float-input' int8 with its input layers in float.")
@click.option("--runs", type=int, default=200, show_default=True,
              help="Timed batch-1 invocations per model and thread count.")
@click.option("--out", "out_file", type=click.Path(path_type=Path), default=None,
              help="Also write the Markdown table here.")
def bench_export_command(run_dir, modality, quantizations, runs, out_file):
    """Compare quantizations of a run's classifiers: file size and ratio to
    float32, test weighted F1, TFLite/Keras agreement, median 1- and 2-thread
    latency, parameters and MACs. Figures are printed (and optionally saved)."""
    from discomkd_keras.export.benchmark import bench_export_run
    from discomkd_keras.run_directory import latest_run

    try:
        wanted = [q.strip() for q in quantizations.split(",") if q.strip()]
        for table in bench_export_run(run_dir or latest_run(), modality, wanted, runs, out_file,
                                      log=click.echo):
            click.echo(table + "\n")
    except errors() as err:
        fail(str(err))
