# Set-up, demo and tests on a fresh machine: only Python 3.11 and the package registries needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: install install-test demo test bench-mnist clean

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

## test: install what the tests need and run them (2 workers)
test: install-test
	VAEKIT_OFFLINE=1 $(PY) -m pytest -q -n 2 -m "not slow and not distributed"
	VAEKIT_OFFLINE=1 $(PY) -m pytest -q -m "distributed and not slow"

## bench-mnist: the MNIST NLL benchmark (needs MNIST in $$VAEKIT_DATA_DIR)
bench-mnist: install
	$(PY) benchmarks/mnist_nll.py --preset mnist-made --train-minutes 60
	$(PY) benchmarks/mnist_nll.py --preset mnist-burda --train-minutes 30

clean:
	rm -rf $(VENV) runs .pytest_cache
