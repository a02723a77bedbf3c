"""The Colab and Binder links must point where the notebooks' install cell points.

The repository name appears in three places (README badges, the first code cell
of every notebook, pyproject's [project.urls]); a fork that renames one and not
the others would send students to the wrong code, so the three are compared.
"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def repository_slug():
    # A regular expression rather than tomllib, which Python 3.10 lacks.
    pyproject = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^Repository = "https://github\.com/([\w.-]+/[\w.-]+)"$', pyproject, re.M)
    assert match, "pyproject.toml has no [project.urls] Repository = \"https://github.com/OWNER/NAME\""
    return match.group(1)


def first_code_cell(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def test_every_notebook_has_a_colab_badge_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    slug = repository_slug()
    for path in NOTEBOOKS:
        link = f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/student/{path.name}"
        assert link in readme, f"README has no Colab badge for {path.name} ({link})"
    colab = r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/main/notebooks/([\w./-]+)"
    colab_links = re.findall(colab, readme)
    assert colab_links, "README has no Colab links"
    for link_slug, name in colab_links:
        assert link_slug == slug, f"Colab link to {link_slug}, pyproject says {slug}"
        assert (ROOT / "notebooks" / name).exists(), f"Colab link to a notebook that does not exist: {name}"


def test_every_notebook_is_listed_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    assert NOTEBOOKS, "no numbered notebooks found"
    for path in NOTEBOOKS:
        assert f"](notebooks/{path.name})" in readme, f"README's notebook table does not link {path.name}"
    for name in re.findall(r"\]\(notebooks/([\w.-]+\.ipynb)\)", readme):
        assert (ROOT / "notebooks" / name).exists(), f"README links a notebook that does not exist: {name}"


def test_binder_link_points_at_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert f"https://mybinder.org/v2/gh/{repository_slug()}/main?urlpath=lab/tree/notebooks" in readme


def test_every_notebook_opens_with_the_same_colab_install_cell():
    cells = {path.name: first_code_cell(path) for path in NOTEBOOKS}
    assert len(cells) >= 6
    reference = cells[NOTEBOOKS[0].name]
    assert f'git+https://github.com/{repository_slug()}"' in reference
    assert 'if "google.colab" in sys.modules' in reference, "the install must run on Colab only"
    for name, source in cells.items():
        assert source == reference, f"{name}: its Colab install cell differs from {NOTEBOOKS[0].name}'s"


def test_binder_installs_the_checkout():
    assert "pip install --no-deps ." in (ROOT / "postBuild").read_text(), "postBuild must install the checkout"
