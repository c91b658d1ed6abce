# SPDX-License-Identifier: MIT
# The two commands a learner or CI needs:
#   make lab    set up (first time only) and open JupyterLab on notebooks/
#   make test   set up (first time only) and run the whole test suite
# Both run scripts/setup.sh first, which is idempotent and quick once done.

SHELL := /bin/bash
VENV ?= .venv

# Folders the test stages use; add yours here (or override: make test TEST_TARGETS=tests/xen).
LINT_PATHS ?= pvlab tests benchmarks
TEST_TARGETS ?= tests
NOTEBOOK_DIRS ?= notebooks solutions
PYTEST_ARGS ?=
# Extra arguments for `pvlab lab`, e.g. make lab LAB_ARGS="--port 9999" or LAB_ARGS=--app
LAB_ARGS ?=
# The random-operation campaign (docs/fidelity.md), e.g. make campaign CAMPAIGN_ARGS="--sequences 2000"
CAMPAIGN_ARGS ?= --sequences 100000 --seed-from 50000 --workers 2
# Differential fuzzing against real Xen (docs/fuzzing.md), e.g. make fuzz FUZZ_BUILDS=path/to/xen/xen
FUZZ_BUILDS ?= 4.17 4.19
FUZZ_ARGS ?= --budget 3600
# Arguments for `pvlab hub`, e.g. make hub HUB_ARGS="--port 8000 --admin organiser"
HUB_ARGS ?=

export VENV LINT_PATHS TEST_TARGETS NOTEBOOK_DIRS PYTEST_ARGS

.PHONY: lab app test setup setup-lab doctor lint clean help campaign hub setup-hub fuzz

help:
	@echo "make lab    - set up and start JupyterLab on notebooks/ (prints the URL with its token)"
	@echo "make app    - set up and serve the scenario lab as a standalone Voila page"
	@echo "make test   - set up and run ruff, mypy, pytest and every notebook"
	@echo "make hub    - set up and start a workshop JupyterHub (docs/workshop.md)"
	@echo "make doctor - check the set-up (pvlab doctor)"
	@echo "make campaign - 100,000 random operation sequences checked against Xen's rules (tens of minutes)"
	@echo "make fuzz   - an hour of differential fuzzing against both real Xen builds (docs/fuzzing.md)"
	@echo "make clean  - remove .venv and caches"

lab: setup-lab
	$(VENV)/bin/pvlab lab $(LAB_ARGS)

app: setup-lab
	$(VENV)/bin/pvlab lab --app $(LAB_ARGS)

test: setup
	bash scripts/test.sh

setup:
	bash scripts/setup.sh --test

setup-lab:
	bash scripts/setup.sh --lab

campaign: setup
	$(VENV)/bin/pvlab campaign $(CAMPAIGN_ARGS)

# Long run on a developer machine: each build in turn, findings under fuzz-findings/<n>/.
fuzz: setup
	@n=0; status=0; for build in $(FUZZ_BUILDS); do n=$$((n+1)); \
	  $(VENV)/bin/pvlab fuzz --xen $$build $(FUZZ_ARGS) --out fuzz-findings/$$n --json || status=1; \
	done; exit $$status

# A JupyterHub for a workshop room; set PVLAB_HUB_PASSWORD (asked for when unset).
hub: setup-hub
	$(VENV)/bin/pvlab hub $(HUB_ARGS)

setup-hub:
	bash scripts/setup.sh --hub

doctor: setup-lab
	$(VENV)/bin/pvlab doctor

lint: setup
	$(VENV)/bin/ruff check $(wildcard $(LINT_PATHS))

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis
