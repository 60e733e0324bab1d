# The two commands of the README: `make up` and `make test`. Everything else here serves them.
SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH, else the one pip installs into this Python (`make install` does that when neither exists).
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen

.PHONY: up test install lint typecheck unit bench schemas messages asyncapi dlq-list clean

## Install what is missing (uv, the locked Python packages, Kafka's jars), start everything, print where to go.
up: install
	$(RUN) python deploy/local/up.py

## Install what is missing, start the real infrastructure once, run every check and test, stop it.
test: install lint
	$(RUN) pytest -q -p no:cacheprovider --durations=25

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

## Extract the portal's texts (French) and update the French and English catalogues; then translate the new
## English entries (tests/test_portal_i18n.py fails on an untranslated or missing one).
LOCALE := services/gateway/src/gateway/locale
messages:
	cd services/gateway/src && $(RUN) pybabel -q extract -F ../babel.cfg -k N_ --sort-by-file --no-wrap \
		--project Visiopass -o gateway/locale/messages.pot gateway
	for language in fr en; do \
		if [ -f $(LOCALE)/$$language/LC_MESSAGES/messages.po ]; then \
			$(RUN) pybabel -q update --no-wrap --no-fuzzy-matching -i $(LOCALE)/messages.pot -d $(LOCALE) -l $$language; \
		else \
			$(RUN) pybabel -q init --no-wrap -i $(LOCALE)/messages.pot -d $(LOCALE) -l $$language; \
		fi; \
	done

clean:
	$(RUN) python deploy/local/devstack.py stop || true
	rm -rf .run
