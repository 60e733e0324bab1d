# The two commands of the README: `make up` and `make test`. Everything else here serves them.
SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH, else the one pip installs into this Python (`make install` does that when neither exists).
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen

.PHONY: up test install lint typecheck unit bench schemas asyncapi dlq-list clean

## Install what is missing (uv, the locked Python packages, Kafka's jars), start everything, print where to go.
up: install
	$(RUN) python deploy/local/up.py

## Install what is missing, start the real infrastructure once, run every check and test, stop it.
test: install lint
	$(RUN) pytest -q -p no:cacheprovider

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@$(UV) sync --frozen --quiet
	@$(RUN) python deploy/local/devstack.py install

lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy contracts/src services/servicekit/src
	$(RUN) lint-imports

## Unit tests only (no infrastructure).
unit:
	$(RUN) pytest -q -m "not infra"

## Outbox -> Kafka -> inbox throughput and latency beside raw aiokafka, measured in one run.
bench: install
	$(RUN) python tests/bench/outbox_throughput.py

schemas:
	$(RUN) python -m contracts.schemas
	$(RUN) python -m contracts.asyncapi

clean:
	$(RUN) python deploy/local/devstack.py stop || true
	rm -rf .run
