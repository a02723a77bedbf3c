# Everything runs inside .venv, created on first use. `make demo` and
# `make test` are the two commands a newcomer needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test portability lab bench student student-copies grade clean screenshots site site-solved

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10) and "charrnn needs Python >= 3.10, found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m charrnn demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest
	$(BIN)/python tests/portability.py nbval

# For authors: every notebook under every floating-point configuration in
# tests/portability.py, then the unit tests on the generic code paths; lists
# each cell or test whose output differs, with the diff.
portability: $(STAMP)
	$(BIN)/python tests/portability.py audit

student: $(STAMP)
	$(BIN)/python -m charrnn student --notebooks notebooks --out student --overwrite

# The committed student copies (notebooks/student/, what the Colab and Binder badges open); rebuild
# after changing a notebook: tests/test_student_copies.py fails until they match.
student-copies: $(STAMP)
	$(BIN)/python -m charrnn student --notebooks notebooks --out notebooks/student --overwrite

# Grade a class: SUBMISSIONS holds one folder per student with their notebooks.
SUBMISSIONS ?= submissions
JOBS ?= 2
grade: $(STAMP)
	$(BIN)/python -m charrnn grade $(SUBMISSIONS) --out scores.csv --jobs $(JOBS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Refresh the README's pictures: screenshots of the generator, the surprisal view
# and the neuron explorer in a real browser (needs chromium; see
# tests/test_browser.py), and the library's PNG drawings of the last two.
screenshots: $(STAMP)
	CHARRNN_SCREENSHOT_DIR=docs/images $(BIN)/python -m pytest -m browser -rs tests/test_browser.py
	$(BIN)/python docs/make_images.py docs/images

# The course website: every notebook with its stored outputs (never re-run), a
# landing page and the model card, built with MyST and the theme in docs/site
# (needs Node.js 20+; `npm ci` fetches the theme's one package on first use).
# Open docs/site/_build/html/index.html in a browser.
site: $(STAMP)
	$(BIN)/python docs/site/build_site.py --out docs/site/_build

# The instructors' edition of the site: solutions, their checks' outputs and the check-yourself answers.
site-solved: $(STAMP)
	$(BIN)/python docs/site/build_site.py --edition solved

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) runs student .pytest_cache docs/site/_build docs/site/theme/node_modules
