"""End to end: the generator widget of notebook 05 works in a real JupyterLab.

The other tests drive the widgets from Python (``button.click()``); this one
checks what a student sees: JupyterLab starts, notebook 05 runs in headless
Chromium, the ``charrnn-generator`` widget renders, pressing Generate shows a
text, and after moving the temperature slider Generate shows another text.
A screenshot of the widget is saved under ``runs/browser/`` (or into
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
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_sampling.ipynb"
ARTIFACTS = ROOT / "runs" / "browser"
SCREENSHOT_NAME = "generator-widget.png"
CHROMIUM_ARGS = [
    # Without the background-networking flags Chromium tries to reach Google
    # services; in a closed network those attempts make it refuse connections.
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# Timeouts (seconds): generous, the CI machine has two slow cores.
LAB_START_TIMEOUT = 60
PAGE_TIMEOUT = 60
RUN_ALL_TIMEOUT = 120  # notebook 05 alone takes ~15 s
GENERATE_TIMEOUT = 60

# JupyterLab user settings that keep pop-ups from covering the notebook and
# keep every cell in the DOM (the default windowing may detach cells that are
# off screen, which would hide their prompts from the checks below).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


# ------------------------------------------------------------------ skipping
def chromium_path() -> str | None:
    """Debian's Chromium, or any ``chromium`` on PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; skips the test when there is none (or no playwright)."""
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                        "(pip install playwright; `playwright install` is not needed)")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary: neither /usr/bin/chromium nor `chromium` on PATH "
                    "(Debian: apt-get install chromium)")
    return path


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


@pytest.fixture
def lab(tmp_path, chromium):
    """A JupyterLab serving a copy of notebooks/; yields (base URL, token, log
    path). Always shut down, even when the test fails."""
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
@pytest.fixture
def page(chromium):
    """A Chromium page (1400 x 1000) with generous default timeouts."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(PAGE_TIMEOUT * 1000)
            yield page
        finally:
            browser.close()


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
    try:
        state = page.wait_for_function(RUN_STATE_JS, timeout=RUN_ALL_TIMEOUT * 1000).json_value()
    except Exception:
        pytest.fail(f"Run All Cells did not finish within {RUN_ALL_TIMEOUT} s; the prompts of the "
                    f"code cells read: {code_cell_prompts(page)}")
    if state == "stopped":
        last = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea-prompt", has_text=re.compile(r"\d")))
        pytest.fail(f"Run All Cells stopped early (prompts: {code_cell_prompts(page)}); the last cell that "
                    f"ran shows:\n{last.last.locator('.jp-OutputArea').inner_text()}")


def code_cell_prompts(page) -> str:
    return " ".join(p.strip() for p in page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts())


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
    try:
        page.wait_for_function(CLICK_HANDLED_JS, arg=handle, timeout=GENERATE_TIMEOUT * 1000)
    except Exception:
        pytest.fail(f"the Generate button was not disabled and re-enabled within {GENERATE_TIMEOUT} s "
                    f"(did the click reach the kernel?); the output shows: "
                    f"{widget.locator('.charrnn-output').inner_text()!r}")
    if widget.locator("pre.charrnn-generated").count() == 0:
        pytest.fail(f"Generate showed no text; the output shows: {widget.locator('.charrnn-output').inner_text()!r}")
    return generated_text(widget)


def move_temperature_slider(page, widget) -> tuple[str, str]:
    """Choose the temperature strategy (the slider is disabled for greedy),
    then move the ``temperature`` slider with the keyboard, 8 steps towards
    its farther end; returns its readout before and after."""
    widget.locator(".widget-dropdown", has=page.locator("label", has_text="strategy")) \
        .locator("select").select_option("temperature")
    slider = widget.locator(".widget-slider", has=page.locator("label", has_text="temperature")).first
    readout = slider.locator(".widget-readout")
    handle = slider.locator(".noUi-handle")
    page.wait_for_function("el => !el.hasAttribute('disabled')",  # enabled once the kernel's change arrives
                           arg=slider.locator(".noUi-target").element_handle())
    now, low, high = (float(handle.get_attribute(f"aria-value{a}")) for a in ("now", "min", "max"))
    before = readout.inner_text()
    handle.focus()
    for _ in range(8):
        page.keyboard.press("ArrowRight" if now - low < high - now else "ArrowLeft")
    try:
        page.wait_for_function("([el, before]) => el.textContent.trim() !== before.trim()",
                               arg=[readout.element_handle(), before], timeout=10_000)
    except Exception:
        pytest.fail(f"the temperature readout stayed at {before} after pressing arrow keys on the slider")
    return before, readout.inner_text()


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("CHARRNN_SCREENSHOT_DIR") or ARTIFACTS)
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_failure_artifacts(page, log: Path) -> str:
    """Screenshot and HTML of the page and the JupyterLab log, for a failure message."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved = []
    try:
        page.screenshot(path=ARTIFACTS / "failure-page.png", full_page=True)
        saved.append(ARTIFACTS / "failure-page.png")
        (ARTIFACTS / "failure-page.html").write_text(page.content(), encoding="utf-8")
        saved.append(ARTIFACTS / "failure-page.html")
    except Exception as e:  # the page itself may be what broke
        saved.append(f"(no page screenshot: {e})")
    shutil.copy(log, ARTIFACTS / "failure-jupyterlab.log")
    saved.append(ARTIFACTS / "failure-jupyterlab.log")
    return "saved: " + ", ".join(map(str, saved)) + f"\nJupyterLab log (end):\n{tail(log)}"


# ---------------------------------------------------------------------- test
def test_generator_widget_in_jupyterlab(lab, page):
    base, token, log = lab
    try:
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        run_all_cells(page)

        widget = page.locator(".charrnn-generator")
        if widget.count() == 0:
            pytest.fail(f"{NOTEBOOK} ran, but no widget with CSS class charrnn-generator was shown "
                        "(does it display a charrnn.widgets.GeneratorWidget?)")
        widget = widget.first
        widget.scroll_into_view_if_needed()
        prefix = widget.locator(".widget-text", has=page.locator("label", has_text="prefix")) \
            .locator("input").input_value()
        assert prefix, "the prefix box is empty"

        first = press_generate(page, widget)
        assert first.startswith(prefix), f"{first!r} does not start with the prefix {prefix!r}"

        before, after = move_temperature_slider(page, widget)

        second = press_generate(page, widget)
        assert second.startswith(prefix), f"{second!r} does not start with the prefix {prefix!r}"
        assert second != first, f"the same text at temperature {before} and {after}"

        widget.screenshot(path=screenshot_dir() / SCREENSHOT_NAME)
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, pytest.skip.Exception)):
            raise
        raise AssertionError(f"{e}\n\n{save_failure_artifacts(page, log)}") from e
