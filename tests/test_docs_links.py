"""The README and docs/ point at things that exist (no training, no backend).

- README.md stays within the 300 lines issue 25 set for it;
- every relative link or image in README.md, docs/*.md and edge_demo's READMEs names a file of
  the repository, and a `#section` after a Markdown file names one of its headings (GitHub's
  anchors);
- every report under benchmarks/results/ is listed in docs/benchmarks.md, so no table sits
  in the repository without its command and date.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"),
                *(ROOT / "edge_demo").rglob("README.md")])
PAGES = [p for p in PAGES if "node_modules" not in p.parts]
# [text](target) and ![alt](target); the target ends at the first space or closing bracket.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _anchor(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())  # markup, not text
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page):
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def _links(page):
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("mailto:"):
            continue  # web addresses are not checked here (no network)
        yield target


def test_anchor_rule_matches_github():
    assert _anchor("Python API") == "python-api"
    assert _anchor("The preprocessing contract (`model_card.json`)") == \
        "the-preprocessing-contract-model_cardjson"
    assert _anchor("int8 and the input layers") == "int8-and-the-input-layers"


def test_readme_is_at_most_300_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; docs/ holds the rest"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in _links(page):
        path, _, section = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(ROOT) if ROOT in file.parents else file}")
        elif section and file.suffix == ".md" and section not in _anchors(file):
            broken.append(f"{target}: no heading '#{section}' in {file.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_committed_report_is_listed_in_benchmarks_md():
    listed = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    results = ROOT / "benchmarks" / "results"
    missing = [str(p.relative_to(results)) for p in sorted(results.rglob("*.md"))
               if str(p.relative_to(results)) not in listed]
    assert not missing, f"reports without a section in docs/benchmarks.md: {missing}"
