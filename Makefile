# One-command set-up: `make demo` and `make test` create .venv when it is missing.
PYTHON ?= python3
# torch + torchvision that import together (see README, "Install"). PyPI's default wheels
# bring CUDA (several GB); on a machine without a GPU, PyTorch's CPU index is far smaller:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.14.1 torchvision==0.29.1
TORCH_INDEX ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.agbm-installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/agbm demo --out demo

# One pytest-xdist worker per core (each on one torch thread, tests/conftest.py); modules
# stay whole on a worker, so their fixtures are built once; the slowest tests are listed.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadscope --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) demo
