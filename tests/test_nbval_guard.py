"""nbval really guards notebook 01: the stored notebook passes, and a copy
whose stored output was altered fails. Each run starts a kernel and runs
the notebook (a few seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NB01 = ROOT / "notebooks" / "01_data_and_tokenization.ipynb"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


def run_nbval(notebook: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(SANITIZE), str(notebook)],
        cwd=notebook.parent, capture_output=True, text=True, timeout=300)


def test_nbval_passes_unaltered_and_fails_altered(tmp_path):
    intact = tmp_path / "intact" / NB01.name
    intact.parent.mkdir()
    intact.write_bytes(NB01.read_bytes())
    result = run_nbval(intact)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]

    nb = nbformat.read(NB01, as_version=4)
    # The cell printing the vocabulary: change one character of its stored text.
    cell = next(c for c in nb.cells if c.cell_type == "code" and "CharVocab.from_texts(texts)\n" in c.source)
    stream = next(o for o in cell.outputs if o.output_type == "stream")
    assert "ids of <pad> <bos> <eos> <unk>: 0 1 2 3" in stream.text
    stream.text = stream.text.replace("0 1 2 3", "0 1 2 4")
    altered = tmp_path / "altered" / NB01.name
    altered.parent.mkdir()
    nbformat.write(nb, altered)
    result = run_nbval(altered)
    assert result.returncode != 0, "nbval accepted a notebook whose stored output was altered"
    assert "1 failed" in result.stdout, result.stdout[-3000:]
