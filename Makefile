# The README's two commands: `make compare` and `make test`. Each creates .venv and
# installs the project on first use. Extra flags: make compare ARGS="--preset quick".
# `make test` leaves out the tests marked slow (pyproject.toml); `make test-all` (CI) runs all.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

TORCH_SPEC ?= torch==2.13.0
# The versions CI tests. `make install CONSTRAINTS=` installs by pyproject.toml's ranges instead.
CONSTRAINTS ?= constraints.txt
PIN := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
ifeq ($(HAS_GPU),1)
  TORCH_INDEX ?=
  JAX_SPEC ?= jax[cuda12]
else
  # A plain `torch` from PyPI on Linux is a CUDA build of several GB: take the CPU wheel.
  TORCH_INDEX ?= --extra-index-url https://download.pytorch.org/whl/cpu
  JAX_SPEC ?= jax
endif

.PHONY: compare test test-all install clean findings

compare: $(VENV)/.installed
	$(PY) compare.py $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(VENV)/.installed

# The README's verdict, speed and set-up blocks and docs/results.md, from the committed reports.
findings: $(VENV)/.installed
	$(PY) compare.py --findings

$(VENV)/.installed: pyproject.toml Makefile $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet $(PIN) "$(TORCH_SPEC)" "$(JAX_SPEC)" -e ".[test,keras]"
	touch $@

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
