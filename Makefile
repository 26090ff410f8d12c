# `make run` starts the dashboard, `make test` runs every test; both set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# Loopback only, as TensorBoard and Jupyter do: whoever reaches the port can train and upload.
# `HOST=0.0.0.0 make run` shares the dashboard on the network.
HOST ?= 127.0.0.1
# The server answers only the names it is reached by (no DNS rebinding): loopback, HOST, and for
# HOST=0.0.0.0 this machine's names and addresses (scripts/serve_flags.py); ALLOWED_HOSTS adds more.
ALLOWED_HOSTS ?=
export ALLOWED_HOSTS
STAMP := $(VENV)/.installed
# The tests' extras and optional modes (Ray for RAY_ADDRESS runs): `make test` installs them, `make run` not.
TEST_STAMP := $(VENV)/.installed-test
# Debian packages the target needs (scripts/system_deps.py installs what is missing).
NEEDS := dataset

.PHONY: run test lint data system bench gpu-check clean

run: NEEDS := dataset
test: NEEDS := dataset chromium

system:
	$(PYTHON) -m scripts.system_deps $(NEEDS)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -r requirements-test.txt
	touch $@

data: system $(STAMP)
	$(PY) -m core data prepare

# RAY_ADDRESS (runs on a Ray cluster, README "More than one process or machine") needs Ray installed too.
run: system $(if $(RAY_ADDRESS),$(TEST_STAMP),$(STAMP)) data
	@case "$(HOST)" in 127.*|localhost|::1) ;; *) echo "Sharing the dashboard on the network ($(HOST):$(PORT)): anyone who can reach this port can start training and upload files.";; esac
	$(PY) -m streamlit run serve.py --server.address $(HOST) --server.port $(PORT) $$($(PY) -m scripts.serve_flags $(HOST))

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

test: system $(TEST_STAMP) data lint
	$(PY) -m pytest

bench: $(TEST_STAMP) data
	$(PY) -m bench.speed
	$(PY) -m bench.accuracy
	$(PY) -m bench.ui_speed
	$(PY) -m bench.load --client-cpus 1
	$(PY) -m bench.attribution
	$(PY) -m bench.export
	$(PY) -m bench.learn_pages
	$(PY) -m bench.race
	$(PY) -m bench.distributed
	$(PY) -m bench.ray

gpu-check: $(STAMP) data
	bash scripts/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
