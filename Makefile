# The two set-up commands of the README. Both create .venv in the repository.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT := demo-output

.PHONY: demo test venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

# Core install only (no PyTorch), then the live pipeline on the shipped public-domain photo.
demo: venv
	$(BIN)/python -m pip install -q -e .
	$(BIN)/fer-edge run --source src/fer_edge/assets/astronaut.jpg --output $(DEMO_OUT)/astronaut.jpg --json $(DEMO_OUT)/astronaut.jsonl

# Everything (dev extras), then the whole suite.
test: venv
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
