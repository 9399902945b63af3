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

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
