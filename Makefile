# Two commands: `make run` (set up, then the whole default pipeline with `dvc repro`) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed

# The offline default never needs the Hugging Face Hub; `make run HF_HUB_OFFLINE=0` for hub models.
export HF_HUB_OFFLINE ?= 1
export PATH := $(BIN):$(PATH)
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup run test test-slow lint clean-runs

setup: $(STAMP)

# xstilts-venv-path.pth (read its comment) puts $(VENV)/bin first on PATH for every process the venv's Python
# starts, so `.venv/bin/mlflow run ...` and `.venv/bin/dvc repro` run the project's Python without activation.
$(STAMP): pyproject.toml xstilts-venv-path.pth
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,cluster]'
	cp xstilts-venv-path.pth "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/"
	touch $(STAMP)

# `make run PROFILE=full` switches params.yaml to profiles/full.yaml first (see `xstilts profile`).
# `make run CLUSTER=ray://head:10001` runs the stages over a Ray cluster with `xstilts fanout` (docs/cluster.md).
REPRO = $(if $(CLUSTER),$(BIN)/xstilts fanout --address $(CLUSTER),$(BIN)/dvc repro)

run: setup
	@if [ -n "$(PROFILE)" ]; then $(BIN)/xstilts profile $(PROFILE); fi
	@$(BIN)/xstilts pipeline   # dvc.yaml from params.yaml (a no-op when nothing in params.yaml changed)
	@$(BIN)/xstilts plan --save   # what will run, the time it should take here, what the design can detect
	@start=$$(date +%s); export XSTILTS_RUN_STARTED=$$start; \
	$(REPRO) && \
	$(BIN)/xstilts summary && \
	$(BIN)/xstilts champions && \
	echo "dvc status: $$($(BIN)/dvc status -q && echo clean || echo CHANGED)" && \
	echo "make run: pipeline took $$(( $$(date +%s) - start )) s (set-up not included)"

# `make test`: every test not marked slow; `make test-slow`: the slow ones (a Ray cluster on loopback, DVC end to
# end, the real encoder, verdict-rate simulations). CI runs both.
test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
