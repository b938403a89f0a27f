# Two commands do all the set-up: `make train` (the default offline run) and `make test` (the test suite).
# Both create .venv with the package installed (editable, so conf/ is found) when it is missing or stale.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: train test clean-venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

train: $(BIN)/.installed
	$(BIN)/python -m gan_lightning.train $(ARGS)

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
