# Set-up, demo and tests on a fresh machine: only Python 3.11 and the package registries needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt

CHROMIUM ?= /usr/bin/chromium

.PHONY: install install-test browser demo test bench-mnist clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## demo: train on scikit-learn's bundled digits (offline), evaluate, write figures
demo: install
	$(VENV)/bin/vaekit train digits --out runs/demo --overwrite
	$(VENV)/bin/vaekit evaluate runs/demo
	@echo "figures: $(CURDIR)/runs/demo/figures"

## browser: Debian's Chromium for the browser tests (Playwright drives it), installed when missing
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium for the browser tests (apt-get)"; \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null)) || \
	    echo "warning: could not install chromium: browser tests skip (and fail under CI=true)"; \
	  else \
	    echo "note: $(CHROMIUM) is missing and cannot be installed here: browser tests skip (and fail under CI=true)"; \
	  fi; \
	fi

## test: install what the tests need and run them (2 workers), browser tests included
test: install-test browser
	VAEKIT_OFFLINE=1 $(PY) -m pytest -q -n 2 -m "not slow and not distributed"
	VAEKIT_OFFLINE=1 $(PY) -m pytest -q -m "distributed and not slow"

## bench-mnist: the MNIST NLL benchmark (needs MNIST in $$VAEKIT_DATA_DIR)
bench-mnist: install
	$(PY) benchmarks/mnist_nll.py --preset mnist-made --train-minutes 60
	$(PY) benchmarks/mnist_nll.py --preset mnist-burda --train-minutes 30

clean:
	rm -rf $(VENV) runs .pytest_cache
