# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
# Both create .venv on first use and install what is missing; later runs reuse it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch is enough for the tests and small models; set TORCH to choose another
# (for example TORCH=torch for the default CUDA build on a machine with an NVIDIA GPU).
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | $(PYTHON) -c "import hashlib,sys;print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest()[:12])")

.PHONY: run test lint bench bench-quality screenshots clean setup dist dist-test

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/python main.py

test: $(STAMP)
	$(BIN)/python -m ruff check studio tests bench main.py
	$(BIN)/python -m ruff format --check --quiet studio tests bench main.py
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/python -m ruff check studio tests bench main.py
	$(BIN)/python -m ruff format --check --quiet studio tests bench main.py
	$(BIN)/python -m mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/import_speed.py
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/imported.py
	$(BIN)/python bench/gallery_scale.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/ui_latency.py

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m studio.ui.screenshots docs/screenshots
	$(BIN)/python -m studio.ui.names docs/ui.md

bench-quality: $(STAMP)
	$(BIN)/python bench/quality.py

# A self-contained app folder (PyInstaller, packaging/studio.spec): dist/studio/studio is the app and the CLI.
# Minutes of CPU and about 1.3 GB of disk (torch); run under nice so the machine stays usable.
dist: $(STAMP)
	$(BIN)/python -c "import PyInstaller" 2>/dev/null || $(BIN)/python -m pip install --quiet "pyinstaller>=6.10"
	rm -rf dist/studio build/pyinstaller
	nice -n 10 $(BIN)/python -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/studio.spec
	du -sh dist/studio

# The built app started offscreen, with no Python on PATH: `info --json`, a store, the window.
dist-test: $(STAMP)
	test -x dist/studio/studio || $(MAKE) dist
	STUDIO_TEST_DIST=1 QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -rs tests/test_dist.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
