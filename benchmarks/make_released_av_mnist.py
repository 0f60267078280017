"""Write an AV-MNIST set in the authors' released layout, from ../shared/data.

    python benchmarks/make_released_av_mnist.py OUT_DIR

The arrays both programs of benchmarks/released_protocol.py read:
    OUT_DIR/MNIST_data_normalized.npy    (3000, 1, 28, 28) float32
    OUT_DIR/SPECTRO_data_normalized.npy  (3000, 1, 64, 64) float32
    OUT_DIR/labels.npy                   (3000,) int64 digits
    OUT_DIR/{train,valid,test}_idx.npy   2430 / 270 / 300 rows

Rows are FSDD clips (official split: takes 0-4 test; 10% of the other clips
per digit, drawn from --seed, validation). SPECTRO: a 64-mel x 64-frame
log-mel spectrogram of the 1 s clip (the project's NumPy spectrogram with
n_mels=64, hop 122). MNIST: an image of the same digit from the same split of
the 10,000 MNIST digits, paired by class with a fixed seed. Each modality is
standardised with the mean and std of its training rows ("normalized", as the
file names promise). Written to a temporary folder, then renamed.
"""

import os
import shutil
import sys
from pathlib import Path

import click
import numpy as np

SPECTRO_PARAMS = {"n_mels": 64, "hop_length": 122}  # 1 + (8000 - 256) // 122 = 64 frames


def build(fsdd_dir=None, mnist_path=None, seed=0):
    """{file name: array} of the released-layout AV-MNIST set."""
    from discomkd_keras.data.av_mnist import (_resolve_inputs, audio_splits, load_fsdd,
                                              load_mnist, pair_by_label)
    from discomkd_keras.data.multimodal_dataset import stratified_split

    fsdd, mnist = _resolve_inputs(fsdd_dir, mnist_path)
    spec, digits, speakers, takes = load_fsdd(fsdd, **SPECTRO_PARAMS)
    splits = audio_splits(digits, speakers, takes, "official", seed)
    images, image_labels = load_mnist(mnist)
    pick = pair_by_label(digits, splits, image_labels, stratified_split(image_labels, seed), seed)
    assert np.array_equal(image_labels[pick], digits)

    def standardise(x):
        train = x[splits["train"]].astype(np.float64)
        return ((x - train.mean()) / train.std()).astype(np.float32)[:, None]

    arrays = {
        "MNIST_data_normalized.npy": standardise(images[pick].astype(np.float32)),
        "SPECTRO_data_normalized.npy": standardise(spec),
        "labels.npy": digits.astype(np.int64),
    }
    arrays.update({f"{s}_idx.npy": idx.astype(np.int64) for s, idx in splits.items()})
    return arrays


def write(out_dir, arrays):
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, array in arrays.items():
        np.save(tmp / name, array, allow_pickle=False)
    os.replace(tmp, out_dir)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True,
              help="Draws the validation clips and the image pairs.")
@click.option("--fsdd-dir", type=click.Path(path_type=Path), default=None)
@click.option("--mnist", "mnist_path", type=click.Path(path_type=Path), default=None)
def main(out_dir, seed, fsdd_dir, mnist_path):
    """Write AV-MNIST (MNIST + 64x64 FSDD spectrograms) in the released layout."""
    from discomkd_keras.data import DataError

    if out_dir.exists():
        click.echo(f"Error: {out_dir} exists; choose a new folder.", err=True)
        sys.exit(2)
    try:
        arrays = build(fsdd_dir, mnist_path, seed)
    except DataError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    write(out_dir, arrays)
    for name, array in arrays.items():
        click.echo(f"{out_dir / name}: {array.dtype} {array.shape}")


if __name__ == "__main__":
    main()
