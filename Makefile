# NavGym: every target does its own set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: setup system-deps browser-deps test test-all demo results results-system1 bench lint clean

setup: $(STAMP)

# Debian packages for headless EGL rendering (Mesa llvmpipe on a CPU, the vendor EGL on a GPU machine),
# ffmpeg-free video writing comes from imageio-ffmpeg's wheel.
system-deps:
	@scripts/install_system_deps.sh

$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned to the CPU build that pip resolves without pulling CUDA wheels on a CPU box;
	# on a GPU machine install the CUDA build of the same version beforehand and this is a no-op.
	$(PIP) install -q "torch==2.13.0" || $(PIP) install -q "torch>=2.2,<=2.14.1"
	$(PIP) install -q -e ".[dev]"
	touch $(STAMP)

# Debian's chromium for the browser test of the interactive viewer (Playwright drives it; no browser download).
browser-deps: setup
	@scripts/install_browser_deps.sh $(PY)

# Tiny models: one OpenMP thread per process avoids oversubscribing a small machine (tests run several processes).
test: setup browser-deps
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest

test-all: setup browser-deps
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -m ""

demo: setup
	scripts/demo.sh $(PY)

# The README's results tables, re-made over seeds (hours at the default preset; resumable: rerun to continue).
# e.g. make results RESULTS_ARGS="--preset small"
results: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) scripts/results.py $(RESULTS_ARGS)

# The System-1 table (NavDP and the baselines on the System-1 data; many CPU-hours; resumable: rerun to continue).
# e.g. make results-system1 RESULTS_ARGS="--only navdp,expert,random --jobs 2"
results-system1: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) scripts/results_system1.py $(RESULTS_ARGS)

bench: setup
	$(PY) benchmarks/throughput.py

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
