# mmplugins -- the two commands of the README: `make demo` and `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.mmplugins-installed
DEMO_DATA ?= data/samsung_demo
DEMO_CONFIG ?= configs/mic_dual_aug.py
# the demo: a source-only warm start (the stand-in for the ImageNet weights
# every real run starts from; trained once, then reused) and DEMO_ITERS
# iterations of DEMO_CONFIG from it; see tools/demo.py
DEMO_WARM_ITERS ?= 600
DEMO_ITERS ?= 150
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install demo demo-data test test-fast bench report info list clean

install: $(STAMP)

$(STAMP): requirements/build.txt requirements/runtime.txt requirements/tests.txt requirements/optional.txt requirements/optional-nodeps.txt pyproject.toml \
		tools/install/install.sh tools/install/install_mmyolo.sh tools/install/repack_mmyolo.py
	bash tools/install/install.sh $(VENV)

demo-data: $(DEMO_DATA)/train_source.csv

$(DEMO_DATA)/train_source.csv: $(STAMP)
	$(PY) tools/make_demo_data.py --out $(DEMO_DATA)

demo: demo-data
	$(PY) tools/demo.py --config $(DEMO_CONFIG) --warm-iters $(DEMO_WARM_ITERS) \
		--iters $(DEMO_ITERS) --work-dir work_dirs/demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -ra $(PYTEST_ARGS) tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

bench: $(STAMP)
	$(PY) bench/run_all.py

report: $(STAMP)
	$(PY) bench/report.py

info: $(STAMP)
	$(PY) -m mmplugins.info

list: $(STAMP)
	$(PY) -m mmplugins.list

clean:
	rm -rf work_dirs .pytest_cache
