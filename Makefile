# The two commands: `make bench` and `make test` (`make test-fast` for the edit-test loop: the
# tests not marked slow, about a minute). Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ASV := $(VENV)/bin/asv
# The meter's own distribution (standard library only), a dependency of harness that is not
# on PyPI: installed from this repository in the same pip call, editable like harness.
METER := plugins/asv_bench_harness
# Re-install when the project's or the meter's dependency list changes.
STAMP := $(VENV)/.installed-stamp
# Benchmark profile for `make bench`: ci (seconds), default (~5 min), full (hours, GBs).
HARNESS_PROFILE ?= default
export HARNESS_PROFILE

.PHONY: bench test test-fast lint publish install clean

install: $(STAMP)

$(STAMP): pyproject.toml $(METER)/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e $(METER) -e '.[test]'
	touch $@

# Runs the asv suite on the current commit in this venv (asv --python=same), then prints the
# summary table. --record-samples keeps the timing samples that asv's significance test
# (compare, gate) needs; without them asv falls back to confidence intervals.
# Results: results/<machine>/; `make publish` turns them into results/html.
bench: $(STAMP)
	@git diff --quiet HEAD -- harness benchmarks || echo "warning: harness/ or benchmarks/ differ from HEAD; results are stored under HEAD's hash"
	$(ASV) machine --yes
	$(ASV) run --python=same --set-commit-hash "$$(git rev-parse HEAD)" --show-stderr --record-samples
	$(PY) -m harness summary results --commit "$$(git rev-parse HEAD)"

# asv's site (with an offline UI) and the HTML report, from the results `make bench` left.
publish: $(STAMP)
	$(PY) -m harness publish

# Every test, the slow ones included (an end-to-end asv run of the ci profile among them).
test: $(STAMP)
	$(PY) -m pytest

# The tests not marked @pytest.mark.slow: about a minute on a 2-core machine.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# ruff's default rules over the whole repository (settings in pyproject.toml); .ci/run runs it.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .asv build dist *.egg-info $(METER)/*.egg-info $(METER)/build
