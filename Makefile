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

.PHONY: setup venv build demo test test-data lint ingest eval bench-ingest bench-loader bench-reference clean

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

# The main job on an embedded default: a synthetic image set, ingested, verified, summarised,
# previewed, a short SIPLv1 pretext run on CPU, and its evaluation (make eval).
demo: build
	$(SIPL) synth --out $(WORK)/demo/images --classes 8 --per-class 64 --size 96 --seed 0
	$(SIPL) ingest folder $(WORK)/demo/images --out $(WORK)/demo/shards --resize 64 --crop 64 --force
	$(SIPL) shards verify $(WORK)/demo/shards
	$(SIPL) shards inspect $(WORK)/demo/shards
	$(SIPL) preview $(WORK)/demo/shards --scheme siplv1 --patch-size 32 --out $(WORK)/demo/preview-siplv1.png
	rm -rf $(WORK)/demo/run-siplv1
	$(SIPL) train --config configs/smoke-siplv1.toml --set data.path=$(WORK)/demo/shards --set optim.max_steps=60 \
	  --set optim.epochs=3 --set run.checkpoint_every=20 --run-dir $(WORK)/demo/run-siplv1
	$(MAKE) --no-print-directory eval RUNS=$(WORK)/demo/run-siplv1 TINY=$(WORK)/demo/shards EVAL_OUT=$(WORK)/demo/results \
	  EVAL_FLAGS="--stratified 0.125 --epochs 20 --input-size 64 --device cpu -q" TSNE_FLAGS="--input-size 64 --device cpu"
	@echo "demo: preview at $(WORK)/demo/preview-siplv1.png; run (config, metrics.jsonl, checkpoints, weights) in $(WORK)/demo/run-siplv1; results in $(WORK)/demo/results/report.md"

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

# The evaluation of pretext runs: downstream curve per run (RUN/eval/downstream-MODE), a
# random-initialised baseline, the t-SNE study of all runs, and the report (Table 4, Figures 3-4):
#   make eval RUNS="runs/opl runs/siplv1" TINY=/data/sipl/tiny-val [EVAL_OUT=results]
#             [EVAL_FLAGS="--mode faithful --device cuda"] [TSNE_FLAGS="--classes 3,17"]
EVAL_OUT ?= results
EVAL_FLAGS ?=
TSNE_FLAGS ?=
eval: build
	@test -n "$(RUNS)" -a -n "$(TINY)" || \
	  { echo "usage: make eval RUNS='RUN_DIR...' TINY=TINY_VAL_SHARDS [EVAL_OUT=DIR]"; exit 2; }
	@for r in $(RUNS); do echo "== downstream $$r"; $(SIPL) eval downstream --run $$r --data $(TINY) $(EVAL_FLAGS) || exit 1; done
	@echo "== downstream baseline (random-initialised encoder)"
	$(SIPL) eval downstream --random-init --data $(TINY) --out $(EVAL_OUT)/baseline-random-init $(EVAL_FLAGS)
	$(SIPL) eval tsne $(addprefix --run ,$(RUNS)) --random-init --data $(TINY) --out $(EVAL_OUT)/tsne $(TSNE_FLAGS)
	$(SIPL) report $(RUNS) --baseline $(EVAL_OUT)/baseline-random-init --tsne $(EVAL_OUT)/tsne --out $(EVAL_OUT)

# Ingest throughput on the real images in ../shared/data (figures for the notes).
bench-ingest: build test-data
	$(SIPL) ingest folder $(WORK)/data/imagenet-sample-images/imagenet-sample-images --out $(WORK)/bench/imagenet-sample --force
	$(SIPL) ingest tiny-imagenet $(WORK)/data/tiny-imagenet-200-val/tiny-imagenet-200 --split val --out $(WORK)/bench/tiny-val --force

# Loader throughput per scheme on the full-resolution samples (ingested at 224²).
BENCH_SAMPLES := $(WORK)/bench/imagenet-sample
WORKERS ?= 2
BENCH_SECONDS ?= 30
bench-loader: build test-data
	$(SIPL) ingest folder $(WORK)/data/imagenet-sample-images/imagenet-sample-images --out $(BENCH_SAMPLES) -q
	for s in opl siplv1 siplv2 siplv3; do \
	  $(SIPL) bench loader $(BENCH_SAMPLES) --scheme $$s --workers $(WORKERS) --seconds $(BENCH_SECONDS) --batch 64; done

# The authors' Python loader on the same JPEGs, for side-by-side figures. REF is an extracted
# checkout of brunnedu/DeepLearning2022 (never committed here); needs pandas.
bench-reference: venv test-data
	@test -n "$(REF)" || { echo "usage: make bench-reference REF=DIR (a checkout of the authors' code)"; exit 2; }
	$(VENV)/bin/pip install --quiet pandas
	for s in opl siplv1; do \
	  $(VENV)/bin/python bench/reference_loader.py --repo $(REF) --images $(WORK)/data/imagenet-sample-images/imagenet-sample-images \
	    --scheme $$s --workers $(WORKERS) --batch 64 --seconds $(BENCH_SECONDS); done

clean:
	rm -rf $(WORK) target
