# Two commands on a fresh clone: `make demo` and `make test`.
# The CPU wheel torch==2.13.0 is installed first so nothing pulls a CUDA build.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.mege-installed
TORCH   ?= torch==2.13.0

.PHONY: install demo test bench mutate clean-venv

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev,launchers]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python experiments/demo/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python tools/bench/bench.py

# Mutation check (slow, not part of `make test`): named one-line bugs applied to a scratch copy of
# HEAD, each against the test files meant to catch it; writes tools/mutate/report.md.
mutate: $(STAMP)
	$(BIN)/python tools/mutate/mutate.py

clean-venv:
	rm -rf $(VENV)
