# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PORT is not set here: the app reads it from the environment or .env (default 8000).

.PHONY: run test lint format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# Serve on http://127.0.0.1:$PORT (8000 unless the environment or .env says otherwise) with
# the embedded defaults; the sample knowledge is ingested on first start (later starts skip
# unchanged files).
run: $(VENV)/.runtime
	$(VENV)/bin/flask --app app ingest knowledge/sample
	$(PY) app.py

test: $(VENV)/.dev
	$(PY) -m pytest -q

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Load and scale benchmarks (several minutes; not part of `make test`): each writes its
# section of docs/PERFORMANCE.md. PostgreSQL and FalkorDB are included when installed.
bench: $(VENV)/.dev
	$(PY) benchmarks/webhook_load.py
	$(PY) benchmarks/retrieval_scale.py
	$(PY) benchmarks/collections_scale.py
	$(PY) benchmarks/extractive_quality.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
