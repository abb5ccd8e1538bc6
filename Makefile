# The two commands: `make app` and `make test`. Both set up what they need first (idempotent).
# `make demo` also computes ahead everything the dashboard reads (genclf prepare; resumable), then opens it.
PY := .venv/bin/python
PORT ?= 8501

.PHONY: setup setup-test app demo test lint format results bench clean-cache

setup:
	@scripts/setup.sh app

setup-test:
	@scripts/setup.sh test

app: setup
	$(PY) app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

demo: setup
	$(PY) -m genclf prepare --dataset fashion-mnist
	$(PY) app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: setup-test lint
	$(PY) -m pytest

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

results: setup
	OMP_NUM_THREADS=1 $(PY) -m genclf report --dataset fashion-mnist --head logreg,knn,labelprop --no-cnn --seeds 20 --seeds-large 5

bench: setup
	$(PY) bench/throughput.py
	$(PY) bench/features_quality.py
	$(PY) bench/heads.py
	$(PY) bench/dashboard.py

clean-cache:
	$(PY) -m genclf cache clear --yes
