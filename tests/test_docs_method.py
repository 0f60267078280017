"""docs/method.md and its diagram script stay in step with the code (no training here).

- docs/draw_architecture.py lays out a box for every modality of the project's config
  and for every loss term of losses.py, without overlaps;
- docs/method.md names every loss term and has the sections the docstrings cite;
- every file that cites method.md points at a file that exists.
"""

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHOD_MD = ROOT / "docs" / "method.md"
SCRIPT = ROOT / "docs" / "draw_architecture.py"
CITING_DIRS = ("discomkd_keras", "export", "edge_demo", "benchmarks", "tests")
# A path ending in method.md, optionally followed by a quoted section: docs/method.md, "Losses"
CITATION = re.compile(r"([\w./-]*method\.md)(?:,\s*\"([^\"]+)\")?")


def _losses_module():
    for name in ("discomkd_keras.models.losses", "discomkd_keras.losses"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("no losses module")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("draw_architecture", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def project(script):
    return script.project_spec()


def test_spec_comes_from_the_project(project):
    losses = _losses_module()
    assert tuple(project["loss_terms"]) == tuple(losses.LOSS_TERMS)
    assert [m["name"] for m in project["modalities"]] == ["rgb", "depth"]
    assert [m["shape"][-1] for m in project["modalities"]] == [3, 1]
    assert project["feature_dim"] % 2 == 0 and project["num_classes"] >= 2


def test_layout_has_a_box_for_every_modality_and_loss_term(script, project):
    boxes = script.layout(project)
    terms = set(_losses_module().LOSS_TERMS)
    for mod in project["modalities"]:
        mine = [b for b in boxes.values() if b.modality == mod["name"]]
        assert {"input", "E_inv", "E_spec", "z_inv", "z_inf", "z_irr", "C"} <= \
            {b.key.split(":")[0] for b in mine}
        assert {b.term for b in mine if b.kind == "loss"} == terms
    assert script.overlaps(boxes) == []
    for src, dst, _, _ in script.connections(project):
        assert src in boxes and dst in boxes, (src, dst)


def test_layout_follows_the_config(script, project):
    """Three modalities and another D: one row each, the sizes in the labels."""
    spec = dict(project, feature_dim=64, modalities=project["modalities"] + [
        {"name": "thermal", "shape": (32, 32, 1), "encoder": "lenet"}])
    boxes = script.layout(spec)
    assert "E_inv:thermal" in boxes and "lenet" in boxes["E_inv:thermal"].label
    assert "32" in boxes["z_irr:thermal"].label and "D = 64" in boxes["E_spec:rgb"].label
    assert script.overlaps(boxes) == []


def test_draw_writes_the_png_atomically(script, project, tmp_path):
    out = script.draw(project, tmp_path / "architecture.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["architecture.png"]  # no temporary left
    assert script.FIG_WIDTH * script.DPI == 1400 and script.FONT >= 10


def test_method_md_names_every_loss_term():
    text = METHOD_MD.read_text(encoding="utf-8")
    for term in _losses_module().LOSS_TERMS:
        assert f"L_{term}" in text, term
        assert f"`{term}`" in text, term
    assert "arxiv.org/abs/2408.07080" in text


def _citations():
    for folder in CITING_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue  # this checker, whose strings are patterns, not citations
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for match in CITATION.finditer(line):
                    yield path, number, match.group(1), match.group(2)


def test_every_method_md_citation_points_at_an_existing_file():
    found = list(_citations())
    assert found, "no file cites docs/method.md"
    missing = [f"{p.relative_to(ROOT)}:{n}: {cited}" for p, n, cited, _ in found
               if not (ROOT / cited).is_file()]
    assert not missing, "citations of a method.md that does not exist:\n" + "\n".join(missing)


def test_cited_sections_exist():
    headings = {line.lstrip("#").strip() for line in
                METHOD_MD.read_text(encoding="utf-8").splitlines() if line.startswith("#")}
    assert {"Architecture", "Losses", "Training protocol"} <= headings
    cited = {section for _, _, _, section in _citations() if section}
    assert cited <= headings, cited - headings
