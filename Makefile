# Two commands do all the set-up: `make train` (the default offline run) and `make test` (the test suite).
# Both create .venv with the package installed (editable, so conf/ is found) when it is missing or stale.
# On a machine without a GPU, add TORCH=cpu (`make test TORCH=cpu`) to the first command: torch and torchvision then
# come from PyTorch's CPU index (a CPU build of a few hundred MB instead of the CUDA build's several GB). To switch
# an existing .venv, `make clean-venv` first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= default
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: train test clean-venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	if [ "$(TORCH)" = cpu ]; then $(BIN)/python -m pip install --quiet --index-url $(TORCH_CPU_INDEX) \
		'torch>=2.5,<2.15' 'torchvision>=0.20,<0.30'; fi
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

train: $(BIN)/.installed
	$(BIN)/python -m gan_lightning.train $(ARGS)

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
