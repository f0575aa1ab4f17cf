# Dynafed storage functions on Knative.
#   make demo   set up and run the main job on the embedded local stack
#   make test   set up and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# every package, pinned with hashes (mk/lock.mk: `make lock` regenerates it)
LOCK := requirements.lock
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help install demo test test-unit test-integration lint typecheck bench loadtest soak clean

help:
	@echo "make demo | test | bench | loadtest | soak | lint | typecheck | lock | images | deploy | clean"

# the repository's distributions (docs/internals.md "Distributions"): the
# three that ship, then the development checkout on top of them
DISTS := dists/contract dists/functions dists/client .

# Installs exactly the locked versions (hash-checked), then the repository's
# distributions, editable, without resolving anything; `pip check` fails if a
# pyproject.toml asks for something the lock does not hold (run `make lock`).
$(STAMP): pyproject.toml $(wildcard dists/*/pyproject.toml) $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation $(addprefix -e ,$(DISTS))
	$(PY) -m pip check
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m dynafed_client.demo

test: $(STAMP) lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check dynafed_contract dynafed_net dynafed_runtime functions dynafed_client loadtest bench tests
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .stack .pytest_cache build *.egg-info

-include mk/*.mk
