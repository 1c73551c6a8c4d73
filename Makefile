# appcoup: `make lab` to learn, `make test` to check everything works here.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUNTIME ?= local
PYTEST_ARGS ?=
# BUNDLE=path: install from a workshop bundle (`make bundle`) with no index, and load its images
BUNDLE ?=

.PHONY: lab test course bench clean notebooks venv binder-lock answers bundle

venv: $(STAMP)

$(STAMP): pyproject.toml $(wildcard jupyter-config/*/*.json) $(BUNDLE)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "appcoup needs Python >= 3.10"'
	$(PYTHON) -m venv $(VENV)
	$(if $(BUNDLE),$(PYTHON) appcoup_lib/bundle.py install $(BUNDLE) $(VENV) --editable .,$(PY) -m pip install --quiet -e '.[dev]')
	$(if $(BUNDLE),$(PY) appcoup_lib/bundle.py load $(BUNDLE))
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

## answers: the teacher's answer key, generated from the notebooks' solution cells; writes build/answer-key.md
answers: $(STAMP)
	$(VENV)/bin/appcoup answers --out build/answer-key.md

## bundle: one archive for a workshop with the network off (wheels, images, notebooks); writes build/appcoup-bundle.tar.gz
bundle: $(STAMP)
	$(PY) -m appcoup_lib.bundle make --out build/appcoup-bundle.tar.gz

## clean: remove everything appcoup started, on every runtime
clean: $(STAMP)
	$(VENV)/bin/appcoup clean

## binder-lock: regenerate binder/requirements.txt, the exact versions Binder installs, from pyproject.toml
binder-lock:
	$(PYTHON) -m venv build/uv && build/uv/bin/pip install --quiet uv
	build/uv/bin/uv pip compile pyproject.toml --quiet --python-version $$(sed 's/^python-//' binder/runtime.txt) \
	  --custom-compile-command "make binder-lock" -o binder/requirements.txt
