# mmplugins -- the two commands of the README: `make demo` and `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.mmplugins-installed
DEMO_DATA ?= data/samsung_demo
DEMO_CONFIG ?= configs/mic_dual_aug.py
DEMO_ITERS ?= 100
# the demo trains from scratch: warm-up 1/8 of the run, poly decay to 0 at its
# end, lr 6e-4 (as bench/uda_ablation.py; the config's 6e-5 is SegFormer's
# fine-tuning lr for ImageNet weights). Both schedulers start at 0 and are
# multiplied, as mmcv's poly policy with warm-up; mmengine's `end` is one past
# the last step (see configs/_base_/schedules/schedule_2k.py), hence the +1.
DEMO_WARMUP ?= $(shell expr $(DEMO_ITERS) / 8 \| 1)
DEMO_WARMUP_END := $(shell expr $(DEMO_WARMUP) + 1)
DEMO_POLY_END := $(shell expr $(DEMO_ITERS) + 1)
DEMO_LR ?= 6e-4
PYTEST_ARGS ?=

.PHONY: install demo demo-data test test-fast bench report info list clean

install: $(STAMP)

$(STAMP): requirements/build.txt requirements/runtime.txt requirements/tests.txt requirements/optional.txt pyproject.toml
	bash tools/install/install.sh $(VENV)

demo-data: $(DEMO_DATA)/train_source.csv

$(DEMO_DATA)/train_source.csv: $(STAMP)
	$(PY) tools/make_demo_data.py --out $(DEMO_DATA)

demo: demo-data
	$(PY) tools/train.py $(DEMO_CONFIG) --cfg-options train_cfg.max_iters=$(DEMO_ITERS) \
		train_cfg.val_interval=$(DEMO_ITERS) default_hooks.checkpoint.interval=$(DEMO_ITERS) \
		default_hooks.logger.interval=10 model.vis_interval=25 \
		param_scheduler.0.end=$(DEMO_WARMUP_END) param_scheduler.1.begin=0 \
		param_scheduler.1.end=$(DEMO_POLY_END) optim_wrapper.optimizer.lr=$(DEMO_LR)
	@echo "TensorBoard: $(VENV)/bin/tensorboard --logdir work_dirs/"

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
