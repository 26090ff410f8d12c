# `make run` starts the dashboard, `make test` runs every test; both set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
STAMP := $(VENV)/.installed

.PHONY: run test lint data bench gpu-check clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

data: $(STAMP)
	$(PY) -m core data prepare

run: $(STAMP) data
	$(PY) -m streamlit run app.py --server.port $(PORT)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(STAMP) data lint
	$(PY) -m pytest

bench: $(STAMP) data
	$(PY) -m bench.speed
	$(PY) -m bench.accuracy
	$(PY) -m bench.ui_speed
	$(PY) -m bench.load --client-cpus 1

gpu-check: $(STAMP) data
	bash scripts/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
