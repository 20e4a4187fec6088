# Every target creates or updates the virtualenv itself: on a fresh clone one
# command is all the set-up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-bot load chaos eval kb clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

kb: $(STAMP)
	$(BIN)/gemini-kb ingest

run: kb
	$(BIN)/gemini-kb serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

eval: $(STAMP)
	$(BIN)/python -m kb.evaluate tests/data/pastes.jsonl

bench: $(STAMP)
	$(BIN)/python -m kb.bench

bench-bot: kb
	$(BIN)/python bench/bot_latency.py

load: kb
	$(BIN)/python bench/load.py

chaos: kb
	$(BIN)/python bench/chaos.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
