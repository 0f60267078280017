"""The command line as a user holds it (issue 25): options in --help sections with their
defaults, one meaning of --out, train --config, the renamed options and their old names,
export's defaults and one quantization vocabulary, exit statuses."""

import json
import re

import pytest
from click.testing import CliRunner

from discomkd_keras.choices import QUANTIZATION_VARIANTS
from discomkd_keras.cli import main
from discomkd_keras.config import TRAIN_DEFAULTS
from helpers import write_released

TINY = ["--encoder", "rgb=lenet", "--feature-dim", "8", "--batch-size", "8", "--epochs", "1",
        "--probe-steps", "0", "--quiet"]


def sections(text):
    return re.findall(r"^(\w+) options:$", text, flags=re.M)


@pytest.mark.parametrize("command", ["train", "compare"])
def test_help_lists_options_in_sections_with_their_defaults(command):
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0
    assert sections(result.output) == ["Data", "Model", "Training", "Run", "Advanced"]
    flat = " ".join(result.output.split())
    # Every option with a value of its own shows it; the preset's are said in words.
    assert "--seeds INTEGER Seeds 0..N-1 per method. [default: 5]" in flat or command == "train"
    if command == "train":
        for row, default in (("--method [", "discomkd"), ("--branch [", "separate"),
                             ("--strategy [", "auto"), ("--workers INTEGER", "2"),
                             ("--seed INTEGER", "0")):
            after = flat[flat.index(row):]  # the first default after the row is its own
            assert re.search(r"\[default: ([^\]]*)\]", after).group(1) == default, row
        assert "Default: the preset's" in flat and "--mixed-precision" not in flat
        assert "--run-dir, --out PATH" in flat


def test_train_defaults_are_the_configs_own():
    """click's defaults are taken from TRAIN_DEFAULTS, not written a second time."""
    params = {p.name: p for p in main.commands["train"].params}
    for key in ("method", "branch", "perp_mode", "modality_targets", "grl_schedule",
                "grl_lambda", "dkd_warmup_epochs", "seed", "strategy", "workers",
                "checkpoint_seconds"):
        assert params[key].default == TRAIN_DEFAULTS[key], key


def test_out_config_and_renamed_options(tmp_path):
    data = write_released(tmp_path / "data")
    runner = CliRunner()
    first = tmp_path / "first"
    result = runner.invoke(main, ["train", "--data-dir", str(data), "--out", str(first),
                                  "--mixed-precision", "mixed_bfloat16", "--conventions", "keras",
                                  "--augment", "rgb=released", *TINY])
    assert result.exit_code == 0, result.output
    assert "Note: --mixed-precision is deprecated; use --precision mixed_bfloat16." in result.output
    assert "Note: --conventions keras is deprecated; use --layer-defaults glorot." in result.output
    saved = json.loads((first / "config.json").read_text())
    assert (saved["precision"], saved["conventions"]) == ("mixed_bfloat16", "keras")
    assert saved["augment"]["rgb"] == "flip-rotate"  # the old name, read as the new one

    again = tmp_path / "again"
    result = runner.invoke(main, ["train", "--config", str(first / "config.json"), "--seed", "3",
                                  "--run-dir", str(again), "--quiet", "--probe-steps", "0"])
    assert result.exit_code == 0, result.output
    repeated = json.loads((again / "config.json").read_text())
    assert repeated["seed"] == 3
    differ = {k for k in saved if saved[k] != repeated.get(k)}
    assert differ == {"seed"}, differ

    result = runner.invoke(main, ["train", "--config", str(first / "config.json"),
                                  "--data-dir", str(data), "--run-dir", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: --config repeats the saved run's data; drop --data-dir (or train without "
        "--config).")
    result = runner.invoke(main, ["train", "--config", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "not a run's config.json" in result.output


def test_layer_defaults_and_precision_by_their_new_names(tmp_path):
    data = write_released(tmp_path / "data")
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--data-dir", str(data), "--run-dir", str(run),
                                       "--precision", "float32", "--layer-defaults", "glorot",
                                       *TINY])
    assert result.exit_code == 0, result.output
    assert "deprecated" not in result.output
    assert json.loads((run / "config.json").read_text())["conventions"] == "keras"


def test_bench_export_takes_exports_vocabulary():
    result = CliRunner().invoke(main, ["bench-export", "--quantize", "int8,int9"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: --quantize: unknown quantization 'int9'; expected some of "
        f"{', '.join(QUANTIZATION_VARIANTS)}.")
    export = main.commands["export"]
    choices = next(p for p in export.params if p.name == "variant").type.choices
    assert list(choices) == list(QUANTIZATION_VARIANTS)
    assert next(p for p in export.params if p.name == "modality").default == "all"


def test_serve_demo_refuses_a_folder_without_an_export_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["serve-demo", str(tmp_path), "--port", "0"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: {tmp_path} holds no model_card.json, nor does any folder in it: give an export "
        "folder written by `discomkd-keras export`.")
