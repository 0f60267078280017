"""The `discomkd-keras` command: a thin click layer over the library."""

import click

from discomkd_keras import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="discomkd-keras")
def main():
    """DisCoM-KD: train all single-modality classifiers of a multi-modal data
    set at once, then export each one as a small quantized TFLite model.

    Typical day: `discomkd-keras train ...` on a GPU box, then
    `discomkd-keras export --modality depth`, then copy `edge_demo/` and the
    `.tflite` to the device.
    """
