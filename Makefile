# Every target creates or updates the virtualenv itself: on a fresh clone one
# command is all the set-up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-bot load load-replicas chaos misses-roundtrip eval eval-ingest fit kb clean

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

# Real corpus (train and test sides, when tests/data/real/ is there) and the team-written set.
eval: kb
	$(BIN)/python -m kb.evaluate

# Refit the matcher's weights, calibration and threshold on the train side; writes kb/params.json.
fit: kb
	$(BIN)/python -m kb.fit

# Article ingest: recall and wrong attachments per fixture (and on ../shared/seeds when present).
SEEDS ?= $(firstword $(wildcard ../shared/seeds ../../shared/seeds))
eval-ingest: $(STAMP)
	$(BIN)/python -m ingest.evaluate tests/data/articles
	@if [ -n "$(SEEDS)" ]; then $(BIN)/python -m ingest.evaluate $(SEEDS) --expected tests/data/seed-families.json; fi

bench: $(STAMP)
	$(BIN)/python -m bench.matcher

bench-bot: kb
	$(BIN)/python bench/bot_latency.py

load: kb
	$(BIN)/python bench/load.py

# Three HTTP-mode bots sharing one PostgreSQL (a throw-away local cluster), then one SQLite file, then
# PostgreSQL restarted mid-run; needs the PostgreSQL server binaries (postgresql-15).
load-replicas: kb
	$(BIN)/python bench/load_replicas.py

# Issue 17's closing figure: a real abstained paste labelled in App Home, approved, rebuilt, answered; then every
# abstained TRAIN paste the same way, with the effect on the TEST side.
misses-roundtrip: $(STAMP)
	$(BIN)/python bench/misses_roundtrip.py

chaos: kb
	$(BIN)/python bench/chaos.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
