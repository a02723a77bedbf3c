"""The course website (``make site``, docs/site) as a reader sees it.

The site is built once for this module into a temporary folder, with the same
script ``make site`` runs (docs/site/build_site.py: MyST plus the theme in
docs/site/theme), and served from 127.0.0.1 on a free port. Then:

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
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import chromium_or_skip, headless_chromium

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
BUILDER = ROOT / "docs" / "site" / "build_site.py"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BUILD_TIMEOUT = 300  # seconds; the build takes about 15 s on two cores
PAGE_TIMEOUT = 30
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# A formula of notebook 02 (the RNN step), as its Markdown writes it.
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


# ------------------------------------------------------------------- build
@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built into a temporary folder; returns its html/ folder."""
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if missing:
        pytest.skip(f"no {' or '.join(missing)} on PATH: the site is built with MyST, which runs on Node.js "
                    "(Debian: apt-get install nodejs npm)")
    if importlib.util.find_spec("mystmd_py") is None:
        pytest.skip("the mystmd package is not installed (pip install -r requirements.txt)")
    out = tmp_path_factory.mktemp("site")
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(BUILDER), "--out", str(out)], cwd=ROOT, capture_output=True,
                              text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the site build took more than {BUILD_TIMEOUT} s:\n{(e.stdout or '')[-3000:]}")
    if done.returncode != 0:
        pytest.fail(f"the site build failed ({done.returncode}):\n{(done.stdout + done.stderr)[-5000:]}")
    print(f"site built in {time.monotonic() - start:.1f} s")
    return out / "html"


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
