# mmplugins -- the two commands of the README: `make demo` and `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.mmplugins-installed
DEMO_DATA ?= data/samsung_demo
DEMO_CONFIG ?= configs/mic_dual_aug.py
DEMO_ITERS ?= 100
PYTEST_ARGS ?=

.PHONY: install demo demo-data test test-fast bench info list clean

install: $(STAMP)

$(STAMP): requirements/build.txt requirements/runtime.txt requirements/tests.txt requirements/optional.txt pyproject.toml
	bash tools/install/install.sh $(VENV)

demo-data: $(DEMO_DATA)/train_source.csv

$(DEMO_DATA)/train_source.csv: $(STAMP)
	$(PY) tools/make_demo_data.py --out $(DEMO_DATA)

demo: demo-data
	$(PY) tools/train.py $(DEMO_CONFIG) --cfg-options train_cfg.max_iters=$(DEMO_ITERS) \
		train_cfg.val_interval=$(DEMO_ITERS) default_hooks.checkpoint.interval=$(DEMO_ITERS) \
		default_hooks.logger.interval=10 model.vis_interval=25
	@echo "TensorBoard: $(VENV)/bin/tensorboard --logdir work_dirs/"

test: $(STAMP)
	$(PY) -m pytest -q -ra $(PYTEST_ARGS) tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

bench: $(STAMP)
	$(PY) bench/run_all.py

info: $(STAMP)
	$(PY) -m mmplugins.info

list: $(STAMP)
	$(PY) -m mmplugins.list

clean:
	rm -rf work_dirs .pytest_cache
