# The two commands of the README: `make lab` and `make test`. Both set up .venv first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lthkit-setup-done

.PHONY: lab dashboard test setup data mywork test-unit test-notebooks test-browser bench clean-cache

setup: $(STAMP) data

# Re-run the install whenever the requirements or the install script change.
$(STAMP): requirements.txt pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)
	touch $@

data: $(STAMP)
	bash scripts/get_mnist.sh $(PY)

# A learner's own copy of the exercises in notebooks/mywork/: inside JupyterLab's root (make lab opens
# notebooks/), git-ignored, and never overwritten (a notebook already there is yours and is kept).
mywork:
	@mkdir -p notebooks/mywork
	@for source in notebooks/exercises/*.ipynb; do \
	  target=notebooks/mywork/$$(basename "$$source"); \
	  if [ -e "$$target" ]; then echo "kept $$target (yours)"; else cp "$$source" "$$target"; echo "copied $$target"; fi; \
	done
	@echo "make lab, then open mywork/ in JupyterLab's file browser"

lab: setup
	$(VENV)/bin/jupyter lab notebooks/ --config=scripts/jupyter_lab_config.py $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

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

# Every benchmark in full (benchmarks/README.md; tens of minutes, on a quiet machine): training speed against
# a DataLoader pipeline and the FLOP bound, batched runs, the fast path, start-up, the Dask nanny's malloc
# setting, sweeps, a class of 200 hand-ins graded, and the paper protocol where there is a GPU (on a CPU it
# would take days). `make test` runs each of them with --smoke instead (tests/test_benchmarks.py), so that
# none of them rots.
bench: setup
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/batched_runs.py
	$(PY) benchmarks/fastpath.py
	$(PY) benchmarks/startup.py
	$(PY) benchmarks/worker_malloc.py
	$(PY) benchmarks/sweep.py
	$(PY) benchmarks/grade_class.py --workers 2
	$(PY) benchmarks/sparsity_speed.py
	@if $(PY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
	  echo "$(PY) benchmarks/paper_protocol.py --device cuda"; $(PY) benchmarks/paper_protocol.py --device cuda; \
	else echo "benchmarks/paper_protocol.py: skipped, no CUDA device (it measures the GPU goal)"; fi

clean-cache:
	rm -rf cache
