"""`discomkd-keras predict` (discomkd_keras/predict.py): files classified by a run's Keras
classifiers or by an export folder's TFLite models, routed to modalities by encoding."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from discomkd_keras.data import DataError
from discomkd_keras.edge_demo.preprocessing import Preprocessor
from discomkd_keras.predict import predict_files
from discomkd_keras.run_directory import load_best
from test_file_layouts import (CLASSES, cli, depth_image, error_line, rgb_image,  # noqa: F401
                               write_tree)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCOMKD_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run on an RGB + 16-bit depth tree, and its float32 export of both modalities."""
    root = tmp_path_factory.mktemp("predict")
    tree = write_tree(root / "tree", n=6)
    run = root / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISCOMKD_CACHE", str(root / "cache"))
        result = cli("train", "--data-dir", tree, "--epochs", 1, "--encoder", "lenet",
                     "--feature-dim", 8, "--batch-size", 8, "--image-size", "16,16",
                     "--run-dir", run, "--quiet")
        assert result.exit_code == 0, result.output
        result = cli("export", run, "--modality", "all", "--quantize", "float32")
        assert result.exit_code == 0, result.output
    return tree, run, run / "export"


def keras_input(run, modality, path):
    """The device Preprocessor's input of `path` under the run's recorded preprocessing."""
    config = json.loads((run / "config.json").read_text())
    card = {"preprocessing": config["preprocessing"][modality], "kind": config["kinds"][modality],
            "input": {"shape": [1, *config["input_shapes"][modality]]}}
    [(_, x)] = Preprocessor(card, warn=lambda m: None).load(path)
    return x


# --------------------------------------------------------------------------- agreement


def test_run_and_export_give_the_keras_classifiers_top1(trained):
    tree, run, export = trained
    from_run = predict_files(run, [tree])
    from_export = predict_files(export, [tree])
    assert from_run.target == "run" and from_export.target == "export"
    assert len(from_run) == 36 and [r["path"] for r in from_run] == [r["path"] for r in from_export]
    assert {r["modality"] for r in from_run if "/depth/" in r["path"]} == {"depth"}
    assert {r["modality"] for r in from_run if "/rgb/" in r["path"]} == {"rgb"}
    for r, e in zip(from_run, from_export):  # float32 export: the same model
        assert (r["modality"], r["top1"]) == (e["modality"], e["top1"])
        np.testing.assert_allclose([p for _, p in r["topk"]], [p for _, p in e["topk"]],
                                   atol=1e-5)
        assert len(r["topk"]) == 3 and r["topk"][0] == (r["top1"], r["probability"])
        assert [p for _, p in r["topk"]] == sorted((p for _, p in r["topk"]), reverse=True)
    # top-1 is the argmax of the kept Keras classifier on the Preprocessor's input
    for m in ("depth", "rgb"):
        rows = [r for r in from_run if r["modality"] == m]
        x = np.stack([keras_input(run, m, r["path"]) for r in rows])
        clf, _ = load_best(run, m)
        probs = clf.predict(x, verbose=0)
        assert [r["top1"] for r in rows] == [CLASSES[i] for i in probs.argmax(1)]
        np.testing.assert_allclose([r["probability"] for r in rows], probs.max(1), atol=1e-5)
    # one modality's export folder; top_k beyond the classes lists every class
    depth_only = predict_files(export / "depth", [tree / "depth"], top_k=10)
    assert len(depth_only) == 18 and all(len(r["topk"]) == 3 for r in depth_only)
    assert [r["top1"] for r in depth_only] == [r["top1"] for r in from_run
                                               if r["modality"] == "depth"]


def test_export_folder_predicts_without_tensorflow(trained):
    tree, _, export = trained
    code = ("import sys\nfrom discomkd_keras.predict import predict_files\n"
            f"rows = predict_files({str(export)!r}, [{str(tree)!r}])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'jax'))\n"
            "print(len(rows), rows[0]['top1'], heavy)\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    count, top1, heavy = done.stdout.strip().split(" ", 2)
    assert count == "36" and top1 in CLASSES and heavy == "[]", done.stdout


def test_npy_files_go_to_the_modality_of_their_shape(trained, tmp_path):
    tree, run, export = trained
    rng = np.random.default_rng(3)
    np.save(tmp_path / "colour.npy", rgb_image(1, rng, (16, 16)))
    np.save(tmp_path / "batch.npy", np.stack([rgb_image(0, rng, (16, 16))] * 2))
    np.save(tmp_path / "range.npy", depth_image(2, rng, (16, 16)))
    rows = predict_files(run, [tmp_path])
    assert [(Path(r["path"]).name, r["modality"]) for r in rows] == [
        ("batch.npy[0]", "rgb"), ("batch.npy[1]", "rgb"), ("colour.npy", "rgb"),
        ("range.npy", "depth")]
    np.save(tmp_path / "odd.npy", np.zeros(5, np.float32))
    with pytest.raises(DataError, match=r"odd.npy: a .npy array of shape \(5,\), which fits no "
                                        "modality of this run"):
        predict_files(run, [tmp_path])


# --------------------------------------------------------------------------- the command


def test_cli_lines_csv_and_agreement_with_the_export(trained, tmp_path):
    tree, run, export = trained
    out = tmp_path / "predictions.csv"
    result = cli("predict", run, tree, "--csv", out, "--against", export, "--top-k", 2)
    assert result.exit_code == 0, result.output
    rows = predict_files(run, [tree], top_k=2)
    lines = result.output.splitlines()
    for r in rows:  # one line per input: path, modality, top-1 and its probability, the top-k
        [line] = [ln for ln in lines if ln.startswith(r["path"] + " ")]
        assert f"  {r['modality']}  {r['top1']} {r['probability']:.3f}  [top-2: " in line
    assert "36 inputs classified by" in result.output and "(depth 18, rgb 18)" in result.output
    assert "top-1 agreement: 36/36 (100.0%)" in result.output
    assert "  depth: 18/18 (100.0%)" in result.output and "differs:" not in result.output
    table = list(csv.reader(io.StringIO(out.read_text())))
    assert table[0] == ["path", "modality", "top1", "probability", "topk"]
    assert len(table) == 37 and not list(tmp_path.glob(".*tmp"))
    for line, r in zip(table[1:], rows):
        assert line[:3] == [r["path"], r["modality"], r["top1"]]
        assert float(line[3]) == pytest.approx(r["probability"], abs=1e-6)
        pairs = [item.split(":") for item in line[4].split(";")]
        assert [c for c, _ in pairs] == [c for c, _ in r["topk"]] and len(pairs) == 2
        np.testing.assert_allclose([float(p) for _, p in pairs], [p for _, p in r["topk"]],
                                   atol=1e-6)
    help_text = cli("predict", "--help").output
    assert "discomkd-keras predict RUN_DIR test/ --csv predictions.csv --against" in help_text


def test_other_types_are_ignored_and_other_encodings_refused(trained, tmp_path):
    tree, run, export = trained
    mixed = tmp_path / "mixed"
    shutil.copytree(tree / "depth" / "dog", mixed / "dog")
    (mixed / "clip.wav").write_bytes(b"RIFF")  # no audio modality: ignored, counted
    (mixed / "notes.txt").write_text("x")
    (mixed / ".thumb.png").write_bytes(b"not an image")  # hidden: skipped
    rows = predict_files(run, [mixed])
    assert len(rows) == 6 and {r["modality"] for r in rows} == {"depth"}
    assert sorted(p.name for p in rows.ignored) == ["clip.wav", "notes.txt"]
    result = cli("predict", run, mixed)
    assert result.exit_code == 0, result.output
    assert "Ignored 2 files of a type no modality takes: .txt 1, .wav 1." in result.output
    # named, a type no modality takes is refused
    line = error_line(cli("predict", run, mixed / "clip.wav"))
    assert line == (f"Error: {mixed / 'clip.wav'}: no modality of this run takes .wav files "
                    "(depth: .png, .npy; rgb: .png, .jpg, .jpeg, .npy).")
    # an 8-bit grey PNG: of no modality's encoding (16-bit depth, 8-bit RGB); refused by name
    grey = mixed / "dog" / "grey.png"
    Image.fromarray(np.full((20, 24), 7, np.uint8)).save(grey)
    line = error_line(cli("predict", run, mixed))
    assert line.startswith(f"Error: {grey}: an 8-bit grey image, which no modality of this run "
                           "takes (depth: depth model (16-bit PNG in millimetres); rgb: ")
    line = error_line(cli("predict", export / "depth", grey, "--modality", "depth"))
    assert line == (f"Error: {grey}: 8-bit grayscale image, but this depth model takes a "
                    "1-channel 16-bit PNG in millimetres (uint16, 0 = missing).")
    grey.unlink()
    corrupt = mixed / "dog" / "3.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    line = error_line(cli("predict", run, mixed, "--csv", tmp_path / "p.csv"))
    assert line.startswith(f"Error: {corrupt}: not a readable image")
    assert not (tmp_path / "p.csv").exists()
    line = error_line(cli("predict", run, mixed / "clip.wav", "--modality", "sonar"))
    assert line == "Error: Unknown modality 'sonar'; this run has: depth, rgb."
    line = error_line(cli("predict", tmp_path / "mixed", mixed))
    assert "is neither a run directory" in line
    only_ignored = tmp_path / "sounds"
    only_ignored.mkdir()
    (only_ignored / "a.wav").write_bytes(b"RIFF")
    assert "Nothing to classify in" in error_line(cli("predict", run, only_ignored))


def test_two_modalities_of_one_encoding_need_modality(trained, tmp_path):
    _, run, export = trained
    twins = tmp_path / "twins"
    shutil.copytree(export / "rgb", twins / "rgb")
    shutil.copytree(export / "rgb", twins / "ir")
    card = json.loads((twins / "ir" / "model_card.json").read_text())
    (twins / "ir" / "model_card.json").write_text(json.dumps(dict(card, modality="ir")))
    photo = tmp_path / "photo.png"
    Image.fromarray(rgb_image(1, np.random.default_rng(5))).save(photo)
    with pytest.raises(DataError) as info:
        predict_files(twins, [photo])
    assert str(info.value) == (f"{photo}: an 8-bit RGB image fits 2 modalities of this export, "
                               "ir and rgb: choose one with --modality (ir or rgb).")
    [row] = predict_files(twins, [photo], modality="ir")
    [same] = predict_files(run, [photo])
    assert (row["modality"], row["top1"]) == ("ir", same["top1"])
    assert "choose one with --modality" in error_line(cli("predict", twins, photo))
