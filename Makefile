# The two commands of the README: `make lab` and `make test`. Both set up .venv first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lthkit-setup-done

.PHONY: lab dashboard test setup data test-unit test-notebooks test-browser bench clean-cache

setup: $(STAMP) data

# Re-run the install whenever the requirements or the install script change.
$(STAMP): requirements.txt pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)
	touch $@

data: $(STAMP)
	bash scripts/get_mnist.sh $(PY)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

# The Explore dashboard alone, as a web page (Voilà): python -m lthkit dashboard prints its URL.
dashboard: setup
	$(PY) -m lthkit dashboard

test: setup
	bash scripts/run_tests.sh

test-unit: setup
	bash scripts/run_tests.sh unit

test-notebooks: setup
	bash scripts/run_tests.sh notebooks

test-browser: setup
	bash scripts/run_tests.sh browser

# Training speed against a DataLoader pipeline and the FLOP bound, then batched runs (benchmarks/README.md).
bench: setup
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/batched_runs.py

clean-cache:
	rm -rf cache
