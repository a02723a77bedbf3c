"""Build the course website from the notebooks and their stored outputs.

    python docs/site/build_site.py [--out docs/site/_build]

writes a static site into OUT/html (open OUT/html/index.html, or serve the
folder). The notebooks are never run: the site shows the outputs committed
with them.

How it works:

1. A staging folder, OUT/src, gets copies of every ``notebooks/NN_*.ipynb``
   (in file-name order), the landing page (``docs/site/index.md`` with the
   list of notebooks filled in), the model card of the pretrained model with
   its picture, and a ``myst.yml`` that lists them in that order.
2. The copies are made for a static page: where a cell shows coloured HTML or
   a widget next to a PNG of the same thing (the notebooks store such "image
   twins"), only the PNG is kept; a widget with no twin becomes a short note
   that it is interactive.
3. ``myst build --html`` (the ``mystmd`` package) parses the notebooks and
   the Markdown, typesets the math with KaTeX and hands the result to the
   small theme in ``docs/site/theme``, which writes the HTML pages. The
   theme is part of this repository, so nothing is downloaded at build time
   except, once, its one npm package (KaTeX's style sheet and fonts), which
   ``npm ci`` installs from the npm registry into docs/site/theme/node_modules.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI (requirements.txt)
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
THEME = HERE / "theme"
NOTEBOOKS = ROOT / "notebooks"
MODEL_CARD = ROOT / "charrnn" / "assets" / "pretrained" / "README.md"
NOTATION = NOTEBOOKS / "notation.md"   # every symbol of the course, linked from the notebooks
BRANCH = "main"


def repository_slug() -> str:
    """OWNER/NAME on GitHub, from pyproject's [project.urls] Repository (as
    tests/test_links.py reads it), so the launch links follow a fork. Read
    with a TOML parser, so quoting, spacing or a comment on the line cannot
    hide it."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        url = tomllib.load(f).get("project", {}).get("urls", {}).get("Repository")
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)/?", url) if isinstance(url, str) else None
    if match is None:  # launch links to another repository would be wrong without a word
        raise SystemExit("build_site: pyproject.toml has no line Repository = \"https://github.com/OWNER/NAME\" "
                         "under [project.urls]; the Colab, Binder and GitHub links are built from it")
    return match.group(1)


REPOSITORY = repository_slug()

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
NOTE_CLASS = "site-widget-note"
TEST_MARKER = re.compile(r"^\s*# NBVAL_")  # as the student versions drop them (nbgrader_course.NBVAL_MARKER)
SITE_TITLE = "charrnn course"
SITE_META = "site-meta.json"  # read by the theme, found through $CHARRNN_SITE_META
LANDING_IMAGES = ["surprisal.png"]  # from docs/images, shown on the landing page

# One line per notebook for the landing page, by file name. A notebook not
# listed here gets its line from the table in notebooks/README.md, so a new or
# renamed notebook still shows up with a description.
SUMMARIES = {
    "01_data_and_tokenization":
        "From arXiv records to tensors: the character vocabulary, special tokens, padding, targets and "
        "the pad mask.",
    "02_rnn_cell_from_scratch":
        "A recurrent cell written by hand, checked against PyTorch, and what happens to gradients when "
        "they flow back through many time steps.",
    "03_the_language_model":
        "Embedding, recurrent layer and output layer put together into a model of the next character; "
        "the masked loss in nats and bits; GRU and LSTM.",
    "04_training":
        "Training loops, by hand and with the library's trainer, judged against simple counting models; "
        "truncated backpropagation and checkpoints.",
    "05_sampling":
        "Turning scores into text with the pretrained model: temperature, top-k and top-p, and fast "
        "generation that carries the state.",
    "06_inside_the_rnn":
        "How surprised the model is by each character, and single hidden units that follow the "
        "structure of the text.",
    "07_origin_bugs_data_and_model":
        "The mistakes of the notebook this course grew out of, part one: reading the data, the "
        "vocabulary and the model, and what each one costs.",
    "08_origin_bugs_training_and_sampling":
        "Part two: the mistakes in the training loop and in text generation, from clipping that never "
        "clips to a temperature of zero.",
    "09_train_your_own":
        "The capstone: your own model on text you choose (the embedded corpus, real arXiv records "
        "harvested without an account, or a .txt of your own), judged against counting models and xz.",
}


# ------------------------------------------------------------------ notebooks
def notebook_paths() -> list[Path]:
    """Every numbered notebook, in file-name order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def notebook_title(nb: dict, path: Path) -> str:
    """The first Markdown heading of the notebook (what MyST uses as its title)."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            match = re.search(r"^#\s+(.+?)\s*#*\s*$", source_of(cell), re.M)
            if match:
                return match.group(1)
    return path.stem


def source_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def readme_summaries() -> dict[str, str]:
    """Two-digit number -> the 'subject' column of the notebook table in
    notebooks/README.md (the table whose header is ``| notebook | subject |``)."""
    readme = NOTEBOOKS / "README.md"
    if not readme.exists():
        return {}
    table = re.search(r"^\|\s*notebook\s*\|\s*subject\s*\|\s*\n((?:\|.*\n?)*)",
                      readme.read_text(encoding="utf-8"), re.M)
    if table is None:
        return {}
    summaries = {}
    for row in table.group(1).splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) == 2 and re.fullmatch(r"\d\d", cells[0]):
            summaries.setdefault(cells[0], re.sub(r"\*\*(.+?)\*\*", r"\1", cells[1]))
    return summaries


def has_colour(html) -> bool:
    html = "".join(html) if isinstance(html, list) else str(html)
    return "background:" in html or "background-color:" in html


def widget_note() -> dict:
    """An output that says a widget was here, instead of an empty widget box."""
    text = "An interactive widget shows here when the notebook runs: open it in Colab, Binder or JupyterLab to use it."
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": f'<div class="{NOTE_CLASS}">{text}</div>', "text/plain": text}}


def static_outputs(outputs: list[dict]) -> list[dict]:
    """The outputs of one code cell as a static page should show them.

    A PNG stands in for the coloured HTML or the widget it was drawn from:
    within one output its HTML and widget view are dropped, and within one
    cell an HTML output with colour or a widget view is dropped when the cell
    has a PNG. A widget without a PNG becomes a note."""
    cell_has_png = any("image/png" in out.get("data", {}) for out in outputs)
    kept = []
    for out in outputs:
        data = out.get("data")
        if data is None:
            kept.append(out)
            continue
        out = copy.deepcopy(out)
        data = out["data"]
        if "image/png" in data:
            data.pop("text/html", None)
            data.pop(WIDGET_VIEW, None)
        elif WIDGET_VIEW in data:
            if cell_has_png:
                continue
            out = widget_note()
        elif "text/html" in data and has_colour(data["text/html"]) and cell_has_png:
            continue
        kept.append(out)
    return kept


def without_test_markers(source: str) -> str:
    """The code of a cell without the comment lines that tell nbval how to test
    it (``# NBVAL_IGNORE_OUTPUT``): they mean nothing to a reader."""
    return "".join(line for line in source.splitlines(keepends=True) if not TEST_MARKER.match(line))


def static_notebook(nb: dict, prefix: str = "") -> dict:
    """A copy of the notebook for the site. ``prefix`` goes in front of every
    cell id: MyST wants them unique across the site, and each notebook has a
    cell called "colab-setup"."""
    nb = copy.deepcopy(nb)
    for cell in nb.get("cells", []):
        if prefix and cell.get("id"):
            cell["id"] = f"{prefix}-{cell['id']}"
        if cell.get("cell_type") == "code":
            cell["outputs"] = static_outputs(cell.get("outputs", []))
            cell["source"] = without_test_markers(source_of(cell))
    nb.get("metadata", {}).get("widgets", {}).pop(WIDGET_STATE, None)
    return nb


# --------------------------------------------------------------------- links
def colab_url(name: str) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{name}"


def binder_url(name: str) -> str:
    return f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}?urlpath=lab/tree/notebooks/{name}"


def github_url(name: str) -> str:
    return f"https://github.com/{REPOSITORY}/blob/{BRANCH}/notebooks/{name}"


# ------------------------------------------------------------------- staging
def notebook_list(entries: list[dict]) -> str:
    """The landing page's list of notebooks: a link, one line, and launch links."""
    lines = []
    for e in entries:
        summary = f" — {e['summary']}" if e["summary"] else ""
        lines.append(f"1. [{e['title']}](./{e['file']}){summary}"
                     f" ([Colab]({colab_url(e['file'])}) · [Binder]({binder_url(e['file'])}))")
    return "\n".join(lines)


def stage(src: Path) -> list[dict]:
    """Fill ``src`` with the pages of the site; returns one entry per notebook
    (file, title, summary, launch links), in order."""
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    fallback = readme_summaries()
    entries = []
    for number, path in enumerate(notebook_paths(), start=1):
        nb = json.loads(path.read_text(encoding="utf-8"))
        static = static_notebook(nb, prefix=f"nb{number}")
        (src / path.name).write_text(json.dumps(static, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        summary = SUMMARIES.get(path.stem) or fallback.get(path.name[:2], "")
        summary = summary[:1].upper() + summary[1:]
        entries.append({"file": path.name, "title": notebook_title(nb, path), "summary": summary,
                        "colab": colab_url(path.name), "binder": binder_url(path.name),
                        "github": github_url(path.name)})

    landing = (HERE / "index.md").read_text(encoding="utf-8")
    landing = landing.replace("{{ notebook_list }}", notebook_list(entries))
    for name, value in (("binder_lab", f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}?urlpath=lab/tree/notebooks"),
                        ("repository_url", f"https://github.com/{REPOSITORY}"),
                        ("repository_name", REPOSITORY.split("/")[1])):
        landing = landing.replace(f"{{{{ {name} }}}}", value)
    (src / "index.md").write_text(landing, encoding="utf-8")
    (src / "images").mkdir()
    for image in LANDING_IMAGES:
        shutil.copy(ROOT / "docs" / "images" / image, src / "images" / image)

    card = MODEL_CARD.read_text(encoding="utf-8")
    (src / "model-card.md").write_text(card, encoding="utf-8")
    for image in MODEL_CARD.parent.glob("*.png"):
        shutil.copy(image, src / image.name)

    shutil.copy(NOTATION, src / NOTATION.name)
    toc = ["index.md", *(e["file"] for e in entries), NOTATION.name, "model-card.md"]
    myst = {
        "version": 1,
        "project": {
            "title": "charrnn: character-level language models",
            "github": f"https://github.com/{REPOSITORY}",
            "toc": [{"file": f} for f in toc],
        },
        "site": {"title": SITE_TITLE, "template": str(THEME)},
    }
    # JSON is YAML, and needs no YAML library here.
    (src / "myst.yml").write_text(json.dumps(myst, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    # What the theme needs beyond MyST's own output: the launch links of each notebook.
    meta = {"title": SITE_TITLE, "repository": f"https://github.com/{REPOSITORY}",
            "notebooks": {e["file"]: e for e in entries}}
    (src / SITE_META).write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return entries


# ---------------------------------------------------------------------- theme
def lock_digest() -> str:
    return hashlib.sha256((THEME / "package-lock.json").read_bytes()).hexdigest()


def install_theme(npm: str) -> None:
    """``npm ci`` the theme's locked packages, unless they are installed already."""
    stamp = THEME / "node_modules" / ".charrnn-lock"
    if stamp.exists() and stamp.read_text(encoding="utf-8") == lock_digest():
        return
    print("installing the site theme's npm packages (npm ci)", flush=True)
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=THEME, check=True)
    stamp.write_text(lock_digest(), encoding="utf-8")


def tool(name: str) -> str:
    """A command from this Python's environment, else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        sys.exit(f"build_site: `{name}` was not found (is the environment installed? `make site` installs it)")
    return found


def build(out: Path) -> Path:
    """Stage the pages, build them with MyST and the theme; returns OUT/html."""
    out = out.resolve()
    for name in ("node", "npm"):
        if shutil.which(name) is None:
            sys.exit(f"build_site: `{name}` is not on PATH; the site needs Node.js 20 or later (Debian: apt-get "
                     "install nodejs npm)")
    install_theme(shutil.which("npm"))
    src = out / "src"
    entries = stage(src)
    # The pages link to each other by relative paths, so no base URL is needed.
    env = {k: v for k, v in os.environ.items() if k not in ("BASE_URL", "READTHEDOCS", "READTHEDOCS_CANONICAL_URL")}
    env["CHARRNN_SITE_META"] = str(src / SITE_META)
    env["HOST"] = "127.0.0.1"  # MyST's content server, which the theme reads from, listens on loopback only
    subprocess.run([tool("myst"), "build", "--html"], cwd=src, check=True, env=env)
    built = src / "_build" / "html"
    pages = [built / "index.html", *(built / f"{Path(e['file']).stem}.html" for e in entries)]
    missing = [str(p.relative_to(built)) for p in pages if not p.exists()]
    if missing:
        sys.exit(f"build_site: the build made no {', '.join(missing)}")
    html = out / "html"
    if html.exists():
        shutil.rmtree(html)
    shutil.move(str(built), html)
    return html


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "_build",
                        help="build folder; the site goes into OUT/html (default: docs/site/_build)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    html = build(args.out)
    print(f"built the course website in {time.monotonic() - start:.1f} s: {html / 'index.html'}")


if __name__ == "__main__":
    main()
