# ardiff: `make book` builds the book, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ardiff-installed
# Real data beside the checkout (CI and the project's machines); users get verified downloads instead.
ifeq ($(ARDIFF_DATA),)
ifneq ($(wildcard ../shared/data/mnist),)
export ARDIFF_DATA := $(abspath ../shared/data)
endif
endif

.PHONY: book test install lessons colab clean

install: $(STAMP)

# PyTorch is pinned to 2.13.0 when the environment has none (a CPU build where one is on disk, else
# the normal wheel); an installed torch is kept, as pyproject.toml's range admits it.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[book,dev]"
	@touch $@

# Execute the lessons that have no stored outputs (in place), then build the HTML book, warnings as errors.
book: $(STAMP)
	$(PY) -m ardiff run-lessons --missing-only
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	@echo "Open the book: file://$(CURDIR)/_build/html/index.html"

# Re-execute every lesson in place (with the profile of this machine: full on a GPU, quick on a CPU).
lessons: $(STAMP)
	$(PY) -m ardiff run-lessons

# The Colab editions (colab/NN_*.ipynb): each lesson's code with its prose as plain markdown.
colab: $(STAMP)
	$(PY) -m ardiff colab

# Unit tests, every lesson in the quick profile, and a build of the book.
test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf _build
