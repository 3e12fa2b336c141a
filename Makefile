# ganscope: `make demo` sets everything up and trains the E1 baseline; `make test` runs the suite.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Elsewhere than this project's machines, point pip at the PyTorch CPU wheel index to avoid the
# multi-GB CUDA build: make demo TORCH_INDEX=<url of the CPU wheel index>
TORCH_INDEX ?=
FMNIST_DEB := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# pytest-xdist workers for `make test`, one test file per worker at a time (module fixtures
# are built once). Measured on 2 cores: 405 s with 2 workers against 496 s in one process.
TEST_WORKERS ?= 2
DEMO_RUN := e1-demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: demo test setup system data browser lint bench clean

demo: setup data
	$(BIN)/ganscope train e1-mlp --name $(DEMO_RUN) --eval-every 1
	$(BIN)/ganscope generate $(DEMO_RUN) --seed 23231 -n 8 --out runs/$(DEMO_RUN)/figures/e3-seed23231.png
	@echo
	$(BIN)/ganscope compare $(DEMO_RUN)
	@echo
	@echo "E1 demo done. Run directory: runs/$(DEMO_RUN)"
	@echo "  curves:       runs/$(DEMO_RUN)/figures/losses.png, d_outputs.png"
	@echo "  metrics:      runs/$(DEMO_RUN)/metrics.jsonl, figures/metrics.png (FID, KID, PRDC, classes per epoch)"
	@echo "  sample grids: runs/$(DEMO_RUN)/samples/epoch-0001.png ... epoch-0010.png"
	@echo "  E3 grid:      runs/$(DEMO_RUN)/figures/e3-seed23231.png (torch.manual_seed(23231), 8 images)"

# The Python side (pip) and the Debian side (apt) install at the same time: on a fresh machine
# each takes a minute or so, and CI is timed. The suite writes bytecode even where the
# environment says not to (PYTHONDONTWRITEBYTECODE=1, as on this project's machines): else each
# of its ~100 Python processes compiles ganscope again (~0.5 s each) and each worker re-rewrites
# every test module's asserts (collection 20 s -> 14 s per worker). --no-loadscope-reorder:
# files go out in the order tests/conftest.py gives them (long ones first), not by test count.
test:
	$(MAKE) --no-print-directory -j2 --output-sync=target setup system
	$(MAKE) --no-print-directory data browser
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/lint-imports
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

setup: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch, the package with every extra and the test tools, and pytorch-fid (the tests'
	# independent FID reference) without its torchvision: with uv, given pip's own settings
	# (57 s on a fresh machine against pip's 151 s; 26 s since it compiles only what commands
	# import, against 48 s, both with uv's cache warm), or with pip when uv fails
	$(BIN)/python tools/install_deps.py $(BIN)/python $(if $(TORCH_INDEX),--torch-index $(TORCH_INDEX),)
	touch $@

# What the suite needs from Debian (Fashion-MNIST, Chromium), in ONE apt-get: two at once would
# wait on each other's dpkg lock. Nothing to do when both are there, or when not root (then
# `data` and `browser` below say what happens instead).
APT_PKGS = $(if $(wildcard $(FMNIST_DEB)),,dataset-fashion-mnist) $(if $(wildcard /usr/bin/chromium),,chromium chromium-driver)
system:
	@if [ -n "$(strip $(APT_PKGS))" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); \
	fi

# Fashion-MNIST from Debian when we are root; otherwise ganscope downloads it on first use
# (official files, MD5-checked) into the user cache, or reads --data-dir / $$GANSCOPE_DATA.
data:
	@if [ -f $(FMNIST_DEB) ]; then \
		echo "Fashion-MNIST: $(dir $(FMNIST_DEB))"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else \
		echo "Fashion-MNIST: not root, so no Debian package; ganscope downloads it on first use"; \
	fi

# Debian's Chromium for the browser tests (Playwright drives it; nothing is downloaded at test
# time). Without it, and not root, the browser tests skip and say so.
browser:
	@if [ -x /usr/bin/chromium ]; then \
		echo "Chromium: /usr/bin/chromium"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
		echo "Chromium: not root, so no Debian package; the browser tests skip"; \
	fi

lint: setup
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/lint-imports

bench: setup data
	$(BIN)/python benchmarks/train_speed.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
