# Two commands (see README):  make demo   |   make test
# Each creates .venv and installs the project on first use (and again when pyproject.toml changes).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: demo test bench chaos clean ui-shots

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mm demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Every bench with its defaults (each ≤ ~2-3 min, all ≤ 20 min); BENCH_ARGS_<name> shortens one
# whose default is the issue's full run (account_budget: 10 workers × 5 min → 1 min here).
export BENCH_ARGS_account_budget ?= --minutes 1

bench: $(STAMP)
	@start=$$(date +%s); for b in bench/*.py; do [ "$$b" = bench/benchkit.py ] && continue; \
		n=$$(basename $$b .py); eval "args=\$${BENCH_ARGS_$$n:-}"; t=$$(date +%s); \
		echo "== $$b $$args"; $(BIN)/python $$b $$args || exit 1; \
		echo "== $$b: $$(( $$(date +%s) - t )) s"; done; \
		echo "== make bench: $$(( $$(date +%s) - start )) s in all"

# The reliability suite (issue 12) at full size: one line per guarantee with its figure, non-zero
# exit when one fails. CHAOS_ARGS="--scale ci" runs the CI subset, "-g 5" one guarantee.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.run $(CHAOS_ARGS)

# Screenshots of the Prefect UI in headless Chromium after a short demo (not part of `make test`):
# PNGs in <data dir>/ui-shots/. Installs Debian's chromium + chromium-driver (apt-get) when missing
# and selenium into the venv only (not a project dependency). UI_SHOTS_ARGS="--games 1 --minutes 3".
SUDO := $(shell test "$$(id -u)" -eq 0 || echo sudo)

ui-shots: $(STAMP)
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { $(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }
	@$(BIN)/python -c 'import selenium' 2>/dev/null || $(BIN)/python -m pip install --quiet selenium
	$(BIN)/python tools/ui_shots.py $(UI_SHOTS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
