# twinbench: `make run` sets up .venv and runs the quick suite; `make test` runs the tests.
# `make setup-runtimes`: the JavaScript, Java and C++ harnesses of `twinbench export`
# (runtimes/); optional: without it those runtimes are `skipped`.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.twinbench-installed

.PHONY: setup run test clean setup-runtimes

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

setup-runtimes: setup
	runtimes/setup.sh $(abspath $(PY))

run: setup
	$(VENV)/bin/twinbench run $(ARGS)

# Two workers (one per core of the 2-core machine; at most 4): most tests wait on the
# measurement processes they spawn, so one core alone sits half idle. --dist loadfile keeps
# each file on one worker, so a file's shared fixtures (the parity run, the Ray cluster)
# are built once.
XDIST  ?= -n auto --maxprocesses=4 --dist loadfile

test: setup
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
