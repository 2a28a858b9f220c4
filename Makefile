# Two commands matter: `make up` runs the product, `make test` runs every test suite.
# Both install what they need first (system packages, the virtualenv, the model).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# Each float model and its int8 variant (ml_worker.quantise); add efficientnet_lite1 (and _int8) to build it too.
BUILT_MODELS ?= efficientnet_lite0 efficientnet_lite2 efficientnet_lite0_int8 efficientnet_lite2_int8
ARTIFACTS := $(foreach model,$(BUILT_MODELS),ml_worker/artifacts/$(model)/1/model_card.json)
SYSTEM_PACKAGES := redis-server nginx chromium docker-compose
PYTEST_ARGS ?=
PORT ?= 8080

.PHONY: setup system-deps artifacts up down status test test-fast test-unit test-js test-multihost \
        test-compose lint format audit bench bench-model bench-train loadtest export-feedback add-feedback screenshot clean

setup: system-deps $(STAMP) $(ARTIFACTS)

system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v nginx >/dev/null || missing="$$missing nginx"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): constraints.txt requirements-dev.txt $(addsuffix /pyproject.toml,contract ml_worker backend cli)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e 'contract[test]' \
		-e 'ml_worker[build,litert,tensorflow,test]' -e 'backend[test]' -r requirements-dev.txt
	@# The client last: in older checkouts imgclf-api owned bin/imgclf, and upgrading it removes that script.
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e 'cli[test]'
	touch $(STAMP)

# The page needs no build; npm only brings the tools that check it (eslint, and axe-core
# for the browser tests), exactly as package-lock.json pins them.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

ml_worker/artifacts/%/1/model_card.json: $(STAMP) $(addprefix ml_worker/src/ml_worker/,build.py network.py weights.py pth_reader.py labels.py)
	$(PY) -m ml_worker.build --force --model $*

# An int8 variant is quantised from its float model's build (the stem is shorter, so this rule wins).
ml_worker/artifacts/%_int8/1/model_card.json: ml_worker/artifacts/%/1/model_card.json \
		$(addprefix ml_worker/src/ml_worker/,quantise.py calibration.py)
	$(PY) -m ml_worker.build --force --model $*_int8

artifacts: $(ARTIFACTS)

up: setup
	@$(PY) scripts/stack.py up

down:
	@$(PY) scripts/stack.py down

status:
	@$(PY) scripts/stack.py status

lint: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# ruff format decides the layout (#11): no markers that switch it off
	@if git grep -n -e '# fmt: skip' -e '# fmt: off' -- '*.py'; then echo "remove the fmt markers above"; exit 1; fi
	node_modules/.bin/eslint frontend eslint.config.js

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup lint test-js  # lint and test-js install the npm packages
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	docker-compose -f docker-compose.yml config -q
	$(PY) scripts/audit.py --report-only  # a vulnerability published later must not fail the suite by itself

# Network namespaces as hosts (root only; skipped with the reason otherwise). `make test` runs it too.
test-multihost: setup
	$(VENV)/bin/pytest deploy/multihost $(PYTEST_ARGS)

# The tier to run after every change: the API in-process on a real Redis with the real worker
# code and model on threads; no nginx, no gunicorn, no browser, no fault or fuzz runs.
test-fast: setup test-js
	$(VENV)/bin/pytest -m "not stack and not nginx and not e2e and not slow" $(PYTEST_ARGS)

# Builds the compose stack's images (Docker's engine and the Debian base made when missing),
# runs the stack on 127.0.0.1:$${COMPOSE_TEST_PORT:-18080}, tests it through nginx, tears it down.
# PYTHONPATH: the checks draw their training images with loadtest/shapes.py.
test-compose: setup
	PYTHONPATH=. $(PY) scripts/compose_test.py

# What needs no process at all (the Dockerfiles' test stages run the same selection).
test-unit: setup test-js
	$(VENV)/bin/pytest -m "not integration and not e2e" $(PYTEST_ARGS)

# Unit tests of the page's pure functions (label search, Retry-After, pre-checks, CSV), node's own runner.
test-js: $(NODE_STAMP)
	node --test frontend/tests/

# docs/screenshot.png for the README: the page with finished results, from a real stack and Chromium.
screenshot: setup
	SCREENSHOT=docs/screenshot.png $(VENV)/bin/pytest -q e2e/test_ui_page.py -k screenshot

audit: $(STAMP)
	@# Fails on a fixable vulnerability, or on packages that could not be audited at all.
	$(PY) scripts/audit.py

bench-model: setup
	$(PY) -m loadtest.bench_model

bench: setup
	$(PY) -m loadtest.bench

bench-train: setup
	$(PY) loadtest/bench_training.py

loadtest: setup
	$(PY) -m loadtest.run_locust

export-feedback: $(STAMP)
	@REDIS_URL=$${REDIS_URL:-$$($(PY) scripts/stack.py redis-url)} $(PY) -m api.export_feedback --out $${OUT:--}

add-feedback: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make add-feedback NAME=<custom model>"; exit 2; }
	$(VENV)/bin/imgclf add-feedback $(NAME) --url $${IMGCLF_URL:-http://127.0.0.1:$(PORT)}

clean: down
	rm -rf .run .test-run ml_worker/artifacts loadtest/results node_modules
