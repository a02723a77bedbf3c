"""The committed student copies (notebooks/student/) are what the builder
makes of today's notebooks and hold no solution; the README's badges open
them; `charrnn notebooks` hands either edition to a pip user, from a wheel
too; the demo's next steps fit how charrnn was installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from helpers import assert_one_line_error, run_cli

from charrnn.cli import train as cli_train
from charrnn.course import student
from charrnn.course.student import COMPANIONS, REFRESH_COMMAND, STUB

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
COPIES = NOTEBOOKS / "student"
SOLVED = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
README = (ROOT / "README.md").read_text(encoding="utf-8")


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------- the committed copies
def test_the_committed_student_copies_are_current(tmp_path, monkeypatch):
    """Rebuilt with no --notebooks, from a folder outside the clone, the
    student versions are byte for byte the committed ones."""
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(["student", "--out", "fresh"])
    assert rc == 0, err
    fresh = tmp_path / "fresh"
    stale = [p.name for p in sorted(fresh.iterdir())
             if not (COPIES / p.name).is_file() or (COPIES / p.name).read_bytes() != p.read_bytes()]
    extra = sorted(set(names(COPIES)) - set(names(fresh)))
    assert not stale and not extra, (f"notebooks/student/ is stale (differs: {stale}, not built: {extra}): "
                                     f"run `make student-copies` ({REFRESH_COMMAND})")
    assert names(fresh) == sorted([p.name for p in SOLVED] + ["notation.md"]) and SOLVED


def solution_regions(path: Path) -> tuple[list[str], str]:
    """The regions between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` of a
    solved notebook, and its text without them."""
    text = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
    pattern = r"# BEGIN SOLUTION\n(.*?)# END SOLUTION"
    return re.findall(pattern, text, flags=re.S), re.sub(pattern, "", text, flags=re.S)


@pytest.mark.parametrize("path", SOLVED, ids=lambda p: p.stem[:2])
def test_a_student_copy_holds_no_solution_and_no_output(path):
    """Each solution region is one stub, and no line of a solution that the
    notebook shows nowhere else (25 characters or more) is left."""
    regions, elsewhere = solution_regions(path)
    copy = nbformat.read(COPIES / path.name, as_version=4)
    text = "\n".join(cell.source for cell in copy.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert text.count(STUB) == len(regions)  # 09, the capstone, has none: its student writes a whole model
    distinctive = {line.strip() for region in regions for line in region.splitlines()
                   if len(line.strip()) >= 25 and line.strip() not in elsewhere}
    leaked = sorted(line for line in distinctive if line in text)
    assert leaked == [], f"{path.name}: the student copy shows solution lines {leaked}"
    assert all(not c.get("outputs") for c in copy.cells if c.cell_type == "code")


def test_the_student_copies_hold_the_exercises():
    stubs = sum((COPIES / p.name).read_text(encoding="utf-8").count(STUB.replace('"', '\\"')) for p in SOLVED)
    assert stubs == sum(len(solution_regions(p)[0]) for p in SOLVED) >= 9


# ------------------------------------------------------------------ the badges
def test_the_colab_badges_open_the_student_copies():
    targets = re.findall(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/main/(\S+?\.ipynb)",
                         README)
    assert sorted(targets) == [f"notebooks/student/{p.name}" for p in SOLVED]
    assert all((ROOT / target).is_file() for target in targets)


def test_the_binder_badge_opens_the_student_copies_and_the_readme_says_where_the_solved_ones_are():
    binder = re.findall(r"https://mybinder\.org/v2/gh/\S+?urlpath=([^)\s]+)", README)
    assert binder and all(target.rstrip("/") == "lab/tree/notebooks/student" for target in binder), binder
    assert "solved edition" in README and "instructor" in README.lower()


# ------------------------------------------------------------ charrnn notebooks
@pytest.mark.parametrize("flags,source", [([], COPIES), (["--solved"], NOTEBOOKS)], ids=["student", "solved"])
def test_notebooks_writes_one_edition_and_its_companions(tmp_path, flags, source, monkeypatch):
    monkeypatch.setitem(sys.modules, "nbgrader", None)  # copying needs neither nbgrader nor nbformat
    monkeypatch.setitem(sys.modules, "nbformat", None)
    out = tmp_path / "mine"
    rc, stdout, err = run_cli(["notebooks", "--out", out, *flags])
    assert rc == 0, err
    assert names(out) == sorted([p.name for p in SOLVED] + list(COMPANIONS))
    for path in SOLVED:
        assert (out / path.name).read_bytes() == (source / path.name).read_bytes()
    assert f"wrote {len(SOLVED)} notebooks" in stdout and f"jupyter lab {out}" in stdout


def test_notebooks_refuses_to_replace_work_without_overwrite(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / SOLVED[1].name).write_text("a student's work", encoding="utf-8")
    rc, _, err = run_cli(["notebooks", "--out", out])
    assert_one_line_error(rc, err, SOLVED[1].name, "--overwrite")
    assert names(out) == [SOLVED[1].name]  # nothing written
    assert (out / SOLVED[1].name).read_text(encoding="utf-8") == "a student's work"
    rc, _, err = run_cli(["notebooks", "--out", out, "--overwrite"])
    assert rc == 0, err
    assert (out / SOLVED[1].name).read_bytes() == (COPIES / SOLVED[1].name).read_bytes()


@pytest.mark.parametrize("where,fragment", [("file", "is a file"), ("copies", "where the notebooks come from"),
                                            ("solved", "where the notebooks come from")])
def test_notebooks_bad_out_is_one_line(tmp_path, where, fragment):
    out = {"file": tmp_path / "f.txt", "copies": COPIES, "solved": NOTEBOOKS}[where]
    if where == "file":
        out.write_text("keep me", encoding="utf-8")
    before = {p: p.read_bytes() for p in [*out.parent.glob("*.*"), *NOTEBOOKS.glob("*.*"), *COPIES.glob("*")]
              if p.is_file()}
    rc, _, err = run_cli(["notebooks", "--out", out, "--overwrite"])
    assert_one_line_error(rc, err, str(out), fragment)
    assert all(p.read_bytes() == data for p, data in before.items())


def test_notebooks_without_any_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(student, "notebooks_home", lambda: None)
    rc, _, err = run_cli(["notebooks", "--out", tmp_path / "mine"])
    assert_one_line_error(rc, err, "holds no notebooks", "pip install")
    assert not (tmp_path / "mine").exists()


def test_notebooks_without_student_copies_names_the_command(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(SOLVED[0], home)
    monkeypatch.setattr(student, "notebooks_home", lambda: home)
    rc, _, err = run_cli(["notebooks", "--out", tmp_path / "mine"])
    assert_one_line_error(rc, err, str(home / "student"), "make student-copies")


# ----------------------------------------------------------------- next steps
def test_the_demo_next_steps_fit_the_installation(monkeypatch):
    in_clone = cli_train.next_steps(Path("runs/demo.pt"))
    assert "make lab" in in_clone and "charrnn notebooks" not in in_clone
    monkeypatch.setattr(student, "in_a_clone", lambda: False)
    after_pip = cli_train.next_steps(Path("runs/demo.pt"))
    assert "make" not in after_pip and "notebooks/09" not in after_pip.replace("charrnn-notebooks/09", "")
    assert "python -m charrnn notebooks --out charrnn-notebooks" in after_pip
    assert "--checkpoint runs/demo.pt" in after_pip


# ---------------------------------------------------------------- from a wheel
def test_a_wheel_ships_both_editions_and_notebooks_reads_them_outside_a_clone(tmp_path):
    """Build the wheel from a copy of the project (about 2 s), unpack it,
    and run `charrnn notebooks` from it in a folder that is no clone."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "charrnn", src / "charrnn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(NOTEBOOKS, src / "notebooks", ignore=shutil.ignore_patterns("runs", ".ipynb_checkpoints"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", tmp_path / "dist", src], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("*.whl"))
    listed = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"charrnn/notebooks/{p.name}" for p in SOLVED} | {f"charrnn/notebooks/student/{p.name}" for p in SOLVED}
    missing = sorted((expected | {f"charrnn/notebooks/{name}" for name in COMPANIONS}) - listed)
    assert missing == [], f"the wheel lacks {missing}: pyproject's package-dir and package-data for charrnn.notebooks"
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    work = tmp_path / "work"
    work.mkdir()
    ran = subprocess.run([sys.executable, "-c", "import charrnn, sys; from charrnn.cli import main; "
                          "print(charrnn.__file__); sys.exit(main(['notebooks', '--out', 'nb']))"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(str(tmp_path / "site")), ran.stdout  # the wheel's charrnn, not the clone's
    for path in SOLVED:
        assert (work / "nb" / path.name).read_bytes() == (COPIES / path.name).read_bytes()
