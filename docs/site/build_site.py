"""Build the course website from the notebooks and their stored outputs.

    python docs/site/build_site.py [--out docs/site/_build] [--edition student|solved]

writes a static site into OUT/html (open OUT/html/index.html, or serve the
folder). The notebooks are never run: the site shows the outputs committed
with them.

Two editions. The *student* edition, the default and the one to publish,
shows each exercise as a student gets it: the solution code is cut out by the
same function as ``charrnn student`` (:mod:`charrnn.course.student`, through
nbgrader), the stored outputs of the exercise cells and of their checks (the
"✓ ... is correct" lines) are dropped, the answers to the check-yourself
questions are left out (they are the instructor's quiz), and the Colab and
Binder links open the student copies in ``notebooks/student/``. The *solved*
edition (``--edition solved``, into OUT = docs/site/_build/solved unless
``--out`` says otherwise) is the notebooks as committed, solutions included:
for instructors, never for the public site.

How it works:

1. A staging folder, OUT/src, gets copies of every ``notebooks/NN_*.ipynb``
   (in file-name order; in the student edition, their student versions),
   the landing page (``docs/site/index.md`` with the list of notebooks and
   the edition's note filled in), the model card of the pretrained model
   with its picture, and a ``myst.yml`` that lists them in that order.
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
EDITIONS = ("student", "solved")
STUDENT_FOLDER = "notebooks/student"  # the committed student copies, which the student edition's links open


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
SITE_TITLES = {"student": SITE_TITLE, "solved": f"{SITE_TITLE} · solved edition, for instructors"}
EDITION_NOTES = {
    "student": "This is the student edition: the exercises are left for you to solve, their checks have not "
               "been run, and the answers to the check-yourself questions are not shown (your instructor has "
               "them). The Colab and Binder links open the same student copies.",
    "solved": "**This is the solved edition, for instructors.** Every exercise shows its solution and its "
              "check's output, and the check-yourself answers are folded under their questions. Do not publish "
              "it where students look: the site to publish is the student edition, which `make site` builds.",
}
# An answer to a check-yourself question, as the notebooks fold it: dropped from the student edition.
ANSWER = re.compile(r"[ \t]*\n?[ \t]*<details>\s*<summary>\s*Answer\s*</summary>.*?</details>", re.S | re.I)
OPEN_THE_ANSWER = re.compile(r",? then open the answer to compare\.")
ANSWERS_ELSEWHERE = "*The answers are not on the student site: your instructor has them.*"
# Text that must never reach a student page: nbgrader's markers of solutions and hidden tests.
SOLUTION_MARKERS = ("# BEGIN SOLUTION", "# END SOLUTION", "### BEGIN HIDDEN TESTS")
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


# ------------------------------------------------------------------ editions
def without_answers(markdown: str) -> str:
    """A Markdown cell with its folded check-yourself answers left out, and
    one line saying where they are: they are the instructor's quiz, and a
    click on a public page would give them away."""
    kept, found = ANSWER.subn("", markdown)
    if not found:
        return markdown
    return OPEN_THE_ANSWER.sub(".", kept).rstrip() + "\n\n" + ANSWERS_ELSEWHERE + "\n"


def is_exercise_or_check(cell: dict) -> bool:
    """An nbgrader solution cell (the exercise) or graded cell (its check):
    the stored outputs of both come from the solution."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution") or meta.get("grade"))


def student_notebook(solved: dict, released: dict, name: str) -> dict:
    """The notebook as the student edition shows it: every cell's source from
    its student version (``released``, nbgrader's), the outputs stored in the
    solved notebook except those of exercises and checks, and no answers to
    the check-yourself questions. Raises SystemExit when the two notebooks'
    cells differ, or when a solution marker would still reach the page."""
    if [c.get("id") for c in solved["cells"]] != [c.get("id") for c in released["cells"]]:
        raise SystemExit(f"build_site: {name}: its student version does not have the notebook's cells (ids differ), "
                         "so the stored outputs cannot be matched to the student's code")
    nb = copy.deepcopy(solved)
    for cell, student in zip(nb["cells"], released["cells"], strict=True):
        cell["source"] = source_of(student)
        if cell.get("cell_type") == "markdown":
            cell["source"] = without_answers(cell["source"])
        elif cell.get("cell_type") == "code" and is_exercise_or_check(cell):
            cell["outputs"], cell["execution_count"] = [], None
    text = json.dumps(nb, ensure_ascii=False)
    leaked = [marker for marker in SOLUTION_MARKERS if marker in text]
    if leaked:
        raise SystemExit(f"build_site: {name}: the student edition would still show {leaked[0]!r}; "
                         "is every solution inside an nbgrader solution cell?")
    return nb


def student_versions(paths: list[Path]) -> dict[str, dict]:
    """The student version of each notebook, by file name, made by the very
    function ``charrnn student`` uses (nbgrader's generate_assignment), so
    the site and the students' copies cannot drift apart."""
    import tempfile

    try:
        from charrnn.course.student import make_student_versions
        from charrnn.errors import CharRNNError
    except ImportError as e:
        raise SystemExit(f"build_site: the student edition needs the charrnn package ({e}); run it with the "
                         "project's Python (.venv/bin/python), or build --edition solved") from None
    with tempfile.TemporaryDirectory(prefix="charrnn-site-") as tmp:
        try:
            written = make_student_versions(NOTEBOOKS, tmp)
        except CharRNNError as e:
            raise SystemExit(f"build_site: making the student versions failed: {e}") from None
        released = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in written
                    if path.suffix == ".ipynb"}  # not the pages written beside them (notation.md)
    missing = [p.name for p in paths if p.name not in released]
    if missing:
        raise SystemExit(f"build_site: no student version was made of {', '.join(missing)}")
    return released


# --------------------------------------------------------------------- links
def launch_folder(edition: str) -> str:
    """Where the launch links point: the student copies, or the solved notebooks."""
    return STUDENT_FOLDER if edition == "student" else "notebooks"


def colab_url(name: str, edition: str = "student") -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{launch_folder(edition)}/{name}"


def binder_url(name: str, edition: str = "student") -> str:
    return f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}?urlpath=lab/tree/{launch_folder(edition)}/{name}"


def github_url(name: str, edition: str = "student") -> str:
    return f"https://github.com/{REPOSITORY}/blob/{BRANCH}/{launch_folder(edition)}/{name}"


# ------------------------------------------------------------------- staging
def notebook_list(entries: list[dict]) -> str:
    """The landing page's list of notebooks: a link, one line, and launch links."""
    lines = []
    for e in entries:
        summary = f" — {e['summary']}" if e["summary"] else ""
        lines.append(f"1. [{e['title']}](./{e['file']}){summary}"
                     f" ([Colab]({e['colab']}) · [Binder]({e['binder']}))")
    return "\n".join(lines)


def stage_notebooks(src: Path, edition: str) -> list[dict]:
    """Write the site's copy of every notebook into ``src``, as ``edition``
    shows it; returns one entry per notebook (file, title, summary, launch
    links), in order."""
    paths = notebook_paths()
    released = student_versions(paths) if edition == "student" else {}
    fallback = readme_summaries()
    entries = []
    for number, path in enumerate(paths, start=1):
        nb = json.loads(path.read_text(encoding="utf-8"))
        shown = student_notebook(nb, released[path.name], path.name) if edition == "student" else nb
        static = static_notebook(shown, prefix=f"nb{number}")
        (src / path.name).write_text(json.dumps(static, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        summary = SUMMARIES.get(path.stem) or fallback.get(path.name[:2], "")
        summary = summary[:1].upper() + summary[1:]
        entries.append({"file": path.name, "title": notebook_title(nb, path), "summary": summary,
                        "colab": colab_url(path.name, edition), "binder": binder_url(path.name, edition),
                        "github": github_url(path.name, edition)})
    return entries


def stage_landing(src: Path, entries: list[dict], edition: str) -> None:
    """The landing page, its pictures, the model card and the notation page."""
    landing = (HERE / "index.md").read_text(encoding="utf-8")
    landing = landing.replace("{{ notebook_list }}", notebook_list(entries))
    folder = launch_folder(edition)
    for name, value in (("binder_lab", f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}?urlpath=lab/tree/{folder}"),
                        ("repository_url", f"https://github.com/{REPOSITORY}"),
                        ("repository_name", REPOSITORY.split("/")[1]),
                        ("edition_note", EDITION_NOTES[edition])):
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


def stage(src: Path, edition: str = "student") -> list[dict]:
    """Fill ``src`` with the pages of the ``edition`` of the site; returns one
    entry per notebook (file, title, summary, launch links), in order."""
    if edition not in EDITIONS:
        raise SystemExit(f"build_site: no edition {edition!r}; choose one of {', '.join(EDITIONS)}")
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    entries = stage_notebooks(src, edition)
    stage_landing(src, entries, edition)
    toc = ["index.md", *(e["file"] for e in entries), NOTATION.name, "model-card.md"]
    myst = {
        "version": 1,
        "project": {
            "title": "charrnn: character-level language models",
            "github": f"https://github.com/{REPOSITORY}",
            "toc": [{"file": f} for f in toc],
        },
        "site": {"title": SITE_TITLES[edition], "template": str(THEME)},
    }
    # JSON is YAML, and needs no YAML library here.
    (src / "myst.yml").write_text(json.dumps(myst, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    # What the theme needs beyond MyST's own output: the launch links of each notebook.
    meta = {"title": SITE_TITLES[edition], "repository": f"https://github.com/{REPOSITORY}",
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


def build(out: Path, edition: str = "student") -> Path:
    """Stage the pages of ``edition``, build them with MyST and the theme;
    returns OUT/html."""
    out = out.resolve()
    for name in ("node", "npm"):
        if shutil.which(name) is None:
            sys.exit(f"build_site: `{name}` is not on PATH; the site needs Node.js 20 or later (Debian: apt-get "
                     "install nodejs npm)")
    install_theme(shutil.which("npm"))
    src = out / "src"
    entries = stage(src, edition)
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
    parser.add_argument("--out", type=Path, default=None,
                        help="build folder; the site goes into OUT/html (default: docs/site/_build, and "
                             "docs/site/_build/solved for the solved edition)")
    parser.add_argument("--edition", choices=EDITIONS, default="student",
                        help="student (the default, to publish): exercises unsolved, no check-yourself answers; "
                             "solved: the notebooks with their solutions, for instructors only")
    args = parser.parse_args(argv)
    out = args.out or (HERE / "_build" if args.edition == "student" else HERE / "_build" / "solved")
    start = time.monotonic()
    html = build(out, args.edition)
    print(f"built the {args.edition} edition of the course website in {time.monotonic() - start:.1f} s: "
          f"{html / 'index.html'}")


if __name__ == "__main__":
    main()
