# appcoup: `make lab` to learn, `make test` to check everything works here.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUNTIME ?= local
PYTEST_ARGS ?=

.PHONY: lab test course bench clean notebooks venv binder-lock

venv: $(STAMP)

$(STAMP): pyproject.toml $(wildcard jupyter-config/*/*.json)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "appcoup needs Python >= 3.10"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	@# the course's JupyterLab settings (no news pop-up): see jupyter-config/README.md
	mkdir -p $(VENV)/etc/jupyter && cp -r jupyter-config/labconfig jupyter-config/jupyter_server_config.d $(VENV)/etc/jupyter/
	@touch $(STAMP)

## lab: install into .venv and open JupyterLab on the course
LAB_ARGS ?=
lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks/00-setup.ipynb

## test: install into .venv and run every test (runtimes missing here are skipped and listed)
test: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## course: run every notebook headless with papermill into build/course/<runtime>
course: $(STAMP)
	APPCOUP_PROGRESS=0 $(VENV)/bin/appcoup course --runtime $(RUNTIME) --out build/course

## bench: measure the speed targets; writes build/bench.json
bench: $(STAMP)
	$(PY) benchmarks/bench.py

## notebooks: regenerate notebooks/NN-*.ipynb from their py:percent twins course-src/NN-*.py (outputs stay out)
notebooks: $(STAMP)
	for twin in course-src/[0-9][0-9]-*.py; do \
	  $(VENV)/bin/jupytext --quiet --update --to ipynb -o notebooks/$$(basename $${twin%.py}).ipynb $$twin || exit 1; \
	done

## clean: remove everything appcoup started, on every runtime
clean: $(STAMP)
	$(VENV)/bin/appcoup clean

## binder-lock: regenerate binder/requirements.txt, the exact versions Binder installs, from pyproject.toml
binder-lock:
	$(PYTHON) -m venv build/uv && build/uv/bin/pip install --quiet uv
	build/uv/bin/uv pip compile pyproject.toml --quiet --python-version $$(sed 's/^python-//' binder/runtime.txt) \
	  --custom-compile-command "make binder-lock" -o binder/requirements.txt
