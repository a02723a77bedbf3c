"""The course website (``make site``, docs/site) as a reader sees it.

The site is built once for this module into a temporary folder, with the same
script ``make site`` runs (docs/site/build_site.py: MyST plus the theme in
docs/site/theme), and served from 127.0.0.1 on a free port; its solved
edition (``--edition solved``) is built too, to compare. Then:

- the student edition, which is the default, gives no answer away: no line
  of any reference solution (every line of 25 characters or more between
  ``# BEGIN SOLUTION`` and ``# END SOLUTION`` that the rest of its notebook
  does not hold) is in the text of any page, nor a "✓" of a check, nor the
  answer to a check-yourself question; the solved edition holds every one
  of them, so the search is known to find them where they are; the launch
  links open the student copies in notebooks/student/, which exist;
- how a notebook becomes a student page, on a made-up notebook;

- without a browser, the built pages: one per notebook, in file-name order,
  plus the landing page and the model card; every PNG output of a notebook
  shows as an image, and no coloured HTML or widget that has a PNG twin is
  left in a page; the notebooks' own PNG-twin rule, on made-up outputs;
- in headless Chromium, the landing page and notebook 02: the math is
  typeset by KaTeX (its elements and fonts are there, and no TeX source is
  left in the text), every image loaded, the Colab and Binder links point at
  this notebook, every request stayed on the local server, and clicking a
  link in the navigation opens the page of that notebook.

With ``$CHARRNN_SCREENSHOT_DIR`` set, screenshots of the two pages are saved
there as ``site-landing.png`` and ``site-02.png`` (the README's pictures:
``CHARRNN_SCREENSHOT_DIR=docs/images pytest tests/test_site.py``).

It needs Node.js and npm (MyST runs on Node; on first use the theme's one npm
package, KaTeX's style sheet and fonts, is installed into
docs/site/theme/node_modules with ``npm ci``), the ``mystmd`` package, and for
the browser checks ``playwright`` with Debian's Chromium (as
tests/test_browser.py); it skips, saying which, when one is missing.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import chromium_or_skip, headless_chromium

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
BUILDER = ROOT / "docs" / "site" / "build_site.py"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BUILD_TIMEOUT = 300  # seconds; a build takes about 15 s on two cores
PAGE_TIMEOUT = 30
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# A formula of notebook 02 (the RNN step), as its Markdown writes it.
STUB = 'raise NotImplementedError("your turn")'  # what an exercise shows a student (charrnn.course.student)
FORMULA_02 = r"h_t = \tanh\left(e_t W_x^\top + b_x + h_{t-1} W_h^\top + b_h\right)"


def load_builder():
    spec = importlib.util.spec_from_file_location("build_site", BUILDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = load_builder()


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def title_of(path: Path) -> str:
    return builder.notebook_title(read_notebook(path), path)


def notebook_02() -> Path:
    found = [p for p in NOTEBOOKS if p.name.startswith("02_")]
    assert found, "no notebooks/02_*.ipynb"
    return found[0]


def png_outputs(path: Path) -> int:
    return sum("image/png" in out.get("data", {}) for cell in read_notebook(path)["cells"]
               if cell["cell_type"] == "code" for out in cell.get("outputs", []))


# ------------------------------------------------------- the PNG-twin rule
def html_output(html: str) -> dict:
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": html, "text/plain": "<HTML>"}}


def png_output(**extra) -> dict:
    return {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo=", **extra}}


WIDGET = {"output_type": "display_data", "metadata": {},
          "data": {WIDGET_VIEW: {"model_id": "x", "version_major": 2, "version_minor": 0}, "text/plain": "VBox()"}}
COLOURED = html_output('<span style="background:rgb(255,0,0)">a</span>')
TABLE = html_output("<table><tr><td>1</td></tr></table>")


def test_a_png_twin_stands_in_for_coloured_html_and_widgets():
    kept = builder.static_outputs([COLOURED, WIDGET, png_output()])
    assert [list(out["data"]) for out in kept] == [["image/png"]]


def test_a_png_in_the_same_bundle_wins_over_html_and_widget_views():
    (kept,) = builder.static_outputs([png_output(**{"text/html": "<b>x</b>", WIDGET_VIEW: {"model_id": "x"}})])
    assert set(kept["data"]) == {"image/png"}


def test_a_widget_without_a_twin_becomes_a_note_and_plain_html_stays():
    note, table = builder.static_outputs([WIDGET, TABLE])
    assert WIDGET_VIEW not in note["data"] and builder.NOTE_CLASS in note["data"]["text/html"]
    assert table == TABLE


def test_the_site_copies_drop_the_test_markers_only():
    source = "# NBVAL_IGNORE_OUTPUT\nview = 1  # a comment\nview\n"
    assert builder.without_test_markers(source) == "view = 1  # a comment\nview\n"


# ------------------------------------------------- the student edition, made up
ANSWERED = ("## Check yourself\n\nAnswer each question in a sentence, then open the answer to compare.\n\n"
            "1. Why?\n   <details><summary>Answer</summary>Because the gradient\n   vanishes.</details>\n"
            "2. How?\n   <details><summary>Answer</summary>By clipping.</details>\n")


def made_up_notebook(exercise: str, check_output: str) -> dict:
    """A notebook with a question, an exercise, its check and a plain cell, each with an output."""
    def code(cell_id, source, text, **nbgrader):
        return {"cell_type": "code", "id": cell_id, "source": source, "execution_count": 1,
                "metadata": {"nbgrader": nbgrader} if nbgrader else {},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": text}]}

    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "id": "questions", "metadata": {}, "source": ANSWERED},
        code("exercise", exercise, "tensor([0.5])\n", solution=True, grade_id="step"),
        code("check", "checks.check_step(step)", check_output, grade=True, grade_id="check_step", points=2),
        code("plain", "print(1 + 1)", "2\n")]}


SOLVED = made_up_notebook("def step(x):\n    # BEGIN SOLUTION\n    return x.tanh()\n    # END SOLUTION\n",
                          "✓ step is correct\n")
RELEASED = made_up_notebook('def step(x):\n    raise NotImplementedError("your turn")', "")


def test_a_student_page_has_the_student_code_and_no_output_of_exercises_or_checks():
    nb = builder.student_notebook(SOLVED, RELEASED, "made-up.ipynb")
    questions, exercise, check, plain = nb["cells"]
    assert exercise["source"] == RELEASED["cells"][1]["source"] and "tanh" not in json.dumps(nb)
    assert exercise["outputs"] == [] and check["outputs"] == [] and "✓" not in json.dumps(nb)
    assert plain["outputs"] == SOLVED["cells"][3]["outputs"], "an output that shows no solution was dropped"
    assert "<details>" not in questions["source"] and "vanishes" not in questions["source"]
    assert "1. Why?\n2. How?" in questions["source"] and "open the answer" not in questions["source"]
    assert questions["source"].rstrip().endswith(builder.ANSWERS_ELSEWHERE)
    assert SOLVED["cells"][1]["outputs"], "the solved notebook was changed"


def test_a_student_page_is_refused_when_the_cells_do_not_match_or_a_solution_is_left():
    shuffled = {**RELEASED, "cells": RELEASED["cells"][::-1]}
    with pytest.raises(SystemExit, match=r"made-up.ipynb: its student version does not have the notebook's cells"):
        builder.student_notebook(SOLVED, shuffled, "made-up.ipynb")
    with pytest.raises(SystemExit, match=r"made-up.ipynb: the student edition would still show '# BEGIN SOLUTION'"):
        builder.student_notebook(SOLVED, SOLVED, "made-up.ipynb")


def test_cells_without_answers_are_left_as_they_are():
    text = "Open <details><summary>Hint</summary>look at the shapes</details> if you are stuck."
    assert builder.without_answers(text) == text


# ------------------------------------------------------------------- build
def build_site(out: Path, *options: str) -> Path:
    """Build the site into ``out`` with build_site.py and ``options``; returns its html/ folder."""
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if missing:
        pytest.skip(f"no {' or '.join(missing)} on PATH: the site is built with MyST, which runs on Node.js "
                    "(Debian: apt-get install nodejs npm)")
    if importlib.util.find_spec("mystmd_py") is None:
        pytest.skip("the mystmd package is not installed (pip install -r requirements.txt)")
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(BUILDER), "--out", str(out), *options], cwd=ROOT,
                              capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the site build took more than {BUILD_TIMEOUT} s:\n{(e.stdout or '')[-3000:]}")
    if done.returncode != 0:
        pytest.fail(f"the site build failed ({done.returncode}):\n{(done.stdout + done.stderr)[-5000:]}")
    print(f"site {' '.join(options) or '(default)'} built in {time.monotonic() - start:.1f} s")
    return out / "html"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as ``make site`` builds it (the student edition), in a temporary folder; its html/ folder."""
    return build_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def solved_site(tmp_path_factory) -> Path:
    """The solved edition, for instructors; its html/ folder."""
    return build_site(tmp_path_factory.mktemp("solved"), "--edition", "solved")


@pytest.fixture(scope="module")
def server(site) -> str:
    """The built site served from 127.0.0.1 on a port the OS picks; its base URL."""
    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # keep the test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def page_file(path: Path) -> str:
    return f"{path.stem}.html"


def test_every_notebook_has_a_page_listed_in_order(site):
    assert NOTEBOOKS, "no notebooks/NN_*.ipynb"
    for path in NOTEBOOKS:
        assert (site / page_file(path)).exists(), f"no page for {path.name}"
    assert (site / "index.html").exists() and (site / "model-card.html").exists()
    landing = (site / "index.html").read_text(encoding="utf-8")
    sidebar = landing.split('<nav class="sidebar"', 1)[1].split("</nav>", 1)[0]
    linked = re.findall(r'href="(\d\d_[^"]+\.html)"', sidebar)
    assert linked == [page_file(p) for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_each_png_output_is_an_image_and_no_twinned_html_is_left(site, path):
    html = (site / page_file(path)).read_text(encoding="utf-8")
    assert html.count('<div class="output image">') == png_outputs(path)
    assert "charrnn-coloured-text" not in html, "coloured HTML with a PNG twin is still on the page"
    assert WIDGET_VIEW not in html and "widget-view" not in html
    for src in re.findall(r'<img src="([^"]+)"', html):
        assert src.startswith("data:") or (site / src).is_file(), f"{path.name}: no file for image {src}"


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def words(text: str) -> str:
    return " ".join(text.split())


def page_text(html_file: Path) -> str:
    """What a reader can read on a page, whatever highlighting or folding wraps it: the text between the
    tags, entities decoded, white space collapsed."""
    parser = _Text()
    parser.feed(html_file.read_text(encoding="utf-8"))
    return words("".join(parser.parts))


def cells_of(path: Path, solution: bool) -> list[str]:
    return ["".join(c["source"]) for c in read_notebook(path)["cells"]
            if bool(c.get("metadata", {}).get("nbgrader", {}).get("solution")) == solution]


def solution_lines(path: Path) -> list[str]:
    """The reference solution's distinctive lines: every line of 25 characters or more between
    ``# BEGIN SOLUTION`` and ``# END SOLUTION`` that no other cell of the notebook holds."""
    lines = [words(line) for source in cells_of(path, solution=True)
             for block in re.findall(r"# BEGIN SOLUTION\n(.*?)# END SOLUTION", source, re.S)
             for line in block.splitlines() if len(line.strip()) >= 25]
    elsewhere = words(" ".join(cells_of(path, solution=False)))
    return [line for line in lines if line not in elsewhere]


def answers(path: Path) -> list[str]:
    """The answers to the check-yourself questions, as a page shows them: those of 30 characters or more
    written without Markdown or math (whose page text differs from their source)."""
    found = [words(re.sub(r"<[^>]+>", "", body)) for source in cells_of(path, solution=False)
             for body in re.findall(r"<details>\s*<summary>\s*Answer\s*</summary>(.*?)</details>", source, re.S)]
    return [text for text in found if len(text) >= 30 and not re.search(r"[$`*_\\&]", text)]


def test_the_course_has_solutions_and_answers_to_look_for():
    assert sum(len(solution_lines(p)) for p in NOTEBOOKS) >= 40
    assert sum(len(answers(p)) for p in NOTEBOOKS) >= 20


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_the_student_edition_shows_no_solution_and_the_solved_one_does(site, solved_site, path):
    student, solved = page_text(site / page_file(path)), page_text(solved_site / page_file(path))
    lines = solution_lines(path)
    assert [line for line in lines if line in student] == [], "reference solution lines on the student site"
    assert [line for line in lines if line not in solved] == [], "the solved edition lost solution lines"
    for mark in ("✓", "is correct", "BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
        assert mark not in student, f"{mark!r} is on the student page"
    regions = sum(source.count("# BEGIN SOLUTION") for source in cells_of(path, solution=True))
    assert student.count(STUB) == regions, "not one stub per solution region"
    if cells_of(path, solution=True):
        assert "✓" in solved and STUB not in solved


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_check_yourself_answers_are_only_in_the_solved_edition(site, solved_site, path):
    student, solved = page_text(site / page_file(path)), page_text(solved_site / page_file(path))
    found = answers(path)
    assert [a for a in found if a in student] == [], "check-yourself answers on the student site"
    assert [a for a in found if a not in solved] == []
    assert (builder.ANSWERS_ELSEWHERE.strip("*") in student) == any("<summary>Answer" in s for s in
                                                                     cells_of(path, solution=False))


def launch_hrefs(html_file: Path) -> list[str]:
    html = html_file.read_text(encoding="utf-8")
    return re.findall(r'href="(https://(?:colab\.research\.google\.com|mybinder\.org)/[^"]+)"', html)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_the_launch_links_open_the_student_copy_except_in_the_solved_edition(site, solved_site, path):
    copy = f"{builder.STUDENT_FOLDER}/{path.name}"
    assert (ROOT / copy).is_file(), f"no student copy {copy}: the links would lead nowhere"
    student, solved = launch_hrefs(site / page_file(path)), launch_hrefs(solved_site / page_file(path))
    assert len(student) == len(solved) == 2
    assert all(href.endswith(f"/{builder.STUDENT_FOLDER}/{path.name}") for href in student), student
    assert all(href.endswith(f"/notebooks/{path.name}") for href in solved), solved


def test_the_landing_page_says_which_edition_it_is(site, solved_site):
    student, solved = page_text(site / "index.html"), page_text(solved_site / "index.html")
    assert words(builder.EDITION_NOTES["student"]) in student
    assert "solved edition, for instructors" in solved and "solved edition" not in student
    lab = f"urlpath=lab/tree/{builder.STUDENT_FOLDER}\""
    assert lab in (site / "index.html").read_text(encoding="utf-8")
    links = launch_hrefs(site / "index.html")
    assert links and all(f"/{builder.STUDENT_FOLDER}" in href for href in links), links


def test_the_model_card_is_a_page_with_its_picture(site):
    html = (site / "model-card.html").read_text(encoding="utf-8")
    assert "Model card" in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert any("loss-curve" in src and (site / src).is_file() for src in images)


def test_the_notation_reference_is_a_page_the_notebooks_link_to(site):
    html = (site / "notation.html").read_text(encoding="utf-8")
    assert "spectral radius" in html and html.count("<tr") >= 30
    linking = [p.name for p in NOTEBOOKS if 'href="notation.html"' in (site / page_file(p)).read_text(encoding="utf-8")]
    assert linking, "no notebook page links to the notation page"


# ----------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def browser():
    with headless_chromium(chromium_or_skip()) as browser:
        yield browser


@pytest.fixture
def page(browser, server):
    """A fresh page that records every request that failed or left the local server."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT * 1000)
    page.problems = problems = []

    def on_request(request):
        if not request.url.startswith((server + "/", "data:")):
            problems.append(f"left the site: {request.url}")

    def on_response(response):
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url} ({request.failure})"))
    try:
        yield page
    finally:
        context.close()


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    page.evaluate("document.fonts.ready.then(() => true)")


# The page's text outside formulas and code: where TeX source would show if a
# formula had not been typeset.
TEXT_OUTSIDE_MATH_JS = """() => {
    const article = document.querySelector('article').cloneNode(true);
    article.querySelectorAll('.katex, .katex-display, pre, code').forEach(e => e.remove());
    return article.textContent;
}"""
MATH_STATE_JS = """() => ({
    inline: document.querySelectorAll('article .katex').length,
    display: document.querySelectorAll('article .katex-display').length,
    sources: [...document.querySelectorAll('article annotation[encoding="application/x-tex"]')].map(a => a.textContent),
    hiddenMathml: [...document.querySelectorAll('article .katex-mathml')].every(
        e => getComputedStyle(e).position === 'absolute'),
    katexFonts: [...document.fonts].filter(f => f.family.replace(/"/g, '').startsWith('KaTeX_')
        && f.status === 'loaded').length,
})"""
IMAGES_JS = """async () => {
    const images = [...document.querySelectorAll('img')];
    await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
        img.addEventListener('load', done); img.addEventListener('error', done); })));
    return images.map(img => ({src: img.getAttribute('src'), width: img.naturalWidth}));
}"""


def assert_math_typeset(page, formula: str | None = None) -> None:
    state = page.evaluate(MATH_STATE_JS)
    assert state["inline"] > 0 and state["display"] > 0, f"no KaTeX output on the page: {state}"
    assert state["hiddenMathml"], "KaTeX's style sheet is not applied (its MathML copy shows)"
    assert state["katexFonts"] > 0, "none of KaTeX's fonts loaded"
    text = page.evaluate(TEXT_OUTSIDE_MATH_JS)
    left = re.findall(r"\$[^$\n]{1,80}\$|\\(?:frac|mid|le|tanh|sum|log|text|dots|top|left)\b", text)
    assert not left, f"TeX source left in the page's text: {left[:5]}"
    if formula is not None:
        assert any(formula in source for source in state["sources"]), f"the formula {formula} is not typeset"


def assert_images_loaded(page, expected: int) -> None:
    images = page.evaluate(IMAGES_JS)
    broken = [img["src"] for img in images if img["width"] == 0]
    assert not broken, f"images that did not load: {broken}"
    assert len(images) == expected, f"{len(images)} images on the page, expected {expected}"


def nav_link(page, title: str):
    return page.locator("nav.sidebar a", has_text=re.compile(rf"^\s*{re.escape(title)}\s*$"))


def assert_on_notebook_page(page, path: Path) -> None:
    title = title_of(path)
    assert page.locator("h1").first.inner_text().strip() == title
    assert page.title().startswith(title)
    assert page.url.endswith(page_file(path))


def save_screenshot(page, name: str) -> None:
    folder = os.environ.get("CHARRNN_SCREENSHOT_DIR")
    if not folder:
        return
    folder = Path(folder) if Path(folder).is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=folder / name)


def test_landing_page(page, server):
    open_page(page, f"{server}/index.html")
    assert_math_typeset(page)
    assert_images_loaded(page, expected=1)
    article = page.locator("article")
    for path in NOTEBOOKS:
        for url in (builder.colab_url(path.name), builder.binder_url(path.name)):
            assert article.locator(f'a[href="{url}"]').count() == 1, f"no link {url}"
    titles = [title_of(p) for p in NOTEBOOKS]
    for where in ("nav.sidebar", "article"):
        listed = page.locator(f"{where} a").evaluate_all(
            "links => links.map(a => [a.getAttribute('href'), a.textContent.trim()])")
        assert [text for href, text in listed if re.match(r"\d\d_", href)] == titles, \
            f"the links of {where} do not list the notebooks in order"
    save_screenshot(page, "site-landing.png")

    nav_link(page, title_of(notebook_02())).click()
    page.wait_for_url(f"**/{page_file(notebook_02())}")
    assert_on_notebook_page(page, notebook_02())
    assert page.problems == []


def test_notebook_02(page, server):
    path = notebook_02()
    open_page(page, f"{server}/{page_file(path)}")
    assert_on_notebook_page(page, path)
    assert_math_typeset(page, FORMULA_02)
    assert_images_loaded(page, expected=png_outputs(path))
    launch = page.locator(".launch")
    assert launch.locator(f'a[href="{builder.colab_url(path.name)}"]').count() == 1
    assert launch.locator(f'a[href="{builder.binder_url(path.name)}"]').count() == 1
    save_screenshot(page, "site-02.png")

    for href in page.locator("nav.sidebar a").evaluate_all("links => links.map(a => a.href)"):
        assert page.request.get(href).status == 200, f"the navigation link {href} is broken"
    following = NOTEBOOKS[NOTEBOOKS.index(path) + 1]
    nav_link(page, title_of(following)).click()
    page.wait_for_url(f"**/{page_file(following)}")
    assert_on_notebook_page(page, following)
    assert page.problems == []
