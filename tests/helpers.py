"""Helpers shared by the tests (imported as ``helpers``): invented records
and stub models with CharRNN's forward signature."""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path

import torch
from torch import nn


# ------------------------------------------------------------------ records
def _record(i: int, title: str, abstract: str, categories: str) -> dict:
    return {"id": f"test-{i:04d}", "title": title, "abstract": abstract, "categories": categories}


TINY_RECORDS = [
    _record(1, "Sparse Attention for\n  Long Sequences",
            "  We study sparse attention patterns for long sequences.\nThe method is fast.\n",
            "cs.LG stat.ML"),
    _record(2, "On the Spectral Gap of Random Graphs",
            "We bound the spectral gap of sparse random regular graphs.", "math.CO math.PR"),
    _record(3, "Gauge Anomalies in Six Dimensions",
            "  We classify gauge anomalies of six-dimensional supergravity\ntheories.\n", "hep-th"),
    _record(4, "Neural Operators for Fluid Flows",
            "Neural operators learn solution maps of partial differential equations.", "cs.LG physics.flu-dyn"),
    _record(5, "A Note on Cs2 Registers", "This record is in the invented archive cs2.", "cs2.XX"),
    _record(6, "Quantum Error Correction with Few Qubits",
            "  We present a code that corrects one error\nwith five physical qubits.\n", "quant-ph"),
    _record(7, "Bayesian Inference for Stellar Ages",
            "We infer ages of stars from asteroseismic data.", "astro-ph.SR stat.AP"),
    _record(8, "Convex Relaxations of Graph Cuts",
            "Semidefinite relaxations give tight bounds for graph cut problems.", "cs.DS math.OC"),
    _record(9, "Phonons in Twisted Bilayers",
            "  We compute phonon spectra of twisted bilayer graphene\nat small angles.\n", "cond-mat.mes-hall"),
    _record(10, "Causal Discovery from Time Series",
            "We learn causal graphs from multivariate time series with lags.", "stat.ME cs.AI"),
    _record(11, "Lattice Estimates of Hadron Masses",
            "We compute hadron masses on fine lattices.", "hep-lat hep-ph"),
    _record(12, "Transformers Are Not Always Needed",
            "Small recurrent networks remain competitive for character models.", "cs.CL"),
]


def to_jsonl_bytes(items) -> bytes:
    """Records (dicts) and raw lines (str) -> JSON-lines bytes."""
    lines = [json.dumps(x, ensure_ascii=False) if isinstance(x, dict) else x for x in items]
    return ("\n".join(lines) + "\n").encode("utf-8")


class FixedLogits(nn.Module):
    """Stub with CharRNN's signature ``(x, state) -> (logits, state)`` that
    returns the same logits at every position."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))  # generate() asks for a parameter's device
        self.register_buffer("logits", logits.float())
        self.calls = 0

    def forward(self, x, state=None):
        self.calls += 1
        batch, steps = x.shape
        if state is None:
            state = torch.zeros(1, batch, 1)
        return self.logits.expand(batch, steps, -1).clone(), state


class NextTokenTable(nn.Module):
    """Stub whose next-token logits depend only on the current input token:
    a deterministic "language" given by ``table[token] = next token``."""

    def __init__(self, table: dict[int, int], vocab_size: int):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        logits = torch.full((vocab_size, vocab_size), -5.0)
        for token, nxt in table.items():
            logits[token, nxt] = 5.0
        self.register_buffer("logits", logits)

    def forward(self, x, state=None):
        if state is None:
            state = torch.zeros(1, x.shape[0], 1)
        return self.logits[x], state


@functools.lru_cache(maxsize=1)
def student_versions() -> Path:
    """The student versions of all notebooks, built once per test session
    (nbgrader takes seconds to build them)."""
    import atexit
    import shutil
    import tempfile

    from charrnn.course.student import make_student_versions

    out = Path(tempfile.mkdtemp(prefix="charrnn-test-student-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    make_student_versions(Path(__file__).resolve().parents[1] / "notebooks", out)
    return out


def student_check_cell_fails(notebook_name: str, exercise_def: str, tmp_path) -> str:
    """Make the student version of ``notebooks/<notebook_name>``, run its
    exercise cell (the one starting ``exercise_def``) and the check cell
    after it, and return the ExerciseError message the check raises."""
    import nbformat
    import pytest

    import charrnn
    from charrnn.course import checks
    from charrnn.course.checks import ExerciseError
    from charrnn.course.student import STUB

    dst = student_versions() / notebook_name
    cells = [c.source for c in nbformat.read(dst, as_version=4).cells if c.cell_type == "code"]
    at = next(i for i, source in enumerate(cells) if source.startswith(exercise_def))
    assert STUB in cells[at] and "return" not in cells[at]
    namespace = {"charrnn": charrnn, "checks": checks, "torch": torch, "nn": torch.nn}
    exec(cells[at], namespace)              # the exercise cell, as the student gets it
    with pytest.raises(ExerciseError) as info:
        exec(cells[at + 1], namespace)      # the check cell right after it
    return str(info.value)


# A message names the idea, never the line: no solution code in any hint.
SOLUTION_CODE = ("torch.", "@", ".sum()", ".T ", "log_softmax(", "clip_grad_norm_(", "stoi.get", "dim=")


def assert_no_solution_code(message: str) -> None:
    hint = message.split("Hint:", 1)[-1]
    leaked = [bit for bit in SOLUTION_CODE if bit in hint]
    assert leaked == [], f"the hint shows code {leaked}: {hint}"


# ------------------------------------------------------------------ browser
# Without the background-networking flags Chromium tries to reach Google
# services; in a closed network those attempts make it refuse connections.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    """Debian's Chromium, or any ``chromium`` on PATH."""
    import os
    import shutil

    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def chromium_or_skip() -> str:
    """The Chromium binary; skips the calling test when there is none (or no playwright)."""
    import pytest

    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                        "(pip install playwright; `playwright install` is not needed)")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary: neither /usr/bin/chromium nor `chromium` on PATH "
                    "(Debian: apt-get install chromium)")
    return path


@contextlib.contextmanager
def headless_chromium(path: str):
    """Chromium at ``path``, launched headless through Playwright, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# ---------------------------------------------------------------------- CLI
def run_cli(argv) -> tuple[int, str, str]:
    """``charrnn.cli.main(argv)`` with stdout and stderr captured; an argparse
    exit becomes the status. Usable in any fixture scope (no capsys)."""
    import io

    from charrnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(rc, err, *fragments):
    """Exit status 2 and stderr of exactly one ``charrnn: error:`` line (no
    traceback, nothing else) holding every fragment."""
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charrnn: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def one_cell_notebook(source: str, exercise: bool = True):
    """A notebook of one code cell; ``exercise`` marks it as an nbgrader
    solution cell (a "your turn" cell)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(source)
    if exercise:
        cell.metadata["nbgrader"] = {"grade": False, "grade_id": "f", "locked": False, "schema_version": 3,
                                     "solution": True, "task": False}
    nb.cells = [cell]
    return nb
