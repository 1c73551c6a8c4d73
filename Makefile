# appcoup: `make lab` to learn, `make test` to check everything works here.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUNTIME ?= local
PYTEST_ARGS ?=

.PHONY: lab test course bench clean notebooks venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "appcoup needs Python >= 3.10"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## lab: install into .venv and open JupyterLab on the course
lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/00-setup.ipynb

## test: install into .venv and run every test (runtimes missing here are skipped and listed)
test: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## course: run every notebook headless with papermill into build/course/<runtime>
course: $(STAMP)
	APPCOUP_PROGRESS=0 $(VENV)/bin/appcoup course --runtime $(RUNTIME) --out build/course

## bench: measure the speed targets; writes build/bench.json
bench: $(STAMP)
	$(PY) benchmarks/bench.py

## notebooks: regenerate the .ipynb files from their py:percent twins (outputs stay out)
notebooks: $(STAMP)
	$(VENV)/bin/jupytext --to ipynb --update notebooks/[0-9][0-9]-*.py

## clean: remove everything appcoup started, on every runtime
clean: $(STAMP)
	$(VENV)/bin/appcoup clean
