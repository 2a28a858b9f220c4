# Two commands matter: `make up` runs the product, `make test` runs every test suite.
# Both install what they need first (system packages, the virtualenv, the model).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
BUILT_MODELS ?= efficientnet_lite0 efficientnet_lite2  # add efficientnet_lite1 to build it too
ARTIFACTS := $(foreach model,$(BUILT_MODELS),ml_worker/artifacts/$(model)/1/model_card.json)
SYSTEM_PACKAGES := redis-server nginx chromium docker-compose
PYTEST_ARGS ?=
PORT ?= 8080
STACK_REDIS_URL = redis://127.0.0.1:$(shell echo $$(( $(PORT) + 2 )))/0

.PHONY: setup system-deps artifacts up down status test test-unit test-integration test-e2e \
        lint format audit bench bench-model bench-train loadtest export-feedback add-feedback clean

setup: system-deps $(STAMP) $(ARTIFACTS)

system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v nginx >/dev/null || missing="$$missing nginx"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
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

ml_worker/artifacts/%/1/model_card.json: $(STAMP) $(addprefix ml_worker/src/ml_worker/,build.py network.py weights.py pth_reader.py labels.py)
	$(PY) -m ml_worker.build --force --model $*

artifacts: $(ARTIFACTS)

up: setup
	@$(PY) scripts/stack.py up

down:
	@$(PY) scripts/stack.py down

status:
	@$(PY) scripts/stack.py status

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	docker-compose -f docker-compose.yml config -q
	$(PY) scripts/audit.py --report-only  # a vulnerability published later must not fail the suite by itself

test-unit: setup
	$(VENV)/bin/pytest -m "not integration and not e2e" $(PYTEST_ARGS)

audit: $(STAMP)
	@# Fails on a fixable vulnerability, or on packages that could not be audited at all.
	$(PY) scripts/audit.py

bench-model: setup
	$(PY) -m ml_worker.benchmark

bench: setup
	$(PY) loadtest/bench.py

bench-train: setup
	$(PY) loadtest/bench_training.py

loadtest: setup
	$(PY) loadtest/run_locust.py

export-feedback: $(STAMP)
	@REDIS_URL=$${REDIS_URL:-$(STACK_REDIS_URL)} $(PY) -m api.export_feedback --out $${OUT:--}

add-feedback: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make add-feedback NAME=<custom model>"; exit 2; }
	$(VENV)/bin/imgclf add-feedback $(NAME) --url $${IMGCLF_URL:-http://127.0.0.1:$(PORT)}

clean: down
	rm -rf .run .test-run ml_worker/artifacts loadtest/results
