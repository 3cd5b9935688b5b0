# The two commands: `make bench` and `make test`. Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Re-install when the project's dependency list changes.
STAMP := $(VENV)/.installed-stamp

.PHONY: bench test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .asv build dist *.egg-info
