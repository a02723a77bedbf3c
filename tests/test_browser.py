"""End to end: the widgets of notebooks 05 and 06 work in a real JupyterLab.

The other tests drive the widgets from Python (``button.click()``); these
check what a student sees. One JupyterLab serves both tests; each opens its
notebook in headless Chromium and runs all cells, then:

- notebook 05: the ``charrnn-generator`` widget renders, pressing Generate
  shows a text, and after moving the temperature slider Generate shows
  another text;
- notebook 06: in the ``charrnn-surprisal-view`` a new sentence typed into the
  text box and scored comes back coloured character by character, with its
  bits per character; in the ``charrnn-neuron-explorer`` picking another
  suggested unit recolours the text by that unit.

A screenshot of each widget (``generator-widget.png``, ``surprisal-view.png``,
``neuron-explorer.png``) is saved under ``runs/browser/`` (or into
``$CHARRNN_SCREENSHOT_DIR``: ``make screenshots`` refreshes the README images).

It needs the ``playwright`` Python package and a Chromium binary (Debian's
``chromium``; ``playwright install`` is never needed) and skips, saying
which, when either is missing. Otherwise it fails loudly: on failure the page,
its screenshot and the JupyterLab log are saved under ``runs/browser/``.

JupyterLab serves a temporary copy of ``notebooks/``, so saving and autosave
never touch the tracked notebooks, and its settings, workspaces and kernel
specs live in temporary folders, so a developer's own Jupyter setup does not
leak in.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import chromium_or_skip, headless_chromium

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "runs" / "browser"

# Timeouts (seconds): generous, the CI machine has two slow cores.
LAB_START_TIMEOUT = 60
PAGE_TIMEOUT = 60
RUN_ALL_TIMEOUT = 120  # notebooks 05 and 06 take ~15 s each
WIDGET_TIMEOUT = 60  # for the kernel to answer a click or a choice in a widget

# JupyterLab user settings that keep pop-ups from covering the notebook and
# keep every cell in the DOM (the default windowing may detach cells that are
# off screen, which would hide their prompts from the checks below).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


# ------------------------------------------------------------------ skipping
@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; skips the test when there is none (or no playwright)."""
    return chromium_or_skip()


# ---------------------------------------------------------------- JupyterLab
def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_lab_settings(settings_dir: Path) -> None:
    """Write LAB_SETTINGS as JupyterLab user-settings files."""
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        path = settings_dir / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def wait_until_answering(url: str, process: subprocess.Popen, log: Path) -> None:
    """Poll the server's REST API until it answers; fail with the log if it dies or is slow."""
    deadline = time.monotonic() + LAB_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited with {process.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)  # polling interval, not a wait for a guessed duration
    pytest.fail(f"jupyter lab did not answer within {LAB_START_TIMEOUT} s:\n{tail(log)}")


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (the server then shuts its kernels
    down), SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium):
    """A JupyterLab serving a copy of notebooks/, started once for all the
    tests here; yields (base URL, token, log path). Always shut down, even
    when a test fails."""
    tmp_path = tmp_path_factory.mktemp("lab")
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    jupyter = tmp_path / "jupyter"
    write_lab_settings(jupyter / "settings")
    token = secrets.token_hex(16)
    port = free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(jupyter / "config"), JUPYTER_DATA_DIR=str(jupyter / "data"),
               JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"), JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
               f"--IdentityProvider.token={token}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
               "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={jupyter / 'settings'}",
               f"--LabApp.workspaces_dir={jupyter / 'workspaces'}",
               "--LabApp.extension_manager=readonly"]  # no look-ups of PyPI for extensions
    if os.geteuid() == 0:  # CI containers often run as root, which jupyter refuses by default
        command.append("--allow-root")
    log = tmp_path / "jupyterlab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=root, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{base}/api/status?token={token}", process, log)
        yield base, token, log
    finally:
        stop_process_group(process)


# ------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def browser(chromium):
    """Headless Chromium, launched once for all the tests here."""
    with headless_chromium(chromium) as browser:
        yield browser


@pytest.fixture
def page(browser):
    """A fresh page (1400 x 1000, its own browser context) with generous
    default timeouts."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT * 1000)
        yield page
    finally:
        context.close()


# Run in the page, over the prompts of the code cells ("[ ]:", "[*]:", "[7]:")
# and the status bar's kernel status. Once the kernel is idle and nothing is
# queued: "done" when every cell ran, "stopped" when only some did (a cell
# raised and Run All cancelled the rest), false while still running.
RUN_STATE_JS = """() => {
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
    const idle = [...document.querySelectorAll('.jp-StatusBar-TextItem')].some(e => /\\|\\s*Idle$/.test(e.textContent));
    if (!idle || prompts.some(t => t.includes('*'))) return false;
    const ran = prompts.filter(t => /\\[\\d+\\]/.test(t)).length;
    return ran === 0 ? false : ran === prompts.length ? "done" : "stopped";
}"""
NO_CELL_RAN_JS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .every(p => !/\\d/.test(p.textContent))"""


def click_menu(page, menu: str, item: str) -> None:
    """Click a main-menu entry by its labels, as a user would: e.g. Run > Run All Cells."""
    exactly = lambda label: re.compile(rf"^{re.escape(label)}$")  # noqa: E731
    page.locator(".lm-MenuBar-itemLabel", has_text=exactly(menu)).click()
    page.locator(".lm-Menu-content .lm-Menu-item:not(.lm-mod-disabled)",
                 has=page.locator(".lm-Menu-itemLabel", has_text=exactly(item))).click()


def wait_for_idle_kernel(page) -> None:
    """Wait until the status bar says the kernel is idle. (Not the toolbar's
    execution indicator: it reads "idle" before the kernel is even started,
    and Run All Cells clicked then runs nothing.)"""
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\|\s*Idle$")).wait_for()


def run_all_cells(page) -> None:
    """Clear the saved outputs (they may hold a stale, dead copy of the
    widget, and old prompt numbers), run every cell, and wait until all ran."""
    wait_for_idle_kernel(page)
    click_menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function(NO_CELL_RAN_JS)
    click_menu(page, "Run", "Run All Cells")
    state = wait_until(page, RUN_STATE_JS, None, RUN_ALL_TIMEOUT, lambda: (
        f"Run All Cells did not finish within {RUN_ALL_TIMEOUT} s; the prompts of the "
        f"code cells read: {code_cell_prompts(page)}")).json_value()
    if state == "stopped":
        last = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea-prompt", has_text=re.compile(r"\d")))
        pytest.fail(f"Run All Cells stopped early (prompts: {code_cell_prompts(page)}); the last cell that "
                    f"ran shows:\n{last.last.locator('.jp-OutputArea').inner_text()}")


def code_cell_prompts(page) -> str:
    return " ".join(p.strip() for p in page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts())


def open_and_run(page, lab, notebook: str) -> None:
    """Open ``notebook`` in JupyterLab, wait for its kernel, run all cells and
    wait until they ran. Each notebook gets its own workspace, so a page never
    restores the tabs (and kernels) another test left open on the shared server."""
    base, token, _ = lab
    page.goto(f"{base}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?token={token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    run_all_cells(page)


def find_widget(page, css_class: str, notebook: str, shown_by: str):
    """The first widget with ``css_class`` in the page, scrolled into view;
    fails, naming the class that should have shown it, when there is none."""
    widget = page.locator(f".{css_class}")
    if widget.count() == 0:
        pytest.fail(f"{notebook} ran, but no widget with CSS class {css_class} was shown "
                    f"(does it display a charrnn.viz.widgets.{shown_by}?)")
    widget = widget.first
    widget.scroll_into_view_if_needed()
    return widget


def labelled(page, widget, kind: str, label: str):
    """The control of class ``widget-{kind}`` whose description is ``label``."""
    exactly = re.compile(rf"^{re.escape(label)}$")
    return widget.locator(f".widget-{kind}", has=page.locator("label", has_text=exactly)).first


def wait_until(page, condition_js: str, arg, timeout_s: float, failure: Callable[[], str]):
    """``page.wait_for_function(condition_js, arg)``: the handle of its truthy
    value; on a timeout, fail with ``failure()`` (called then, so it can
    describe what the page shows)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return page.wait_for_function(condition_js, arg=arg, timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        pytest.fail(failure())


def save_widget_screenshot(page, widget, name: str) -> None:
    """A screenshot of just ``widget``, without focus ring or hover effect,
    into ``screenshot_dir()``."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)
    widget.screenshot(path=screenshot_dir() / name)


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("CHARRNN_SCREENSHOT_DIR") or ARTIFACTS)
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_failure_artifacts(page, log: Path, name: str) -> str:
    """Screenshot and HTML of the page and the JupyterLab log, for a failure message."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved = []
    try:
        page.screenshot(path=ARTIFACTS / f"failure-{name}-page.png", full_page=True)
        saved.append(ARTIFACTS / f"failure-{name}-page.png")
        (ARTIFACTS / f"failure-{name}-page.html").write_text(page.content(), encoding="utf-8")
        saved.append(ARTIFACTS / f"failure-{name}-page.html")
    except Exception as e:  # the page itself may be what broke
        saved.append(f"(no page screenshot: {e})")
    shutil.copy(log, ARTIFACTS / f"failure-{name}-jupyterlab.log")
    saved.append(ARTIFACTS / f"failure-{name}-jupyterlab.log")
    return "saved: " + ", ".join(map(str, saved)) + f"\nJupyterLab log (end):\n{tail(log)}"


@contextlib.contextmanager
def failure_artifacts(page, lab, name: str):
    """On any failure inside, save the page and the JupyterLab log under
    runs/browser/ (files named after ``name``) and say so in the message."""
    try:
        yield
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, pytest.skip.Exception)):
            raise
        raise AssertionError(f"{e}\n\n{save_failure_artifacts(page, lab[2], name)}") from e


# ------------------------------------------------------- notebook 05: generator
def generated_text(widget) -> str:
    return widget.locator("pre.charrnn-generated").inner_text()


# Run in the page on the Generate button: count changes of its ``disabled``
# attribute. GeneratorWidget.generate() disables the button, writes the
# output, then enables it again, so "changed at least once and enabled now"
# means the kernel handled the click and the output is up to date, even when
# the new text equals the old one.
WATCH_BUTTON_JS = """button => {
    button.__charrnnToggles = 0;
    new MutationObserver(records => { button.__charrnnToggles += records.length; })
        .observe(button, {attributes: true, attributeFilter: ["disabled"]});
}"""
CLICK_HANDLED_JS = "button => button.__charrnnToggles > 0 && !button.disabled"


def press_generate(page, widget) -> str:
    """Click Generate, wait until the kernel has handled it, return the text shown."""
    button = widget.get_by_role("button", name="Generate")
    handle = button.element_handle()
    handle.evaluate(WATCH_BUTTON_JS)
    button.click()
    wait_until(page, CLICK_HANDLED_JS, handle, WIDGET_TIMEOUT, lambda: (
        f"the Generate button was not disabled and re-enabled within {WIDGET_TIMEOUT} s "
        f"(did the click reach the kernel?); the output shows: "
        f"{widget.locator('.charrnn-output').inner_text()!r}"))
    if widget.locator("pre.charrnn-generated").count() == 0:
        pytest.fail(f"Generate showed no text; the output shows: {widget.locator('.charrnn-output').inner_text()!r}")
    return generated_text(widget)


def move_temperature_slider(page, widget) -> tuple[str, str]:
    """Choose the temperature strategy (the slider is disabled for greedy),
    then move the ``temperature`` slider with the keyboard, 8 steps towards
    its farther end; returns its readout before and after."""
    labelled(page, widget, "dropdown", "strategy").locator("select").select_option("temperature")
    slider = labelled(page, widget, "slider", "temperature")
    readout = slider.locator(".widget-readout")
    handle = slider.locator(".noUi-handle")
    page.wait_for_function("el => !el.hasAttribute('disabled')",  # enabled once the kernel's change arrives
                           arg=slider.locator(".noUi-target").element_handle())
    now, low, high = (float(handle.get_attribute(f"aria-value{a}")) for a in ("now", "min", "max"))
    before = readout.inner_text()
    handle.focus()
    for _ in range(8):
        page.keyboard.press("ArrowRight" if now - low < high - now else "ArrowLeft")
    wait_until(page, "([el, before]) => el.textContent.trim() !== before.trim()",
               [readout.element_handle(), before], 10,
               lambda: f"the temperature readout stayed at {before} after pressing arrow keys on the slider")
    return before, readout.inner_text()


# -------------------------------------------- notebook 06: surprisal and neurons
# The text of a coloured-text output (charrnn.viz.colortext.coloured_text_html):
# its first inner div holds one <span> per character.
COLOURED_SPANS = ".charrnn-coloured-text > div:first-child > span"
# Run in the page on a widget's HTML output: true once its coloured text reads ``text``.
SHOWS_TEXT_JS = """([output, spans, text]) =>
    [...output.querySelectorAll(spans)].map(s => s.textContent).join("") === text"""
# Run in the page on a widget's HTML output: true once its text contains ``needle``.
CONTAINS_JS = "([output, needle]) => output.textContent.replace(/\\s+/g, ' ').includes(needle)"
NEW_SENTENCE = "We propose a new method for sparse graphs ; We study $\\alpha$-expansions of random matrices."


def score_new_text(page, view, text: str) -> tuple[str, str]:
    """Replace the SurprisalView's text with ``text``, click Score, wait until
    the output shows ``text`` coloured; returns the output's HTML before and after."""
    output = view.locator(".widget-html")
    before = output.inner_html()
    # Playwright's fill() sends a single input event; the Textarea syncs its
    # value to the kernel on it (continuous_update), before the click's message.
    view.locator("textarea").fill(text)
    view.get_by_role("button", name="Score").click()
    wait_until(page, SHOWS_TEXT_JS, [output.element_handle(), COLOURED_SPANS, text], WIDGET_TIMEOUT, lambda: (
        f"{WIDGET_TIMEOUT} s after clicking Score the output still does not show the new text "
        f"{text!r}; it shows: {output.inner_text()!r}"))
    return before, output.inner_html()


def shown_unit(output) -> int | None:
    """The unit named by the NeuronExplorer's caption ("unit 223: -1 ..."), if any."""
    found = re.search(r"\bunit\s(\d+):", output.inner_text())
    return int(found.group(1)) if found else None


def pick_suggestion(page, explorer) -> tuple[int | None, int, str]:
    """Pick another entry of the "suggested" dropdown, wait until the output
    shows it; returns the unit shown before, the one picked and its label.

    The entry is the first position-in-the-line unit that grows along the text
    (the "clock" notebook 06 points to; its colours stay light enough to read
    the text through them in the screenshot), else the first other unit."""
    output = explorer.locator(".widget-html")
    before = shown_unit(output)
    select = labelled(page, explorer, "dropdown", "suggested").locator("select")
    # The option labels are "title: unit 223 (r = -0.87, chance 0.13)", with
    # non-breaking spaces; their values are ipywidgets' own (indices).
    options = [(value, " ".join(label.split())) for value, label
               in select.evaluate("s => [...s.options].map(o => [o.value, o.textContent])")]
    units = {value: int(m.group(1)) for value, label in options if (m := re.search(r"\bunit (\d+)\b", label))}
    others = [(value, label) for value, label in options if value in units and units[value] != before]
    if not others:
        pytest.fail(f"the suggested dropdown offers no unit other than {before}: {[o[1] for o in options]}")
    value, label = next((o for o in others if re.match(r"line_position: .*\(r = \+", o[1])), others[0])
    select.select_option(value=value)
    unit = units[value]
    wait_until(page, CONTAINS_JS, [output.element_handle(), f"unit {unit}:"], WIDGET_TIMEOUT, lambda: (
        f"{WIDGET_TIMEOUT} s after choosing {label!r} the output does not show unit {unit}; "
        f"it shows: {output.inner_text()[-300:]!r}"))
    return before, unit, label


# ---------------------------------------------------------------------- tests
def test_generator_widget_in_jupyterlab(lab, page):
    notebook = "05_sampling.ipynb"
    with failure_artifacts(page, lab, "05"):
        open_and_run(page, lab, notebook)
        widget = find_widget(page, "charrnn-generator", notebook, "GeneratorWidget")
        prefix = labelled(page, widget, "text", "prefix").locator("input").input_value()
        assert prefix, "the prefix box is empty"

        first = press_generate(page, widget)
        assert first.startswith(prefix), f"{first!r} does not start with the prefix {prefix!r}"

        before, after = move_temperature_slider(page, widget)

        second = press_generate(page, widget)
        assert second.startswith(prefix), f"{second!r} does not start with the prefix {prefix!r}"
        assert second != first, f"the same text at temperature {before} and {after}"

        save_widget_screenshot(page, widget, "generator-widget.png")


def test_surprisal_and_neuron_widgets_in_jupyterlab(lab, page):
    from playwright.sync_api import expect

    notebook = "06_inside_the_rnn.ipynb"
    with failure_artifacts(page, lab, "06"):
        open_and_run(page, lab, notebook)

        view = find_widget(page, "charrnn-surprisal-view", notebook, "SurprisalView")
        before, after = score_new_text(page, view, NEW_SENTENCE)
        assert after != before, "the coloured output did not change after Score"
        spans = view.locator(COLOURED_SPANS)
        assert spans.count() == len(NEW_SENTENCE), \
            f"{spans.count()} coloured characters for a text of {len(NEW_SENTENCE)}"
        assert all("background" in (s or "") for s in spans.evaluate_all("ss => ss.map(s => s.style.cssText)")), \
            "some characters of the scored text have no background colour"
        summary = view.locator(".widget-html").inner_text()
        assert re.search(rf"\d+\.\d\d bits per character on average over {len(NEW_SENTENCE)} characters",
                         summary), f"no 'bits per character on average' line in {summary!r}"
        save_widget_screenshot(page, view, "surprisal-view.png")

        explorer = find_widget(page, "charrnn-neuron-explorer", notebook, "NeuronExplorer")
        shown_before, unit, label = pick_suggestion(page, explorer)
        output = explorer.locator(".widget-html")
        assert shown_unit(output) == unit != shown_before, \
            f"after choosing {label!r} the caption names unit {shown_unit(output)} (before: {shown_before})"
        expect(labelled(page, explorer, "text", "unit").locator("input"),
               f"after choosing {label!r} the unit box should read {unit}").to_have_value(str(unit))
        save_widget_screenshot(page, explorer, "neuron-explorer.png")
