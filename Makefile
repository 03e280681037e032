# kandinsky-lab: the commands the README documents.
#   make lab    - create .venv if missing (only what the lab needs), open JupyterLab on notebooks/ (offline model on CPU)
#   make test   - create .venv if missing and add the tests' packages, run the whole test suite (unit tests + notebooks)
#   make app    - create .venv if missing, serve the playground as a web app with Voila (app/playground.ipynb);
#                 SERVER=http://host:port (and SERVER_TOKEN=…) makes every page a thin client of a room's server
#   make serve  - create .venv if missing, serve one copy of the model to the room (kandinsky_lab/serve/, Ray Serve)
#   make bench  - create .venv if missing, write benchmarks/results.md
#   make test-lowest - the unit tests and a notebook on the lowest versions pyproject.toml declares (.venv-lowest)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0: a CPU wheel on the project's machines, the default (CUDA) build from PyPI elsewhere.
TORCH ?= torch==2.13.0
LAB_PORT ?= 8888
APP_PORT ?= 8866
# the app listens on this address only; 0.0.0.0 serves a room (Voila has no login: a trusted network only)
APP_IP ?= 127.0.0.1
# a closed page's kernel (and its model copy) is shut down after this many idle seconds
APP_CULL_S ?= 600
# how long Voila waits for a cell's late outputs (the panels) while many visitors' kernels load at once;
# at its default, 4 s, a room opening the app together on a small machine got pages without panels
APP_IOPUB_S ?= 120
# make serve: where it listens (0.0.0.0 serves a room), the room code (default: a random one), the model
SERVE_IP ?= 127.0.0.1
SERVE_PORT ?= 8000
SERVE_TOKEN ?=
SERVE_SOURCE ?=
SERVE_ARGS ?=
# make app SERVER=http://host:port: the app's kernels become clients of that room's server
SERVER ?=
SERVER_TOKEN ?=

.PHONY: env lab-env lab app serve test test-lowest bench
# Two set-ups: what `make lab` and `make app` need (torch and the kit's own packages: .lab-ready), and on top of it
# what the tests need (the test and serve extras, Colab's ipywidgets: .ready). uv installs both (pip puts uv into
# the venv): it fetches in parallel, and a newcomer's set-up took a third of the time. uv reads none of pip's
# configuration: the folders pip finds wheels in on this machine (PIP_FIND_LINKS: its torch) are handed on.
UV := $(VENV)/bin/uv
FIND_LINKS ?= $(PIP_FIND_LINKS)
UV_INSTALL = $(UV) pip install --quiet --python $(PY) $(foreach f,$(FIND_LINKS),--find-links $(f))
env: $(VENV)/.ready
lab-env: $(VENV)/.lab-ready

$(VENV)/.lab-ready: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.5"
	$(UV_INSTALL) "$(TORCH)" -e .
	touch $@

$(VENV)/.ready: $(VENV)/.lab-ready
	$(UV_INSTALL) "$(TORCH)" -e ".[test,serve]"
	# Colab's ipywidgets 7.7, beside the venv's 8.x: the widget tests run against both.
	$(UV_INSTALL) --no-deps --target $(VENV)/ipywidgets7 "ipywidgets==7.7.5" "ipython_genutils==0.2.0"
	touch $@

lab: lab-env
	bash scripts/lab.sh $(PY) $(LAB_PORT)

app: lab-env
	cd app && $(if $(SERVER),KANDINSKY_LAB_SOURCE=$(SERVER) KANDINSKY_LAB_TOKEN=$(SERVER_TOKEN)) JUPYTER_PATH=$(CURDIR)/app ../$(PY) -m voila playground.ipynb --template=kandinsky-lab \
		--MappingKernelManager.cull_idle_timeout=$(APP_CULL_S) --MappingKernelManager.cull_interval=60 \
		--VoilaExecutor.iopub_timeout=$(APP_IOPUB_S) \
		--Voila.ip=$(APP_IP) --port=$(APP_PORT) $(if $(LAB_NO_BROWSER),--no-browser)

serve: env
	$(PY) -m kandinsky_lab.serve --ip $(SERVE_IP) --port $(SERVE_PORT) $(if $(SERVE_TOKEN),--token $(SERVE_TOKEN)) \
		$(if $(SERVE_SOURCE),--source $(SERVE_SOURCE)) $(SERVE_ARGS)

test: env
	$(PY) -m pytest --nbval-lax -p no:cacheprovider --durations=30

test-lowest: env
	$(PY) scripts/lowest_versions.py --venv .venv-lowest

bench: env
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.notebooks --solutions
	$(PY) -m benchmarks.visitors
	$(PY) -m benchmarks.room
	$(PY) -m benchmarks.nano
	$(PY) -m benchmarks.inpaint
	$(PY) -m benchmarks.controlnet
	$(PY) -m benchmarks.batch
	$(PY) -m benchmarks.panel
	$(PY) -m benchmarks.finetune
	$(PY) -m benchmarks.finetune_ceiling
	$(PY) -m benchmarks.samplers
	$(PY) -m benchmarks.real_scale
	$(PY) -m benchmarks.gpu
