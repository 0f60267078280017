"""Faults during export: a kill while the files are written, a damaged checkpoint."""

import shutil
import signal
import subprocess
import sys

import keras
import pytest
from click.testing import CliRunner

from discomkd_keras.cli import main
from discomkd_keras.export import export_modality
from helpers import train_run

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="TFLite conversion needs the TensorFlow backend")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("export-faults"), "--epochs", 1, "--encoder",
                     "rgb=lenet", "--feature-dim", 8, "--batch-size", 16)


# Export float32 in a child that stops (and says so) while its files are being
# written: after the .tflite, before the card; the test then SIGKILLs it.
KILLED_WHILE_WRITING = """
import pathlib, sys, time
from discomkd_keras.export import export_modality
write_text = pathlib.Path.write_text
def slow_write(self, text, *args, **kwargs):
    out = write_text(self, text, *args, **kwargs)
    if self.name == "labels.txt":
        print("writing", flush=True)
        time.sleep(120)
    return out
pathlib.Path.write_text = slow_write
export_modality(sys.argv[1], "vec", quantization="float32", out_dir=sys.argv[2], log=lambda *_: None)
"""


def test_sigkill_while_writing_leaves_nothing_at_the_final_path(run, tmp_path):
    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_WRITING, str(run), str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = child.stdout.readline()
        while line and line.strip() != "writing":
            line = child.stdout.readline()
        assert line.strip() == "writing", "the child ended before writing"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    assert not (out / "vec").exists()
    assert len(list(out.glob(".vec.*.tmp"))) == 1  # the killed export's own, half written

    card = export_modality(run, "vec", quantization="float32", out_dir=out, log=lambda *_: None)
    assert sorted(p.name for p in (out / "vec").iterdir()) == sorted(
        [card["model_file"], card["labels_file"], "model_card.json"])
    assert sorted(p.name for p in out.iterdir()) == ["vec"]  # the stale temporary is gone


def test_a_damaged_checkpoint_is_named_as_such_and_leaves_no_output_folder(run, tmp_path):
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    (broken / "best" / "rgb.keras").write_bytes(b"PK\x03\x04 truncated by a full disk")
    out = tmp_path / "exports" / "out"
    result = CliRunner().invoke(main, ["export", str(broken), "--modality", "rgb",
                                       "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error:") and len(result.output.strip().splitlines()) == 1
    assert "damaged or unreadable" in result.output and "rgb.keras" in result.output
    assert "not found" not in result.output.lower()
    assert not (tmp_path / "exports").exists()
