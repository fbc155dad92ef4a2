# bi_core / BrainInterNet companion — every target creates the environment if it is missing.
#   make book        build the book on the default synthetic cohort  -> _build/html/index.html
#   make test        run the test suite (what CI runs)
#   make book-smoke  the same book on the tiny smoke preset (minutes)
#   make check-book  check the built book in headless Chromium at 1280 and 400 px (tools/check_book.py)
#   make bench       training / analysis benchmarks (bench/README.md)
#   make book RETRAIN=1  train every model from scratch instead of the published weights (weights/)
#   make weights     retrain the default book's models and rewrite weights/default/ (commit it to publish)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.bi_core-installed
PRESET ?= default
OUT ?= artifacts/$(PRESET)

.PHONY: env book book-smoke check-book test bench clean help weights

help:
	@sed -n '2,9p' Makefile

# torch==2.13.0 (constraints.txt). On the project's machines the installer takes the CPU wheel kept on disk (pip's
# find-links); elsewhere PyPI's torch 2.13.0 is the CUDA build (several GB): ask for PyTorch's CPU index with
#   make env TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# pip's find-links (its config or PIP_FIND_LINKS), handed to uv, which does not read pip's config
FIND_LINKS ?= $(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n "s/^[^=]*find-links='\(.*\)'$$/\1/p" | head -1)
# uv installs the same pins as pip, in parallel: about 20 s against pip's minutes on 2 cores (bench/README.md). Where uv
# cannot be installed or fails (USE_UV=0 forces it), pip installs them.
USE_UV ?= 1
UV_VERSION ?= 0.13.10
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python $(foreach f,$(FIND_LINKS),--find-links $(f))
PIP := $(BIN)/python -m pip install --quiet --no-compile
# Bytecode is compiled on first import and kept in .venv/pycache by every process of the environment (a .pth file
# in its site-packages sets sys.pycache_prefix at start-up), rather than for all ~17,000 installed modules at install
# (a minute on 2 cores; most are never imported). It is written only there, so it is written even where the shell
# sets PYTHONDONTWRITEBYTECODE (which would otherwise recompile every module in every process: an import of the
# analysis stack 19.6 s instead of 9.8 s). A PYTHONPYCACHEPREFIX of the shell's own wins.
PYCACHE_PTH := import sys; sys.pycache_prefix = sys.pycache_prefix or '$(abspath $(VENV))/pycache'; sys.dont_write_bytecode = False

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), f"Python >= 3.11 is needed, found {sys.version.split()[0]}; set PYTHON=/path/to/python3.11"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys, sysconfig; open(sysconfig.get_path("purelib") + "/bi_core_pycache.pth", "w").write(sys.argv[1] + "\n")' \
	  "$(PYCACHE_PTH)"
	@# torch first, pinned by constraints.txt to 2.13.0 and CPU-only (an unpinned torch would pull GB of CUDA wheels),
	@# then everything else at the exact versions that made the book (pyproject.toml holds the compatible ranges)
	@install() { set -x; \
	  $$1 -c constraints.txt torch $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) && \
	  $$1 -c constraints.txt -e ".[book,dev]"; }; \
	if [ "$(USE_UV)" != 0 ] && $(PIP) "uv==$(UV_VERSION)" && install "$(UV)"; then :; \
	else echo "make env: installing with pip (USE_UV=0, or uv could not be installed or failed)"; \
	  $(PIP) --upgrade pip && install "$(PIP)"; fi
	@touch $(STAMP)

env: $(STAMP)

book: $(STAMP)
	$(BIN)/bi-core reproduce --preset $(PRESET) --out $(OUT) $(if $(RETRAIN),--retrain)

# the models the default book reads, trained from scratch on CPU (hours on 2 cores) and written as bundles
weights: $(STAMP)
	$(BIN)/bi-core reproduce --preset default --out $(OUT) --steps pretrain pretrain-real routing --publish-weights

book-smoke:
	$(MAKE) book PRESET=smoke

# the built book as a reader sees it (tools/check_book.py): raw roles, backticks, broken links, table styles, and in
# headless Chromium at 1280 and 400 px overflow, cells narrower than a word, shrunken images, untypeset maths.
# Without Chromium (apt-get install chromium) the browser checks are skipped with a message.
BOOK_HTML ?= _build/html
check-book: $(STAMP)
	$(BIN)/python tools/check_book.py $(BOOK_HTML)

# the 25 slowest tests are listed at the end. Two workers (pytest-xdist; TEST_WORKERS=0 runs in one process), a test
# module per worker at a time: the smoke book's tests (tests/test_book.py) run on one, which builds it once
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=25 $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

bench: $(STAMP)
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_analysis.py

clean:
	rm -rf _build artifacts
