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
# Seeds of the demo (default one) and of the reproductions (default three): SEEDS="0 1 2".
DEMO_SEEDS = $(or $(SEEDS),0)
DATA ?= $(CURDIR)/../shared/data
WORK ?= $(CURDIR)/.work
# Gloo's headers (CPU ranks of data-parallel training), from Debian's libgloo-dev; see
# train/build.rs. Only the headers are used: Gloo's code is in libtorch.
GLOO := $(CURDIR)/.work/gloo/usr/include/gloo/context.h
# nasm, which the SIMD code of libjpeg-turbo (ingest's JPEG decoder, built from source by
# turbojpeg-sys with the venv's cmake) needs: Debian's package, unpacked into .work/nasm.
NASM := $(CURDIR)/.work/nasm/usr/bin/nasm

# tch's build finds libtorch through the venv's torch (see ARCHITECTURE.md).
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(CURDIR)/.work/nasm/usr/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1

.PHONY: setup venv build demo test test-data pg lint tune-smoke ingest eval reproduce reproduce-small reproduce-cpu small-data bench-ingest bench-samples bench-loader bench-scaling bench-reference gpu-pack fuzz soak soak-train clean

setup: build

venv: $(VENV_STAMP)

$(VENV_STAMP): python/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-cache-dir -r python/requirements.txt || \
	  { echo "error: installing python/requirements.txt into $(VENV) failed; PyTorch with its CUDA libraries takes about 6 GiB there and $$(df -h --output=avail $(VENV) | tail -1 | tr -d ' ') is free" >&2; exit 1; }
	@rm -f $(VENV)/.sipl-* && touch $@

build: venv $(GLOO) $(NASM)
	cargo build --release --locked --bin sipl

$(NASM):
	@command -v nasm >/dev/null && mkdir -p $(dir $@) && ln -sf "$$(command -v nasm)" $@ && exit 0; \
	mkdir -p $(CURDIR)/.work/nasm-deb && cd $(CURDIR)/.work/nasm-deb && rm -f nasm_*.deb && \
	  { apt-get download nasm >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get download nasm >/dev/null 2>&1; }; } && \
	  dpkg -x nasm_*.deb $(CURDIR)/.work/nasm && test -x $@ && echo "nasm unpacked into .work/nasm" || \
	  { echo "error: could not fetch Debian's nasm, which building libjpeg-turbo needs (apt-get install nasm)" >&2; exit 1; }

$(GLOO):
	@mkdir -p $(CURDIR)/.work/gloo-deb
	@cd $(CURDIR)/.work/gloo-deb && rm -f libgloo-dev_*.deb && \
	  { apt-get download libgloo-dev >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get download libgloo-dev >/dev/null 2>&1; }; } && \
	  dpkg -x libgloo-dev_*.deb $(CURDIR)/.work/gloo && echo "Gloo headers unpacked into .work/gloo" || \
	  echo "warning: could not fetch Debian's libgloo-dev: CPU ranks (--devices cpu,...) will be unavailable"

# Tests run in the release profile: one profile means one build of arrow/parquet/libtorch glue.
test: build test-data pg
	cargo fmt --all --check
	SIPL_DATA=$(WORK)/data cargo test --release --locked --workspace
	@echo "make test: all tests passed"

# PostgreSQL for the database tests, which start their own server (tests/common/postgres.rs
# finds initdb on PATH, in /usr/lib/postgresql/*/bin, where Debian installs it, or in .work/pg).
# Nothing to do when there is one. Else, as root, apt-get installs Debian's postgresql; else
# Debian's server and client packages, with the libraries they need that are missing, are
# unpacked into .work/pg. If neither works the database tests skip, and this says so.
PG_LOCAL := $(CURDIR)/.work/pg
pg:
	@if command -v initdb >/dev/null; then exit 0; fi; \
	for f in /usr/lib/postgresql/*/bin/initdb $(PG_LOCAL)/usr/lib/postgresql/*/bin/initdb; do \
	  [ -x "$$f" ] && exit 0; done; \
	mkdir -p $(CURDIR)/.work; log=$(CURDIR)/.work/pg-install.log; : > $$log; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing PostgreSQL: apt-get install postgresql"; export DEBIAN_FRONTEND=noninteractive; \
	  if apt-get install -y -q --no-install-recommends postgresql >>$$log 2>&1 || \
	    { apt-get update -q >>$$log 2>&1 && apt-get install -y -q --no-install-recommends postgresql >>$$log 2>&1; }; \
	  then echo "PostgreSQL installed"; exit 0; fi; fi; \
	echo "unpacking Debian's PostgreSQL packages into .work/pg"; \
	v=$$(apt-cache depends postgresql 2>>$$log | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$$/\1/p' | head -1); \
	libs=$$(apt-cache depends postgresql-$$v postgresql-client-$$v 2>>$$log | \
	  sed -n 's/^ *|\{0,1\}Depends: \(lib[^ <>]*\)$$/\1/p' | grep -v '^libllvm' | sort -u | \
	  while read -r p; do dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || echo "$$p"; done); \
	rm -rf $(PG_LOCAL)-deb $(PG_LOCAL).tmp && mkdir -p $(PG_LOCAL)-deb && cd $(PG_LOCAL)-deb && test -n "$$v" && \
	apt-get download postgresql-$$v postgresql-client-$$v $$libs >>$$log 2>&1 && \
	(for d in *.deb; do dpkg -x "$$d" $(PG_LOCAL).tmp || exit 1; done) && mv $(PG_LOCAL).tmp $(PG_LOCAL) && \
	echo "PostgreSQL $$v unpacked into .work/pg" || \
	echo "warning: could not install PostgreSQL (see .work/pg-install.log; as root, apt-get install postgresql does): the database tests will skip"

# Real images for the acceptance tests, unpacked once from ../shared/data when it is there.
test-data:
	@mkdir -p $(WORK)/data
	@for t in tiny-imagenet-200-val tiny-imagenet-200-test tiny-imagenet-200-train100 imagenet-sample-images; do \
	  if [ -f $(DATA)/$$t.tar ] && [ ! -f $(WORK)/data/$$t.done ]; then \
	    echo "unpacking $$t"; mkdir -p $(WORK)/data/$$t && tar -xf $(DATA)/$$t.tar -C $(WORK)/data/$$t && touch $(WORK)/data/$$t.done; \
	  fi; done

lint: venv $(NASM)
	cargo fmt --all --check
	cargo clippy --release --locked --workspace --all-targets -- -D warnings

# The main job on an embedded default: a synthetic image set, ingested, verified, summarised,
# previewed, OPL and SIPLv1 pretext runs on CPU for each seed in SEEDS (default one), and their
# evaluation (make eval): the report's table has 95% intervals and paired comparisons.
#   make demo [SEEDS="0 1 2"]
demo: build
	rm -rf $(WORK)/demo/images $(WORK)/demo/downstream-images
	$(SIPL) synth --out $(WORK)/demo/images --classes 8 --per-class 64 --size 96 --seed 0
	$(SIPL) ingest folder $(WORK)/demo/images --out $(WORK)/demo/shards --resize 64 --crop 64 --force
	$(SIPL) shards verify $(WORK)/demo/shards
	$(SIPL) shards inspect $(WORK)/demo/shards
	$(SIPL) preview $(WORK)/demo/shards --scheme siplv1 --patch-size 32 --out $(WORK)/demo/preview-siplv1.png
	@# Downstream images apart from the pretext ones (as Tiny ImageNet is apart from ImageNet):
	@# another draw of the same 8 classes, 1,024 images, half of them held out.
	$(SIPL) synth --out $(WORK)/demo/downstream-images --classes 8 --per-class 128 --size 96 --seed 1
	$(SIPL) ingest folder $(WORK)/demo/downstream-images --out $(WORK)/demo/downstream --resize 64 --crop 64 --force -q
	@rm -rf $(WORK)/demo/runs $(WORK)/demo/results
	@# The monitor watches kNN accuracy on the downstream images while each run trains.
	@for m in opl siplv1; do for s in $(DEMO_SEEDS); do echo "== pretext $$m, seed $$s"; \
	  $(SIPL) train --config configs/demo-$$m.toml --set data.path=$(WORK)/demo/shards --set run.seed=$$s \
	    --set monitor.data=$(WORK)/demo/downstream --set monitor.input_size=64 --set monitor.every=12 \
	    --run-dir $(WORK)/demo/runs/$$m-seed$$s || exit 1; done; done
	$(MAKE) --no-print-directory eval RUNS="$(foreach m,opl siplv1,$(foreach s,$(DEMO_SEEDS),$(WORK)/demo/runs/$(m)-seed$(s)))" \
	  TINY=$(WORK)/demo/downstream SEEDS="$(DEMO_SEEDS)" EVAL_OUT=$(WORK)/demo/results \
	  EVAL_FLAGS="--stratified 0.5 --epochs 30 --input-size 64 --device cpu -q" \
	  KNN_FLAGS="--stratified 0.5 --input-size 64 --device cpu -q" TSNE_FLAGS="--input-size 64 --device cpu"
	@sed -n '/^## Table 4/,/^## Figure 3/p' $(WORK)/demo/results/report.md | sed '$$d'
	@# What the monitor saw while each run trained: kNN accuracy from the random encoder on.
	@sed -n '/^## Monitor/,/^!\[Monitor/p' $(WORK)/demo/results/report.md | sed '$$d'
	@echo "demo: preview $(WORK)/demo/preview-siplv1.png; runs $(WORK)/demo/runs/; table and figures $(WORK)/demo/results/report.md"

# The smoke search of `sipl tune` (about a minute on a 2-core CPU): 160 synthetic 32² images,
# then six trials of configs/tune/smoke.toml into .work/tune/smoke (rerunning resumes it).
#   make tune-smoke [TRIALS=6]
TRIALS ?= 6
tune-smoke: build
	@[ -f $(WORK)/tune/shards/dataset.json ] || { \
	  $(SIPL) synth --out $(WORK)/tune/images --classes 4 --per-class 40 --size 48 --seed 0 && \
	  $(SIPL) ingest folder $(WORK)/tune/images --out $(WORK)/tune/shards --resize 32 --crop 32 -q; }
	$(SIPL) tune --config configs/tune/smoke-base.toml --space configs/tune/smoke.toml \
	  --set data.path=$(WORK)/tune/shards --study $(WORK)/tune/smoke --trials $(TRIALS)

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

# The evaluation of pretext runs: downstream curve and kNN per run (RUN/eval/), a
# random-initialised baseline per seed, the t-SNE study of all runs, and the report (Table 4
# with 95% intervals, paired comparisons, Figures 3-4):
#   make eval RUNS="runs/opl-seed0 runs/siplv1-seed0" TINY=/data/sipl/tiny-val [SEEDS="0 1 2"]
#             [EVAL_OUT=results] [EVAL_FLAGS="--mode faithful --device cuda"] [KNN_FLAGS=…]
#             [TSNE_FLAGS="--classes 3,17"]
# Each run is evaluated with its own run.seed; the baseline gets one draw per seed in SEEDS.
EVAL_OUT ?= results
EVAL_FLAGS ?=
KNN_FLAGS ?=
TSNE_FLAGS ?=
EVAL_SEEDS = $(or $(SEEDS),0)
# The t-SNE study draws one panel per run: the first seed's runs (all runs if none is named -seedS).
TSNE_RUNS = $(or $(filter %-seed$(firstword $(EVAL_SEEDS)),$(RUNS)),$(RUNS))
eval: build
	@test -n "$(RUNS)" -a -n "$(TINY)" || \
	  { echo "usage: make eval RUNS='RUN_DIR...' TINY=TINY_VAL_SHARDS [SEEDS='0 1 2'] [EVAL_OUT=DIR]"; exit 2; }
	@for r in $(RUNS); do echo "== downstream and kNN: $$r"; $(SIPL) eval downstream --run $$r --data $(TINY) $(EVAL_FLAGS) || exit 1; \
	  $(SIPL) eval knn --run $$r --data $(TINY) $(KNN_FLAGS) || exit 1; done
	@for s in $(EVAL_SEEDS); do echo "== baseline (random-initialised encoder), seed $$s"; \
	  $(SIPL) eval downstream --random-init --seed $$s --data $(TINY) --out $(EVAL_OUT)/random-init-seed$$s $(EVAL_FLAGS) || exit 1; \
	  $(SIPL) eval knn --random-init --seed $$s --data $(TINY) --out $(EVAL_OUT)/knn-random-init-seed$$s $(KNN_FLAGS) || exit 1; done
	$(SIPL) eval tsne $(addprefix --run ,$(TSNE_RUNS)) --random-init --data $(TINY) --out $(EVAL_OUT)/tsne $(TSNE_FLAGS)
	$(SIPL) report $(RUNS) $(foreach s,$(EVAL_SEEDS),--baseline $(EVAL_OUT)/random-init-seed$(s) --baseline $(EVAL_OUT)/knn-random-init-seed$(s)) \
	  --tsne $(EVAL_OUT)/tsne --out $(EVAL_OUT)

# The paper's protocol: the four pretext runs (configs/*.toml: Table 3, 100 epochs, the first
# 46,000 ImageNet val images) for each seed in SEEDS (default 0 1 2), into RUNS_DIR/MODEL-seedS,
# and their evaluation on Tiny ImageNet val (Table 4 with intervals, Figures 3-4):
#   make reproduce IMAGENET_SHARDS=/data/sipl/imagenet-val TINY=/data/sipl/tiny-val [RUNS_DIR=runs] [SEEDS="0 1 2"]
# (make ingest makes both sets). Rerunning resumes every run where it stopped.
RUNS_DIR ?= runs
DEVICE ?= auto
MODELS ?= opl siplv1 siplv2 siplv3
REPRO_SEEDS = $(or $(SEEDS),0 1 2)
# RUN_DIRS(parent, models): parent/MODEL-seedS for every model and seed.
RUN_DIRS = $(foreach m,$(2),$(foreach s,$(REPRO_SEEDS),$(1)/$(m)-seed$(s)))
reproduce: build
	@test -n "$(IMAGENET_SHARDS)" -a -n "$(TINY)" || \
	  { echo "usage: make reproduce IMAGENET_SHARDS=DIR TINY=DIR [RUNS_DIR=runs] [DEVICE=cuda] [SEEDS='0 1 2']"; exit 2; }
	@for m in $(MODELS); do for s in $(REPRO_SEEDS); do echo "== pretext $$m, seed $$s"; \
	  $(SIPL) train --config configs/$$m.toml --set data.path=$(IMAGENET_SHARDS) --set run.device=$(DEVICE) \
	    --set run.seed=$$s --run-dir $(RUNS_DIR)/$$m-seed$$s || exit 1; done; done
	$(MAKE) --no-print-directory eval RUNS="$(call RUN_DIRS,$(RUNS_DIR),$(MODELS))" TINY=$(TINY) SEEDS="$(REPRO_SEEDS)" \
	  EVAL_OUT=$(RUNS_DIR)/results EVAL_FLAGS="--device $(DEVICE) -q $(EVAL_EXTRA)" KNN_FLAGS="--device $(DEVICE) -q" \
	  TSNE_FLAGS="--device $(DEVICE)"

# The real images of ../shared/data as a small protocol: Tiny train100 + Tiny test (64², as
# decoded, about 29,400 images) are the pretext corpus (1,000 held out); Tiny val downstream.
SMALL ?= $(WORK)/small
small-data: build test-data
	@if [ ! -f $(SMALL)/corpus/dataset.json ]; then rm -rf $(SMALL)/corpus-src && mkdir -p $(SMALL)/corpus-src && \
	  ln -s $(WORK)/data/tiny-imagenet-200-train100/tiny-imagenet-200/train $(SMALL)/corpus-src/train && \
	  ln -s $(WORK)/data/tiny-imagenet-200-test/tiny-imagenet-200/test $(SMALL)/corpus-src/test && \
	  $(SIPL) ingest folder $(SMALL)/corpus-src --out $(SMALL)/corpus --resize none --crop none -q; fi
	@[ -f $(SMALL)/tiny-val/dataset.json ] || \
	  $(SIPL) ingest tiny-imagenet $(WORK)/data/tiny-imagenet-200-val/tiny-imagenet-200 --split val --out $(SMALL)/tiny-val -q

# Sized for a few minutes on one GPU: the paper configs, patches resized to 64², SMALL_EPOCHS
# epochs per model and seed; Tiny val downstream at 224².
#   make reproduce-small [DEVICE=cuda] [SMALL_EPOCHS=15] [SEEDS="0 1 2"] [SMALL_SET="--set optim.max_steps=5"]
SMALL_EPOCHS ?= 15
SMALL_SET ?=
reproduce-small: small-data
	@n=$$($(SIPL) shards inspect $(SMALL)/corpus | awk '/^images/ {print $$2}'); \
	for m in $(MODELS); do for s in $(REPRO_SEEDS); do echo "== pretext $$m, seed $$s ($$n images, $(SMALL_EPOCHS) epochs)"; \
	  $(SIPL) train --config configs/$$m.toml --run-dir $(SMALL)/runs/$$m-seed$$s --force -q \
	    --set data.path=$(SMALL)/corpus --set data.train_images=$$((n - 1000)) --set data.patch_size=64 \
	    --set optim.epochs=$(SMALL_EPOCHS) --set run.device=$(DEVICE) --set run.log_every=100 --set run.seed=$$s $(SMALL_SET) || exit 1; done; done
	$(MAKE) --no-print-directory eval RUNS="$(call RUN_DIRS,$(SMALL)/runs,$(MODELS))" TINY=$(SMALL)/tiny-val SEEDS="$(REPRO_SEEDS)" \
	  EVAL_OUT=$(SMALL)/results EVAL_FLAGS="--device $(DEVICE) -q $(EVAL_EXTRA)" KNN_FLAGS="--device $(DEVICE) -q" \
	  TSNE_FLAGS="--device $(DEVICE)"

# The same real images sized for this 2-core CPU (about two hours): OPL and SIPLv1 with the
# demo's settings (32² patches, batch 32, lr 3e-4) for CPU_STEPS steps per seed (2,664: three
# epochs of the 28,431 training images), each watched by the monitor (kNN on the first
# CPU_MONITOR_IMAGES Tiny val images at 64², a stratified fifth held out; at the start, which is
# the random encoder of the seed, and after every epoch), then downstream on Tiny val with cached
# features at 64² input (METHOD.md's split: 9,000 train, the rest held out), CPU_EPOCHS head
# epochs, kNN, a random encoder per seed. Seed by seed (both models of a seed before the next),
# into .work/cpu/; rerunning resumes.
#   make reproduce-cpu [SEEDS="0 1 2"] [CPU_STEPS=2664] [CPU_EPOCHS=30] [CPU_MONITOR_IMAGES=5000]
CPU_RUNS ?= $(WORK)/cpu
CPU_STEPS ?= 2664
CPU_EPOCHS ?= 30
CPU_MONITOR_IMAGES ?= 5000
CPU_MONITOR = --set monitor.data=$(SMALL)/tiny-val --set monitor.input_size=64 \
  --set monitor.images=$(CPU_MONITOR_IMAGES) --set monitor.batch=128
reproduce-cpu: small-data
	@n=$$($(SIPL) shards inspect $(SMALL)/corpus | awk '/^images/ {print $$2}'); \
	for s in $(REPRO_SEEDS); do for m in siplv1 opl; do echo "== pretext $$m, seed $$s ($$n images, $(CPU_STEPS) steps)"; \
	  $(SIPL) train --config configs/demo-$$m.toml --run-dir $(CPU_RUNS)/runs/$$m-seed$$s -q \
	    --set data.path=$(SMALL)/corpus --set data.train_images=$$((n - 1000)) --set data.patch_size=32 \
	    --set optim.max_steps=$(CPU_STEPS) --set optim.epochs=1000 --set run.log_every=100 --set run.seed=$$s \
	    $(CPU_MONITOR) || exit 1; done; done
	$(MAKE) --no-print-directory eval RUNS="$(call RUN_DIRS,$(CPU_RUNS)/runs,opl siplv1)" TINY=$(SMALL)/tiny-val SEEDS="$(REPRO_SEEDS)" \
	  EVAL_OUT=$(CPU_RUNS)/results EVAL_FLAGS="--input-size 64 --epochs $(CPU_EPOCHS) --device cpu -q" \
	  KNN_FLAGS="--input-size 64 --device cpu -q" TSNE_FLAGS="--input-size 64 --device cpu"
	@sed -n '/^## Table 4/,/^## Figure 3/p' $(CPU_RUNS)/results/report.md | sed '$$d'
	@sed -n '/^## Monitor/,/^!\[Monitor/p' $(CPU_RUNS)/results/report.md | sed '$$d'

# Ingest throughput on the real images in ../shared/data (figures for the notes).
# Ingest speed on one thread and two, beside Pillow + torchvision doing the same pixel work
# (bench/pillow_ingest.py) in one and two processes, on the 1,000 full-resolution photos (to
# 224²) and on Tiny val (stored as decoded).
SAMPLES_ROOT := $(WORK)/data/imagenet-sample-images/imagenet-sample-images
TINY_ROOT := $(WORK)/data/tiny-imagenet-200-val/tiny-imagenet-200
bench-ingest: build test-data
	@for t in 1 2; do \
	  $(SIPL) ingest folder $(SAMPLES_ROOT) --out $(WORK)/bench/imagenet-sample --force --threads $$t -q | grep speed; \
	  $(VENV)/bin/python bench/pillow_ingest.py $(SAMPLES_ROOT) --resize 256 --crop 224 --workers $$t; \
	  $(SIPL) ingest tiny-imagenet $(TINY_ROOT) --split val --out $(WORK)/bench/tiny-val --force --threads $$t -q | grep speed; \
	  $(VENV)/bin/python bench/pillow_ingest.py $(TINY_ROOT)/val --workers $$t; \
	done

# Loader throughput per scheme on the full-resolution samples (ingested at 224²).
BENCH_SAMPLES := $(WORK)/bench/imagenet-sample
WORKERS ?= 2
BENCH_SECONDS ?= 30
# The 1,000 photos at 224² that the loader benchmarks read (ingest does nothing when they are
# already there).
bench-samples: build test-data
	$(SIPL) ingest folder $(WORK)/data/imagenet-sample-images/imagenet-sample-images --out $(BENCH_SAMPLES) -q

bench-loader: bench-samples
	for s in opl siplv1 siplv2 siplv3; do \
	  $(SIPL) bench loader $(BENCH_SAMPLES) --scheme $$s --workers $(WORKERS) --seconds $(BENCH_SECONDS) --batch 64; done

# One worker against two, and two 1-worker processes as this machine's ceiling, in alternating
# rounds (bench/loader_scaling.py); SCHEME and DTYPE pick the stream.
SCHEME ?= siplv1
DTYPE ?= f32
bench-scaling: bench-samples
	python3 bench/loader_scaling.py $(SIPL) $(BENCH_SAMPLES) --scheme $(SCHEME) --batch-dtype $(DTYPE)

# The authors' Python loader on the same JPEGs, for side-by-side figures. REF is an extracted
# checkout of brunnedu/DeepLearning2022 (never committed here); needs pandas.
bench-reference: venv test-data
	@test -n "$(REF)" || { echo "usage: make bench-reference REF=DIR (a checkout of the authors' code)"; exit 2; }
	$(VENV)/bin/pip install --quiet pandas
	for s in opl siplv1; do \
	  $(VENV)/bin/python bench/reference_loader.py --repo $(REF) --images $(WORK)/data/imagenet-sample-images/imagenet-sample-images \
	    --scheme $$s --workers $(WORKERS) --batch 64 --seconds $(BENCH_SECONDS); done

# Everything a run on the GPU machine needs (python3 + torch there, no Rust; at most 64 MiB
# travel, the checkout included), in .gpu/ (ignored): the stripped binary (xz-compressed if the
# total needs it), bench/, configs/, Tiny ImageNet val + test (xz). REF=DIR adds the files of
# the authors' checkout that bench/reference_loader.py imports. Prints the sizes; fails over
# 64 MiB. There:
#   bash .gpu/bench/gpu_check.sh "$OUT"       (the plan is in the script's header)
gpu-pack: build
	SIPL=$(SIPL) DATA=$(DATA) REF=$(REF) PACK=$(CURDIR)/.gpu PYTHON=$(PYTHON) bash bench/gpu_pack.sh

# Hardening (RELIABILITY.md). Longer fuzzing than CI's 48 cases per property; a failure is
# saved under <crate>/proptest-regressions/ and replayed by every later run.
FUZZ_CASES ?= 20000
fuzz: build
	FUZZ_CASES=$(FUZZ_CASES) cargo test --release --locked -p sipl-shards --test fuzz
	FUZZ_CASES=$(FUZZ_CASES) cargo test --release --locked -p sipl-ingest --test fuzz
	FUZZ_CASES=$(FUZZ_CASES) cargo test --release --locked -p sipl-train --test fuzz_config

# The loader for SOAK_MINUTES under a stalling, restarting consumer: RSS over time, deadlock
# watchdog (on a synthetic set, 64² images, 32² patches).
SOAK_MINUTES ?= 10
soak: build
	$(SIPL) synth --out $(WORK)/soak/images --classes 8 --per-class 64 --size 96 --seed 0
	$(SIPL) ingest folder $(WORK)/soak/images --out $(WORK)/soak/shards --resize 64 --crop 64 -q
	$(SIPL) bench soak $(WORK)/soak/shards --minutes $(SOAK_MINUTES) --patch-size 32 --workers $(WORKERS)

# Many short training runs killed at random moments and resumed, ROUNDS times.
ROUNDS ?= 20
soak-train: build
	SIPL=$(SIPL) ROUNDS=$(ROUNDS) WORK=$(WORK) bash bench/soak_train.sh

clean:
	rm -rf $(WORK) target
