"""Training from files at scale: first-decode speed, peak memory of training, and
time per epoch against the same rows held in memory as released-layout .npy.

    python benchmarks/files.py [--rows 20000] [--epochs 3] [--work-dir benchmarks/runs/files]

Writes N RGB PNGs and N 16-bit depth PNGs (64x64; MNIST digits from ../shared/data,
coloured and given a depth relief, 10 classes) as modality trees, decodes them
into a fresh cache (files/s), then trains the same model twice in fresh
processes: from the trees (memory-mapped cache) and from a released-layout
folder of the same rows as float32 .npy (whole arrays in memory). Peak RSS is
the training process's maximum resident set; time per epoch is the median of
the training seconds of epochs 2.. in history.csv (epoch 1 includes tracing).
Targets (issue 16): first decode >= 1,000 files/s, peak RSS < 2 GB,
files / in-memory time per epoch <= 1.15. Results: benchmarks/results/files.md.
"""

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist" / "mnist-10k.npz"
TRAIN = ["--encoder", "lenet", "--feature-dim", "64", "--batch-size", "64", "--lr", "1e-3",
         "--seed", "0", "--quiet"]


def write_trees(tree, rows, size=64):
    """rows RGB + rows depth PNGs in tree/{rgb,depth}/<digit>/<i>.png (both of row i show
    the same digit, so the released-layout twin can hold them as paired rows)."""
    from PIL import Image

    with np.load(MNIST, allow_pickle=False) as f:
        digits, labels = f["x"], f["y"]
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(digits), rows)
    for m in ("rgb", "depth"):
        for c in range(10):
            (tree / m / str(c)).mkdir(parents=True, exist_ok=True)
    pad = (size - 56) // 2
    for i, j in enumerate(pick):
        big = np.kron(digits[j], np.ones((2, 2), np.uint8))
        big = np.pad(big, ((pad, size - 56 - pad), (pad, size - 56 - pad)))
        colour = rng.integers(60, 256, 3)
        noise = rng.integers(0, 40, (size, size, 3))
        rgb = np.clip(big[..., None].astype(np.int32) * colour // 255 + noise, 0, 255).astype(np.uint8)
        depth = (1500 - 4 * big.astype(np.int32) + rng.integers(0, 30, (size, size))).astype(np.uint16)
        depth[rng.random((size, size)) < 0.03] = 0  # sensor holes
        Image.fromarray(rgb).save(tree / "rgb" / str(labels[j]) / f"{i:06d}.png")
        Image.fromarray(depth).save(tree / "depth" / str(labels[j]) / f"{i:06d}.png")


def timed_train(args, run_dir, env):
    """(peak RSS in MB, median train seconds per epoch after the first) of one training process."""
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.exit(r.returncode)")
    cmd = [sys.executable, "-c", wrapper, sys.executable, "-m", "discomkd_keras.cli", "train",
           *args, "--run-dir", str(run_dir), "--overwrite"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"training failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    rss_kb = int(out.stdout.rsplit("MAXRSS", 1)[1].split()[0])
    with open(run_dir / "history.csv") as f:
        seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
    return rss_kb / 1024, statistics.median(seconds[1:]), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20000, help="files per modality")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / "runs" / "files")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "files.md")
    args = parser.parse_args()
    if not MNIST.exists():
        sys.exit(f"needs {MNIST} (../shared/data)")
    work = args.work_dir
    tree, released, cache = work / "tree", work / "released", work / "cache"
    env = dict(os.environ, DISCOMKD_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL="2")
    os.environ["DISCOMKD_CACHE"] = str(cache)

    if not (tree / "rgb").exists() or sum(1 for _ in (tree / "rgb").rglob("*.png")) != args.rows:
        shutil.rmtree(tree, ignore_errors=True)
        started = time.perf_counter()
        write_trees(tree, args.rows)
        print(f"wrote {2 * args.rows:,} PNGs in {time.perf_counter() - started:.0f} s", flush=True)

    from discomkd_keras.data import load_data
    shutil.rmtree(cache, ignore_errors=True)
    started = time.perf_counter()
    data = load_data({"source": "files", "directory": str(tree)})
    first = time.perf_counter() - started
    decode = sum(json.loads(p.read_text())["seconds"] for p in cache.glob("files/*/meta.json"))
    started = time.perf_counter()
    load_data({"source": "files", "directory": str(tree)})
    again = time.perf_counter() - started
    files = 2 * args.rows
    print(f"first load {first:.1f} s ({files / first:,.0f} files/s; decoding alone "
          f"{files / decode:,.0f} files/s), cached {again:.1f} s", flush=True)

    # The same rows as released-layout arrays, normalised exactly as the files run sees them.
    if not (released / "labels.npy").exists():
        released.mkdir(parents=True, exist_ok=True)
        for m in ("rgb", "depth"):
            x = np.asarray(data.inputs[m]).transpose(0, 3, 1, 2)
            np.save(released / f"{m}_data_normalized.npy", x)
        for s in ("train", "valid", "test"):
            np.save(released / f"{s}_idx.npy", data.splits["rgb"][s])
        np.save(released / "labels.npy", data.labels["rgb"])
    assert data.paired, "the benchmark's trees should pair row i of rgb and depth"
    del data

    common = TRAIN + ["--epochs", str(args.epochs)]
    rss_files, epoch_files, all_files = timed_train(["--data-dir", str(tree), *common],
                                                    work / "run-files", env)
    print(f"files: peak RSS {rss_files:,.0f} MB, {epoch_files:.1f} s / epoch {all_files}", flush=True)
    rss_npy, epoch_npy, all_npy = timed_train(["--data-dir", str(released), *common],
                                              work / "run-npy", env)
    print(f"npy:   peak RSS {rss_npy:,.0f} MB, {epoch_npy:.1f} s / epoch {all_npy}", flush=True)

    ratio = epoch_files / epoch_npy
    rate = files / first
    rows = [("first decode of the trees (scan, decode, cache, statistics)", f"{rate:,.0f} files/s",
             ">= 1,000 files/s", rate >= 1000),
            ("peak RSS, training from files", f"{rss_files:,.0f} MB", "< 2,048 MB", rss_files < 2048),
            ("time per epoch, files / in-memory .npy", f"{epoch_files:.1f} / {epoch_npy:.1f} s = "
             f"{ratio:.2f}x", "<= 1.15x", ratio <= 1.15)]
    options = " ".join(TRAIN[:-1])
    text = [f"# Training from files: {args.rows:,} RGB + {args.rows:,} 16-bit depth PNGs, 64x64",
            "",
            f"`python benchmarks/files.py --rows {args.rows} --epochs {args.epochs}` on this "
            f"{os.cpu_count()}-core CPU, seed 0, one run (times: median of epochs 2-{args.epochs}; "
            "the machine was shared with other work, so read the times as +-10%).",
            f"Model: lenet, D = 64, batch 64 per modality, 10 classes (`{options}`).",
            "",
            "| figure | measured | target | met |", "|---|---:|---|---|"]
    text += [f"| {a} | {b} | {c} | {'yes' if d else '**no**'} |" for a, b, c, d in rows]
    text += ["",
             f"- First load {first:.1f} s for {files:,} files; decoding alone "
             f"{files / decode:,.0f} files/s; the second load, from the cache, {again:.1f} s.",
             f"- In-memory twin: peak RSS {rss_npy:,.0f} MB (the float32 arrays, "
             f"{(args.rows * 64 * 64 * 4 * 4) / 2**20:,.0f} MB, are read whole).",
             f"- Train seconds per epoch, files: {all_files}; in-memory: {all_npy}."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(text) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
