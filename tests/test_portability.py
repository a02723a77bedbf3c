"""tests/portability.py finds a cell whose output moves with the code path,
and `make test` really runs the notebooks under a second configuration.

The audit of a small notebook takes a few seconds per configuration (a
kernel per run)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import portability

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "portability.py"


def fragile_notebook(path: Path) -> Path:
    """A notebook with one stable cell and one that prints a checksum of 64
    float32 random normals: ``randn`` computes them with vector instructions,
    and about 40% of them come out one bit different under
    ATEN_CPU_CAPABILITY=default (aten-scalar)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("print(2 + 2)"),
        nbformat.v4.new_code_cell("import hashlib, torch\n"
                                  "x = torch.randn(64, generator=torch.Generator().manual_seed(0))\n"
                                  "print(hashlib.sha1(x.numpy().tobytes()).hexdigest())"),
    ]
    path.mkdir(parents=True, exist_ok=True)
    notebook = path / "fragile.ipynb"
    nbformat.write(nb, notebook)
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                           "--inplace", str(notebook)], cwd=ROOT, env=portability.environment("native"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return notebook


def audit(notebook: Path, *configs: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "audit", str(notebook), "--no-unit-tests",
                           "--configs", *configs], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_audit_names_the_cell_that_moves_and_shows_the_diff(tmp_path):
    notebook = fragile_notebook(tmp_path)
    stored = nbformat.read(notebook, 4).cells[1].outputs[0].text.strip()

    done = audit(notebook, "native", "aten-scalar")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    report = done.stdout
    assert re.search(r"native\s+2 cells,\s+0 differ", report)
    assert re.search(r"aten-scalar\s+2 cells,\s+1 differ", report)
    assert "differs: " in report and "fragile.ipynb::Cell 1" in report
    assert f"+ {stored}" in report  # the stored value, marked as stored
    assert "FAILED under: aten-scalar" in report


def test_the_audit_passes_a_notebook_that_prints_stable_digits(tmp_path):
    notebook = fragile_notebook(tmp_path)
    nb = nbformat.read(notebook, 4)
    del nb.cells[1]
    nbformat.write(nb, notebook)
    done = audit(notebook, "native", "aten-scalar")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"aten-scalar\s+1 cells,\s+0 differ", done.stdout)


def test_settings_of_the_caller_do_not_leak_into_a_configuration(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    assert "MKL_CBWR" not in portability.environment("native")
    assert portability.environment("mkl-compatible")["MKL_CBWR"] == "COMPATIBLE"


def test_make_test_runs_the_notebooks_under_a_second_configuration():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "tests/portability.py nbval" in recipe
    assert portability.TEST_CONFIGS == ("native", "generic")
