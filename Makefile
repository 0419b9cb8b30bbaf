# sipl — the two commands a user needs are `make demo` and `make test`; everything else
# (`setup`, `ingest`, `bench`) is reachable from them or documented in the README.
#
# Set-up is idempotent: a project-local virtual environment (.venv) with PyTorch 2.11.0 from
# PyPI provides libtorch for tch; the release binary bakes in an rpath to it.

SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
VENV_STAMP := $(VENV)/.sipl-$(shell sha256sum python/requirements.txt | cut -c1-16)
SIPL := $(CURDIR)/target/release/sipl
DATA ?= $(CURDIR)/../shared/data
WORK ?= $(CURDIR)/.work

# tch's build finds libtorch through the venv's torch (see ARCHITECTURE.md).
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1

.PHONY: setup venv build demo test test-rust test-data lint ingest bench-ingest clean

setup: build

venv: $(VENV_STAMP)

$(VENV_STAMP): python/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r python/requirements.txt
	@rm -f $(VENV)/.sipl-* && touch $@

build: venv
	cargo build --release --locked --bin sipl

# Tests run in the release profile: one profile means one build of arrow/parquet/libtorch glue.
test: build test-data
	cargo fmt --all --check
	SIPL_DATA=$(WORK)/data cargo test --release --locked --workspace
	@echo "make test: all tests passed"

# Real images for the acceptance tests, unpacked once from ../shared/data when it is there.
test-data:
	@mkdir -p $(WORK)/data
	@for t in tiny-imagenet-200-val tiny-imagenet-200-test tiny-imagenet-200-train100 imagenet-sample-images; do \
	  if [ -f $(DATA)/$$t.tar ] && [ ! -f $(WORK)/data/$$t.done ]; then \
	    echo "unpacking $$t"; mkdir -p $(WORK)/data/$$t && tar -xf $(DATA)/$$t.tar -C $(WORK)/data/$$t && touch $(WORK)/data/$$t.done; \
	  fi; done

lint: venv
	cargo fmt --all --check
	cargo clippy --release --locked --workspace --all-targets -- -D warnings

# The main job on an embedded default: a synthetic image set, ingested, verified, summarised.
demo: build
	$(SIPL) synth --out $(WORK)/demo/images --classes 8 --per-class 64 --size 96 --seed 0
	$(SIPL) ingest folder $(WORK)/demo/images --out $(WORK)/demo/shards --resize 64 --crop 64 --force
	$(SIPL) shards verify $(WORK)/demo/shards
	$(SIPL) shards inspect $(WORK)/demo/shards

# The paper's two datasets in one go:
#   make ingest IMAGENET=/data/imagenet TINY=/data/tiny-imagenet-200 OUT=/data/sipl
# IMAGENET holds ILSVRC2012_img_val/ (and optionally ILSVRC2012_devkit_t12/).
ingest: build
	@test -n "$(IMAGENET)" -a -n "$(TINY)" -a -n "$(OUT)" || \
	  { echo "usage: make ingest IMAGENET=DIR TINY=DIR OUT=DIR"; exit 2; }
	$(SIPL) ingest imagenet-val $(IMAGENET) --out $(OUT)/imagenet-val
	$(SIPL) shards verify $(OUT)/imagenet-val
	$(SIPL) ingest tiny-imagenet $(TINY) --split val --out $(OUT)/tiny-val
	$(SIPL) shards verify $(OUT)/tiny-val

# Ingest throughput on the real images in ../shared/data (figures for the notes).
bench-ingest: build test-data
	$(SIPL) ingest folder $(WORK)/data/imagenet-sample-images/imagenet-sample-images --out $(WORK)/bench/imagenet-sample --force
	$(SIPL) ingest tiny-imagenet $(WORK)/data/tiny-imagenet-200-val/tiny-imagenet-200 --split val --out $(WORK)/bench/tiny-val --force

clean:
	rm -rf $(WORK) target
