"""Real-file data sets for choosing presets, written from ../shared/data (never copied
into the repository).

    python benchmarks/make_mnist_features.py OUT [--limit N] [--shared DIR] [--overwrite]

"MNIST features", in the style of UCI's multiple-features set (several descriptions of the
same handwritten digit): OUT/manifest.csv with the columns label, pix, fou (no split
column: the package makes stratified 70/10/20 splits from --split-seed), and per MNIST
image i (the 10,000 of mnist/mnist-10k.npz, or N of them with --limit, taken
class by class in turn so that every digit is there; <i> is the image's row):

    OUT/pix/<i>.png   the 28x28 8-bit grey image, as it is
    OUT/fou/<i>.npy   float32 (36,): |FFT2(image)| at the lowest 6x6 non-negative
                      frequencies (u, v in 0..5, row-major), divided by the pixel sum

The Fourier magnitudes are invariant to (circular) translation and lose the phase, so
`fou` is the weaker modality; the first value (the DC term over the pixel sum) is 1.
Both modalities describe the same image, so rows are paired.

`write_av_mnist_tree(shared, out)` writes AV-MNIST as modality trees exactly as the
README's worked example does (image/<digit>/<i>.png for all 10,000 MNIST digits,
audio/{train,test}/<digit>/<wav> with FSDD's takes 0-4 as the test set).

Both writers fill OUT.tmp first and rename it to OUT, so an interrupted write leaves no
half-written OUT; an existing OUT is refused unless overwrite is set.
"""

import argparse
import csv
import io
import shutil
import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FOURIER_SIZE = 6  # the lowest 6x6 non-negative frequencies: 36 values
MODALITIES = ("pix", "fou")


def fourier_features(image, size=FOURIER_SIZE):
    """float32 (size * size,): |FFT2(image)| at frequencies 0..size-1 on both axes, over
    the image's pixel sum (the DC term, so the first value is exactly 1; a blank image
    gives zeros)."""
    image = np.asarray(image, dtype=np.float64)
    magnitude = np.abs(np.fft.fft2(image))[:size, :size]
    total = image.sum()
    if total <= 0:
        return np.zeros(size * size, np.float32)
    features = magnitude / total
    features[0, 0] = 1.0  # |sum| / sum, without the FFT's rounding
    return features.reshape(-1).astype(np.float32)


def balanced_rows(labels, limit=None):
    """Row indices to write, sorted: all rows, or `limit` of them taken class by class in
    turn (the file is sorted by digit, so its first rows would all be zeros)."""
    labels = np.asarray(labels)
    if limit is None:
        return np.arange(len(labels))
    if int(limit) < 1:
        raise ValueError(f"limit must be >= 1; got {limit}.")
    rank = np.empty(len(labels), np.int64)  # position of each row within its class
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    order = np.lexsort((labels, rank))  # rank first, then class
    return np.sort(order[:int(limit)])


def _staging(out, overwrite):
    """The OUT.tmp folder to write into (fresh), after refusing an existing OUT."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite (overwrite=True) to replace it.")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _publish(tmp, out):
    """Rename the finished OUT.tmp to OUT (replacing an old OUT)."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _load_mnist(shared):
    path = Path(shared) / "mnist" / "mnist-10k.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --shared must point to the shared data "
                                "folder (README there).")
    with np.load(path, allow_pickle=False) as mnist:
        return mnist["x"], mnist["y"]


def write_mnist_features(shared=SHARED, out="mnist-features", limit=None, overwrite=False):
    """Write the MNIST-features folder (manifest.csv, pix/*.png, fou/*.npy) to `out` from
    the images of shared/mnist/mnist-10k.npz (all 10,000, or `limit` of them balanced over
    the digits: `balanced_rows`); return the folder."""
    from PIL import Image

    images, labels = _load_mnist(shared)
    rows_used = balanced_rows(labels, limit)
    tmp = _staging(out, overwrite)
    for m in MODALITIES:
        (tmp / m).mkdir()
    rows = []
    for i in rows_used:
        image, digit = images[i], labels[i]
        name = f"{i:05d}"
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="L").save(
            tmp / "pix" / f"{name}.png")
        np.save(tmp / "fou" / f"{name}.npy", fourier_features(image), allow_pickle=False)
        rows.append({"label": str(int(digit)), "pix": f"pix/{name}.png",
                     "fou": f"fou/{name}.npy"})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["label", *MODALITIES], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (tmp / "manifest.csv").write_text(text.getvalue(), encoding="utf-8")
    return _publish(tmp, out)


def write_av_mnist_tree(shared=SHARED, out="av-mnist-tree", overwrite=False):
    """AV-MNIST as modality trees, as the README's worked example writes it:
    out/image/<digit>/<i>.png (all 10,000 MNIST digits; the package makes seeded splits)
    and out/audio/{train,test}/<digit>/<wav> (FSDD: takes 0-4 test). Returns the folder."""
    from PIL import Image

    shared = Path(shared)
    images, labels = _load_mnist(shared)
    wavs = sorted((shared / "fsdd" / "recordings").glob("*.wav"))
    if not wavs:
        raise FileNotFoundError(f"No FSDD recordings in {shared / 'fsdd' / 'recordings'}.")
    tmp = _staging(out, overwrite)
    for i, (image, digit) in enumerate(zip(images, labels)):
        folder = tmp / "image" / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    for wav in wavs:
        digit, speaker, take = wav.stem.split("_")  # FSDD: takes 0-4 are its test set
        folder = tmp / "audio" / ("test" if int(take) < 5 else "train") / digit
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, folder)
    return _publish(tmp, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write (refused if it exists)")
    parser.add_argument("--limit", type=int, default=None,
                        help="only N MNIST images, balanced over the digits (default: all 10,000)")
    parser.add_argument("--shared", type=Path, default=SHARED,
                        help=f"the shared data folder (default: {SHARED})")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    args = parser.parse_args(argv)
    try:
        out = write_mnist_features(args.shared, args.out, args.limit, overwrite=args.overwrite)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    count = sum(1 for _ in (out / "pix").iterdir())
    print(f"Wrote {out}: manifest.csv, {count} pix/*.png and {count} fou/*.npy "
          f"({FOURIER_SIZE * FOURIER_SIZE} Fourier magnitudes each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
