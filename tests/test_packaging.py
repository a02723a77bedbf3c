"""The pins of requirements.txt and environment.yml agree; the embedded corpus, licences and version ship."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import charrnn

ROOT = Path(__file__).resolve().parents[1]
PYTHONS = ("3.11", "3.12", "3.13", "3.14")  # environment.yml is for 3.11+


def requirement_pins(python_version: str) -> dict[str, str]:
    """name -> pinned version of requirements.txt lines that apply to one Python."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(
                {"python_version": python_version, "python_full_version": python_version + ".0"}):
            continue
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"not pinned: {line}"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{req.name} pinned twice for Python {python_version}"
        pins[name] = specs[0].version
    return pins


def environment_pins() -> tuple[str, dict[str, str]]:
    """(python version, name -> pinned version of the pip section) of environment.yml."""
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    python = re.search(r"^\s*-\s*python\s*=+\s*([\d.]+)\s*$", text, re.M)
    assert python, "environment.yml pins no python version"
    pip_section = text.split("- pip:", 1)[1]
    pins = {}
    for line in pip_section.splitlines():
        match = re.match(r"^\s*-\s*([A-Za-z0-9_.\-\[\]]+)\s*==\s*(\S+)\s*$", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
        elif line.strip().startswith("-"):
            assert line.strip().startswith("- --"), f"unpinned pip entry: {line.strip()}"
    return python.group(1), pins


def test_environment_python_is_at_least_3_11():
    version, _ = environment_pins()
    assert tuple(int(x) for x in version.split(".")[:2]) >= (3, 11)


# What a student's environment needs to run every notebook; the rest of requirements.txt is for
# testing, linting, grading and building the website.
NOTEBOOK_PACKAGES = {"torch", "numpy", "pandas", "matplotlib", "tqdm", "ipywidgets", "ipykernel", "jupyterlab",
                     "filelock", "jupyterquiz"}
DEVELOPER_TOOLS = {"pytest", "nbval", "ruff", "import-linter", "playwright", "nbgrader", "mystmd",
                   "orjson",  # orjson: the "fast" extra, so the tests run prepare's fast path
                   "oaipmh-scythe"}  # the "oai" extra, so tests/test_oai.py runs the harvest
FROM_PYTHON_3_11 = {"oaipmh-scythe"}  # its HTTP client, httpx2, needs Python 3.11


@pytest.mark.parametrize("python_version", PYTHONS)
def test_environment_pins_agree_with_requirements(python_version):
    _, env = environment_pins()
    req = requirement_pins(python_version)
    assert set(env) == NOTEBOOK_PACKAGES, "environment.yml holds exactly what the notebooks need"
    assert {name: req[name] for name in env} == env, "a pin differs from requirements.txt"
    expected = NOTEBOOK_PACKAGES | DEVELOPER_TOOLS
    if tuple(int(x) for x in python_version.split(".")[:2]) < (3, 11):
        expected -= FROM_PYTHON_3_11
    assert set(req) == expected, "requirements.txt gained a package: sort it above"


def test_binder_gets_cpu_torch_and_installs_the_package_after_the_environment():
    """The CPU wheel is about a tenth of the CUDA one, and installing the
    checkout in postBuild (not as `-e .` in environment.yml) lets repo2docker
    reuse the environment layer when only the code changed."""
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s*- --extra-index-url https://download\.pytorch\.org/whl/cpu\s*$", text, re.M)
    assert not re.search(r"^\s*- -e ", text, re.M)
    post_build = ROOT / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    assert re.search(r"^python -m pip install --no-deps \.$", post_build.read_text(encoding="utf-8"), re.M)


def test_requirements_pin_every_runtime_dependency():
    req = requirement_pins("3.11")
    for name in ("torch", "numpy", "tqdm"):
        assert name in req


def test_pyproject_ships_the_corpus_as_package_data():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    data = tomllib.loads(text)
    package_data = data["tool"]["setuptools"]["package-data"]["charrnn"]
    assert "assets/*.jsonl" in package_data


def test_default_corpus_exists_inside_the_package():
    path = charrnn.default_corpus_path()
    assert path.is_file()
    assert path.suffix == ".jsonl"
    assert Path(charrnn.__file__).resolve().parent in path.resolve().parents
    assert len(path.read_text(encoding="utf-8").splitlines()) == 150


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_written_once():
    """pyproject reads it from charrnn/__init__.py; CITATION.cff must agree."""
    project = _pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "charrnn.__version__"}
    citation = re.search(r'^version:\s*"?([^"\s]+)"?\s*$', (ROOT / "CITATION.cff").read_text(encoding="utf-8"), re.M)
    assert citation and citation.group(1) == charrnn.__version__


def test_licences_are_declared():
    project = _pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    content = (ROOT / "LICENSE-CONTENT.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in content and "creativecommons.org/licenses/by/4.0" in content
    assert "license: MIT" in (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert (ROOT / "charrnn" / "py.typed").exists() and "py.typed" in _pyproject()["tool"]["setuptools"][
        "package-data"]["charrnn"]


# An install hint for this project, in any file a person reads: `pip install 'NAME[extra]'`,
# `pip install NAME`, or a direct reference `NAME @ git+...`.
_HINT = re.compile(r"""pip install\s+(?:--\S+\s+)*['"]?(charrnn[\w.-]*)|['"](charrnn[\w.-]*)\s*@\s*git\+""")


def _install_hints() -> list[tuple[str, str]]:
    files = [ROOT / "README.md", ROOT / "instructor" / "README.md", *sorted((ROOT / "charrnn").rglob("*.py")),
             *sorted((ROOT / "notebooks").glob("*.ipynb")), *sorted((ROOT / "docs").rglob("*.md"))]
    hints = []
    for path in files:
        for match in _HINT.finditer(path.read_text(encoding="utf-8")):
            hints.append((path.relative_to(ROOT).as_posix(), match.group(1) or match.group(2)))
    return hints


def test_every_install_hint_uses_the_distribution_name():
    """`pip install charrnn` would fetch an unrelated project of the same
    name: every hint says the name this project has on the package index."""
    name = _pyproject()["project"]["name"]
    hints = _install_hints()
    assert {file for file, _ in hints} >= {"README.md", "charrnn/optional.py"}
    assert any(file.startswith("notebooks/") for file, _ in hints)
    wrong = [(file, hint) for file, hint in hints if hint != name]
    assert not wrong, f"install hints that do not say {name!r}: {wrong}"
    assert charrnn.DISTRIBUTION == name
