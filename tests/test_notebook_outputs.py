"""What a student reads in the notebooks: values rather than booleans, figures
that render where HTML and widgets do not (GitHub, nbviewer, the exported
HTML), a goals block at the top and questions at the end, and none of the
project's own machinery in the story."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IGNORED = "# NBVAL_IGNORE_OUTPUT"
BOOLEAN_END = re.compile(r"(^|[:\s])(True|False)[.!]?$")  # "...: True", not "Linear(..., bias=True)"


def read(path: Path):
    return nbformat.read(path, as_version=4)


def compared_code_cells(nb):
    """Code cells whose outputs nbval compares (not marked as ignored or skipped)."""
    return [c for c in nb.cells if c.cell_type == "code"
            and not c.source.lstrip().startswith((IGNORED, "# NBVAL_SKIP"))]


def output_texts(cell) -> list[str]:
    texts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            texts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            texts.append(out.data.get("text/plain", ""))
    return texts


def coloured_html(out) -> bool:
    """An HTML output that shows colour (the surprisal and neuron views)."""
    html = out.get("data", {}).get("text/html", "")
    return "background:" in html or "background-color:" in html


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_compared_outputs_are_values_not_booleans(path):
    lines = [line for cell in compared_code_cells(read(path)) for text in output_texts(cell)
             for line in text.splitlines() if BOOLEAN_END.search(line.strip())]
    assert lines == [], f"{path.name}: print the value, not whether it passed: {lines[:5]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_every_coloured_html_output_has_a_png_twin(path):
    missing = []
    for index, cell in enumerate(read(path).cells):
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        has_png = any("image/png" in out.get("data", {}) for out in outputs)
        if any(coloured_html(out) for out in outputs) and not has_png:
            missing.append(index)
    assert missing == [], f"{path.name}: cells {missing} show coloured HTML without an image twin"


class _ImageCounter(HTMLParser):
    def __init__(self):
        super().__init__()
        self.png_images = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img" and dict(attrs).get("src", "").startswith("data:image/png;base64,"):
            self.png_images += 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_the_exported_html_shows_every_figure(path):
    """nbconvert's HTML (what a course website publishes) embeds one image per PNG output."""
    from nbconvert import HTMLExporter

    nb = read(path)
    pngs = sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.outputs)
    body, _ = HTMLExporter().from_notebook_node(nb)
    counter = _ImageCounter()
    counter.feed(body)
    assert counter.png_images == pngs


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_each_notebook_opens_with_goals_and_ends_with_questions(path):
    markdown = [c.source for c in read(path).cells if c.cell_type == "markdown"]
    opening = "\n".join(markdown[:2])
    for word in ("Goals", "You need", "Time"):
        assert word in opening, f"{path.name}: the opening has no '{word}'"
    questions = next((m.split("## Check yourself", 1)[1] for m in markdown if "## Check yourself" in m), "")
    questions = questions.split("\n## ", 1)[0]
    assert len(re.findall(r"^\d+\.\s", questions, flags=re.M)) >= 5, f"{path.name}: fewer than 5 questions"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if not p.stem.startswith("07")], ids=lambda p: p.stem[:2])
def test_the_story_has_no_project_machinery(path):
    nb = read(path)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    comments = "\n".join(line for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
                         if line.strip().startswith("#") and line.strip() != IGNORED)
    for phrase in ("course notebook", "nbval", "NBVAL", "tests/", "test_browser"):
        assert phrase not in markdown + comments, f"{path.name} mentions {phrase!r}"
    assert len(re.findall(r"[Aa]ppendix 07", markdown)) <= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_no_cell_keeps_execution_timestamps(path):
    """nbconvert --execute stores when each cell ran; committed notebooks keep
    no timings (strip them with nbformat after executing)."""
    nb = read(path)
    stamped = [i for i, c in enumerate(nb.cells) if "execution" in c.metadata]
    assert not stamped, f"{path.name}: cells {stamped[:5]} keep execution timestamps"
