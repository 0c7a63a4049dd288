# patchpipe: one entry point for set-up, the lab, the demo, tests and benchmarks.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export PATCHPIPE_FLEET ?= $(CURDIR)/include/fleet.yaml

.PHONY: help venv lab-up lab-down lab-status lab-reset demo up test test-unit bench bench-patch clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/patchpipe: requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

venv: $(BIN)/patchpipe ## create .venv with Airflow, the providers and patchpipe

lab-up: ## start Docker, the registries, Swarm, the base image and the demo fleet (idempotent)
	bash include/lab/lab.sh up

lab-down: ## stop the lab's services and registries (keeps caches and registry data)
	bash include/lab/lab.sh down

lab-status: ## show what of the lab is running
	bash include/lab/lab.sh status

lab-reset: ## put the demo fleet back on its original, unpatched images
	bash include/lab/lab.sh reset

demo: venv lab-up ## patch the demo fleet once, headless, and print what was patched
	bash include/demo/run_demo.sh

up: venv lab-up ## airflow standalone with this project's DAGs (UI on http://localhost:8080)
	bash include/demo/standalone.sh

test-unit: venv ## tests that need nothing but Python
	$(BIN)/pytest -m "not integration and not e2e" tests

test: venv lab-up ## every test this machine can run (brings the lab up first)
	$(BIN)/pytest tests

bench-patch: venv lab-up ## patch in place versus a full no-cache rebuild of the vendor image, with ratios
	$(BIN)/python tests/bench/bench_patch.py

bench: bench-patch ## every benchmark; figures in bench/results.json

clean: ## remove the virtualenv and local Airflow home
	rm -rf $(VENV) .airflow
