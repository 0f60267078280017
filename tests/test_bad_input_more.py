"""Bad input that used to reach a traceback or a misleading message: manifest rows of the
wrong length, an image modality whose files disagree on their encoding, a TF_CONFIG or
JAX_* task outside its cluster, and Ctrl-C during `compare`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from discomkd_keras.cli import main
from discomkd_keras.config import ConfigError
from discomkd_keras.data.file_cache import cache_root
from discomkd_keras.data.file_layouts import load_files
from discomkd_keras.training import RunInterrupted, multiworker_task
from helpers import write_released

CLASSES = ("cat", "dog", "eel")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCOMKD_CACHE", str(tmp_path / "cache"))


def write_tree(root, n=5):
    """root/rgb/<class>/i.png (8-bit RGB 20x24), root/depth/<class>/i.png (16-bit mm)."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        for m in ("rgb", "depth"):
            (root / m / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rgb = rng.integers(0, 60, (20, 24, 3), dtype=np.uint8)
            rgb[..., c] += 150
            Image.fromarray(rgb).save(root / "rgb" / name / f"{i}.png")
            depth = (rng.integers(500, 900, (20, 24)) + 1000 * c).astype(np.uint16)
            Image.fromarray(depth).save(root / "depth" / name / f"{i}.png")
    return root


def eight_bit(path, rgb=False):
    Image.fromarray(np.full((20, 24, 3) if rgb else (20, 24), 7, np.uint8)).save(path)


def train(data_dir, run_dir, *more):
    return CliRunner().invoke(main, ["train", "--data-dir", str(data_dir), "--run-dir",
                                     str(run_dir), "--epochs", "1", "--quiet", *more])


def error_line(result):
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def refused(data_dir, tmp_path, cached=False):
    """The one Error: line of `train` on data_dir; nothing written (nor cached, unless
    `cached`: the cache held entries before)."""
    run = tmp_path / "run"
    line = error_line(train(data_dir, run))
    assert not run.exists()
    assert cached or not any(cache_root().glob("*"))
    return line


# --------------------------------------------------------------------------- manifest rows
def write_manifest(tree, *rows, header="split,label,rgb,depth"):
    (tree / "manifest.csv").write_text("\n".join((header,) + rows) + "\n")
    return tree / "manifest.csv"


def test_a_row_with_more_cells_than_the_header_names_its_line(tmp_path):
    tree = write_tree(tmp_path / "files", n=2)
    path = write_manifest(tree, "train,cat,rgb/cat/0.png,depth/cat/0.png", "",  # blank: line 3
                          "train,dog,rgb/dog/0.png,depth/dog/0.png,depth/dog/1.png")
    assert refused(tree, tmp_path) == (
        f"Error: {path}, line 4: 5 cells, but the header names 4 columns "
        "(split, label, rgb, depth).")


@pytest.mark.parametrize("header, short_row, said", [
    ("split,label,rgb,depth", "train", "1 cell, but the header names 4 columns (split, label, "
                                       "rgb, depth)"),
    # the label column last: a row short of one cell lacks its label, not a modality
    ("rgb,depth,split,label", "rgb/cat/1.png,depth/cat/1.png,train",
     "3 cells, but the header names 4 columns (rgb, depth, split, label)"),
])
def test_a_row_short_of_its_split_or_label_is_refused(tmp_path, header, short_row, said):
    tree = write_tree(tmp_path / "files", n=2)
    first = {"split": "train", "label": "cat", "rgb": "rgb/cat/0.png", "depth": "depth/cat/0.png"}
    path = write_manifest(tree, ",".join(first[c] for c in header.split(",")), short_row,
                          header=header)
    assert refused(tree, tmp_path) == (
        f"Error: {path}, line 3: {said}; only empty modality cells at the end of a row may be "
        "left out.")


def test_a_row_that_leaves_out_its_trailing_empty_modality_cells_loads(tmp_path):
    tree = write_tree(tmp_path / "files", n=6)
    rows = []
    for name in CLASSES:
        for i in range(6):
            split = "train" if i < 4 else ("valid" if i == 4 else "test")
            if (name, i) == ("dog", 1):
                rows.append(f"{split},{name},rgb/{name}/{i}.png")  # no depth cell at all
            else:
                rows.append(f"{split},{name},rgb/{name}/{i}.png,depth/{name}/{i}.png")
    write_manifest(tree, *rows)
    data = load_files(tree)
    assert len(data.labels["rgb"]) == 18 and len(data.labels["depth"]) == 17
    assert len(data.splits["depth"]["train"]) == 11
    # a row with no file at all is still refused as before, by the file's own line number
    path = write_manifest(tree, *rows[:3], "train,cat")
    assert refused(tree, tmp_path, cached=True) == \
        f"Error: {path}, line 5: no file in any of rgb, depth."


# --------------------------------------------------------------------------- encodings
def test_the_majority_encoding_decides_and_the_odd_file_is_named(tmp_path):
    tree = write_tree(tmp_path / "tree", n=10)  # 30 depth PNGs; the first one made 8-bit
    eight_bit(tree / "depth" / "cat" / "0.png")
    assert refused(tree, tmp_path) == (
        "Error: depth: 29 files are 16-bit depth PNGs but 1 is 8-bit: depth/cat/0.png; remove "
        "or convert it, or pass --skip-bad-files to leave it out.")
    data = load_files(tree, skip_bad_files=True)
    assert data.preprocessing["depth"]["encoding"] == "depth_mm_uint16"
    assert data.report["skipped_files"] == {"depth": 1}
    [why] = data.report["skipped_examples"]["depth"]
    assert why.startswith(f"{tree / 'depth' / 'cat' / '0.png'}: 8-bit grayscale image, but this "
                          "depth model takes a 1-channel 16-bit PNG")
    assert sum(len(s) for s in data.splits["depth"].values()) == 29


def test_more_than_five_odd_files_and_mixed_odd_kinds(tmp_path):
    tree = write_tree(tmp_path / "tree")
    for name, i in [("cat", 0), ("cat", 1), ("cat", 2), ("cat", 3), ("dog", 0), ("eel", 4)]:
        eight_bit(tree / "depth" / name / f"{i}.png", rgb=(name, i) == ("dog", 0))
    assert refused(tree, tmp_path) == (
        "Error: depth: 9 files are 16-bit depth PNGs but 6 are 8-bit: depth/cat/0.png, "
        "depth/cat/1.png, depth/cat/2.png, depth/cat/3.png, depth/dog/0.png and 1 more; remove or "
        "convert them, or pass --skip-bad-files to leave them out.")
    # among RGB files: a grey one and a 16-bit one are odd, each said as what it is
    rgb_tree = write_tree(tmp_path / "rgb_tree")
    eight_bit(rgb_tree / "rgb" / "dog" / "2.png")
    Image.fromarray(np.full((20, 24), 900, np.uint16)).save(rgb_tree / "rgb" / "eel" / "0.png")
    line = error_line(train(rgb_tree, tmp_path / "run2"))
    assert line == ("Error: rgb: 13 files are 8-bit RGB images but 1 is 8-bit grey and 1 is "
                    "16-bit: rgb/dog/2.png, rgb/eel/0.png; remove or convert them, or pass "
                    "--skip-bad-files to leave them out.")
    assert not (tmp_path / "run2").exists()


def test_a_tie_names_both_groups(tmp_path):
    tree = write_tree(tmp_path / "tree", n=2)  # 6 depth files, 3 of them 8-bit
    for name in CLASSES:
        eight_bit(tree / "depth" / name / "1.png")
    assert refused(tree, tmp_path) == (
        "Error: depth: 3 files are 16-bit depth PNGs (depth/cat/0.png, depth/dog/0.png, "
        "depth/eel/0.png) and 3 are 8-bit grey (depth/cat/1.png, depth/dog/1.png, "
        "depth/eel/1.png), so no majority decides the modality's encoding; remove or convert "
        "one group.")
    with pytest.raises(Exception, match="no majority decides"):
        load_files(tree, skip_bad_files=True)


def test_a_grey_majority_still_takes_rgb_files_as_luma(tmp_path):
    tree = write_tree(tmp_path / "tree", n=10)
    for name in CLASSES:  # the first rgb file stays RGB; the rest are grey
        for i in range(10):
            if (name, i) != ("cat", 0):
                Image.open(tree / "rgb" / name / f"{i}.png").convert("L").save(
                    tree / "rgb" / name / f"{i}.png")
    data = load_files(tree, split_seed=0)
    assert data.preprocessing["rgb"]["encoding"] == "gray8"
    assert data.report["skipped_files"] == {}


# --------------------------------------------------------------------------- clusters
def tf_task(cluster, task):
    return multiworker_task({"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})},
                            backend="tensorflow")


@pytest.mark.parametrize("cluster, task, message", [
    ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 5},
     'TF_CONFIG: task {"type": "worker", "index": 5} is outside its cluster, which has 2 '
     "'worker' tasks (index 0 to 1)."),
    ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": -1},
     'TF_CONFIG: task {"type": "worker", "index": -1} is outside its cluster, which has 2 '
     "'worker' tasks (index 0 to 1)."),
    ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "chief", "index": 1},
     'TF_CONFIG: task {"type": "chief", "index": 1} is outside its cluster, which has 1 '
     "'chief' task (index 0)."),
    ({"worker": ["a:1", "b:2"]}, {"type": "evaluator", "index": 0},
     'TF_CONFIG: task {"type": "evaluator", "index": 0} is outside its cluster, which has no '
     "'evaluator' task (its tasks: 2 'worker')."),
])
def test_a_tf_config_task_outside_its_cluster(cluster, task, message):
    with pytest.raises(ConfigError) as info:
        tf_task(cluster, task)
    assert str(info.value) == message


def test_tf_config_tasks_inside_their_cluster_and_a_malformed_cluster():
    assert tf_task({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1}) == \
        {"type": "worker", "index": 1, "chief": False, "workers": 2}
    assert tf_task({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "chief", "index": 0})["chief"]
    with pytest.raises(ConfigError, match=r"^TF_CONFIG is not a cluster \{task type: "):
        tf_task({"worker": "a:1"}, {"type": "worker", "index": 0})


@pytest.mark.parametrize("pid, count, message", [
    ("3", "3", "JAX_PROCESS_ID=3 is outside the cluster: JAX_NUM_PROCESSES=3 numbers its "
               "processes 0 to 2."),
    ("-1", "2", "JAX_PROCESS_ID=-1 is outside the cluster: JAX_NUM_PROCESSES=2 numbers its "
                "processes 0 to 1."),
    ("0", "0", "JAX_NUM_PROCESSES=0: a cluster has at least 1 process."),
])
def test_jax_process_outside_its_cluster(pid, count, message):
    with pytest.raises(ConfigError) as info:
        multiworker_task({"JAX_PROCESS_ID": pid, "JAX_NUM_PROCESSES": count}, backend="jax")
    assert str(info.value) == message
    assert multiworker_task({"JAX_PROCESS_ID": "2", "JAX_NUM_PROCESSES": "3"}, backend="jax") == \
        {"type": "process", "index": 2, "chief": False, "workers": 3}


# --------------------------------------------------------------------------- Ctrl-C in compare
@pytest.fixture
def interrupted_second_run(monkeypatch):
    """train_run finishes the first run (fake results, no training) and is interrupted in the
    second; run_record reads nothing from disk."""
    from discomkd_keras import training
    from discomkd_keras.comparison import runs

    calls = []

    def fake_train_run(config, run_dir, **kwargs):
        calls.append(run_dir)
        if len(calls) == 2:
            raise RunInterrupted(f"Interrupted: {run_dir} is checkpointed after epoch 0 of 1. "
                                 f"Continue with: discomkd-keras train --resume {run_dir}")
        return {"rgb": {"test_weighted_f1": 0.5}}

    monkeypatch.setattr(training, "train_run", fake_train_run)
    monkeypatch.setattr(runs, "run_record", lambda run_dir, work_dir, label, seed, results: {
        "method": label, "seed": seed, "results": results, "seconds_per_epoch": 1.0})
    return calls


def expected_interruption(run_dir):
    return (f"Interrupted: the comparison has 1 of 2 runs finished ({run_dir} checkpointed). Run "
            "the same compare command again to continue: finished runs are reused, but this run "
            "restarts from scratch. To keep its checkpointed epochs, first finish it with: "
            f"discomkd-keras train --resume {run_dir}")


def test_an_interrupted_comparison_says_how_the_same_command_continues(tmp_path,
                                                                       interrupted_second_run):
    from discomkd_keras.comparison import run_comparison

    d = write_released(tmp_path / "data")
    spec = {"source": "released", "directory": str(d), "split_seed": None}
    options = {"epochs": 1, "batch_size": 16, "feature_dim": 8, "encoders": {"rgb": "lenet"}}
    with pytest.raises(RunInterrupted) as info:
        run_comparison(spec, options, [0, 1], tmp_path / "work", methods=["unimodal"],
                       log=lambda line: None)
    assert str(info.value) == expected_interruption(tmp_path / "work" / "seed1" / "unimodal")
    assert len(interrupted_second_run) == 2


def test_compare_command_prints_it_and_exits_130(tmp_path, monkeypatch, interrupted_second_run):
    from discomkd_keras import plan

    monkeypatch.setattr(plan, "make_plan", lambda config, data, probe_steps=5: {})
    monkeypatch.setattr(plan, "plan_lines", lambda p: [])
    d = write_released(tmp_path / "data")
    runs = tmp_path / "out" / "runs"
    result = CliRunner().invoke(main, [
        "compare", "--data-dir", str(d), "--methods", "unimodal", "--seeds", "2", "--epochs", "1",
        "--encoder", "rgb=lenet", "--feature-dim", "8", "--out", str(tmp_path / "out"),
        "--quiet"])
    assert result.exit_code == 130, result.output
    last = result.output.strip().splitlines()[-1]
    assert last == expected_interruption(runs / "seed1" / "unimodal")
    assert "Traceback" not in result.output
