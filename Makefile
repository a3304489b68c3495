# Two entry points for a new user: `make demo` and `make test`. Each sets up what it needs.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: demo test lint typecheck pytest bench bench-real reid-real clean browser ffmpeg default-model adapted-model gan-study

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

demo: $(STAMP)
	$(BIN)/prowl demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Chromium is optional: the browser test is skipped with a reason where it cannot be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) \
	  || echo "chromium not installed: the browser test will be skipped"; }

# FFmpeg (the live-stream tests' sender) likewise: skipped with a reason where it is missing.
ffmpeg:
	@command -v ffmpeg >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null 2>&1) \
	  || echo "ffmpeg not installed: the live-stream tests will be skipped"; }

pytest: $(STAMP) browser ffmpeg
	$(BIN)/python -m pytest --durations=30

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/prowl bench-ingest --frames 0
	$(BIN)/prowl bench-search

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache prowl-data prowl-out

# The shipped default embedder (reid/weights/osnet-x0_5-prowl.pth): torchreid's OSNet x0.5
# trained on all of MSMT17 ("combineall"), from its ONNX export, imported into prowl's own
# OSNet and checked against ONNX Runtime (cosine >= 0.9999). Needs the ONNX file (torchreid's
# model zoo exported, or ../shared/models); a few seconds. Then set X0_5_MODEL_SHA in
# pipeline/core/zoo.py to the printed sha256.
X05_ONNX ?= ../shared/models/osnet_x0_5_msmt17_combineall.onnx
default-model: $(STAMP)
	rm -f reid/weights/osnet-x0_5-prowl.pth reid/weights/osnet-x0_5-prowl.card.json
	$(BIN)/prowl import-onnx $(X05_ONNX) --arch osnet_x0_5 --out reid/weights/osnet-x0_5-prowl.pth

# The earlier default (reid/weights/osnet-x0_25-prowl.pt, still served to galleries built with
# it): OSNet x0.25 MSMT17 adapted without labels to the sample footage's tracks with `prowl
# adapt`. Needs the MSMT17 checkpoint (torchreid's model zoo, or ../shared/models); about 3
# minutes on 2 cores.
DM := build/default-model
adapted-model: $(STAMP)
	rm -rf $(DM)
	$(BIN)/prowl ingest "$$($(BIN)/python -c 'from pipeline.core.assets import resolve; print(resolve("vtest.avi"))')" \
	  --reid hsv --camera campus --data-dir $(DM)/gallery -q
	$(BIN)/prowl adapt --data-dir $(DM)/gallery --init osnet_x0_25_msmt17 --arch osnet_x0_25 \
	  --rounds 2 --epochs 2 --iters-per-epoch 10 --min-sightings 20 --seed 0 --out $(DM)/adapt
	cp $(DM)/adapt/model.pt reid/weights/osnet-x0_25-prowl.pt
	cp $(DM)/adapt/card.json reid/weights/osnet-x0_25-prowl.card.json
	sha256sum reid/weights/osnet-x0_25-prowl.pt


# The real labelled sequences of ../shared/data/real-mot (MOT15 ground truth; see its README)
# as a MOT layout prowl reads: each sequence's gt, seqinfo and video (PETS09-S2L1's frames are
# the sample video's). Links only: nothing is copied or committed.
REALMOT ?= ../shared/data/real-mot
build/real-mot: $(REALMOT)/README.md
	rm -rf $@ && mkdir -p $@
	for seq in PETS09-S2L1 TUD-Campus TUD-Stadtmitte; do \
	  mkdir -p $@/$$seq && ln -s "$$(realpath $(REALMOT)/$$seq/gt)" $@/$$seq/gt && \
	  ln -s "$$(realpath $(REALMOT)/$$seq/seqinfo.ini)" $@/$$seq/seqinfo.ini; \
	done
	ln -s "$$(realpath $(REALMOT)/TUD-Campus/video.mp4)" $@/TUD-Campus/video.mp4
	ln -s "$$(realpath $(REALMOT)/TUD-Stadtmitte/video.mp4)" $@/TUD-Stadtmitte/video.mp4
	ln -s "$$(realpath $(REALMOT)/../vtest.avi)" $@/PETS09-S2L1/video.avi

# Detectors and settings judged on real labelled footage: the three real sequences and crowded
# mosaics of two of them (their ground truth moved exactly, people 1/3 and 1/2 as tall at the
# detector's input). The first detector is the default and every speed is a ratio to it in the
# same run. Writes build/bench-real/summary.md (the README's table) and per-dataset plots.
BENCH_DETECTORS ?= yolov8n,yolov8n@fixed,yolov8n@1280,yolov8n@tile640,yolov8s-person,yolov8s-person@1280,gt
BENCH_REIDS ?= osnet-x0_5-prowl
bench-real: $(STAMP) build/real-mot
	rm -rf build/real-crowd build/bench-real
	$(BIN)/prowl make-crowd build/real-crowd --from-mot build/real-mot/PETS09-S2L1 --grid 3
	$(BIN)/prowl make-crowd build/real-crowd --from-mot build/real-mot/TUD-Stadtmitte \
	  --grid 2 --frames 40 --stride 3
	$(BIN)/prowl bench build/real-mot/PETS09-S2L1 build/real-mot/TUD-Campus \
	  build/real-mot/TUD-Stadtmitte build/real-crowd/PETS09-S2L1-mosaic3x3 \
	  build/real-crowd/TUD-Stadtmitte-mosaic2x2 --format mot --detectors $(BENCH_DETECTORS) \
	  --reids $(BENCH_REIDS) --out build/bench-real --data-dir build/bench-cache

# Re-ID on real people you can see: the labelled people of the three real-mot sequences as one
# Market-1501-layout set (queries from early in each person's life, gallery from late in it;
# PETS09-S2L1's re-entries joined by eye, see ../shared/data/real-mot/README.md), every
# embedder with and without flip averaging and query-time expansion + re-ranking, with 95 %
# bootstrap intervals: build/reid-real/summary.md. About 2 minutes on 2 cores.
REID_REAL_EMBEDDERS ?= osnet-x0_5-prowl osnet-x0_25-prowl osnet_x0_25_msmt17 mobilenetv2-imagenet
REID_MERGES := --merge PETS09-S2L1:11=3 --merge PETS09-S2L1:12=4 --merge PETS09-S2L1:10=6
# Clothing colour (attribute search) against hand labels of the real labelled people.
colours-study: $(STAMP) build/real-mot
	$(BIN)/prowl eval-colours build/real-mot --labels evaluation/labels/real-mot-colours.csv \
	  --out build/colours-study

reid-real: $(STAMP) build/real-mot
	rm -rf build/reid-real && mkdir -p build/reid-real/json
	$(BIN)/prowl export-reid-set --out build/reid-real/all --min-sightings 12 $(REID_MERGES) \
	  --from-mot build/real-mot/PETS09-S2L1 --from-mot build/real-mot/TUD-Campus \
	  --from-mot build/real-mot/TUD-Stadtmitte
	for e in $(REID_REAL_EMBEDDERS); do for f in "" +flip; do for o in "" "--qe 3 --rerank"; do \
	  $(BIN)/prowl eval-reid build/reid-real/all --format market1501 --reid $$e$$f $$o \
	    --json "build/reid-real/json/$$e$$f$$(echo $$o | tr -d ' -').json" || exit 1; \
	done; done; done
	$(BIN)/python -m evaluation.summaries reid build/reid-real/json osnet-x0_25-prowl \
	  | tee build/reid-real/summary.md

# The seed's GAN methods measured on real people, leave-one-sequence-out: fine-tune the
# default embedder on the labelled people of TUD-Campus + TUD-Stadtmitte (two cameras) and
# score it on PETS09-S2L1's people (never seen in training): plain fine-tuning, + CamStyle,
# + LSRO, and SPGAN (TUD people in the style of the PETS09 footage, unlabelled, from the
# sample video's gallery), each against the untouched default with paired bootstrap
# intervals: build/gan-study/summary.md, sample grids under build/gan-study/*/. About 50
# minutes on 2 CPU cores; on a GPU add GAN_FLAGS="--device cuda --gan-size 128x64".
GS := build/gan-study
GAN_ITERS ?= 1000
GAN_FLAGS ?=
FT := --arch osnet_x0_5 --init osnet-x0_5-prowl --epochs 8 --iters-per-epoch 15 --freeze-bn \
  --warmup-epochs 1 --lr 3.5e-5 --seed 0
gan-study: $(STAMP) build/real-mot
	rm -rf $(GS) && mkdir -p $(GS)/json
	$(BIN)/prowl export-reid-set --split train --out $(GS)/train --min-sightings 12 \
	  --from-mot build/real-mot/TUD-Campus --from-mot build/real-mot/TUD-Stadtmitte
	$(BIN)/prowl export-reid-set --out $(GS)/test --min-sightings 12 $(REID_MERGES) \
	  --from-mot build/real-mot/PETS09-S2L1
	$(BIN)/prowl eval-reid $(GS)/test --format market1501 --reid osnet-x0_5-prowl \
	  --json $(GS)/json/default.json
	for m in plain "camstyle --camstyle" "lsro --lsro 800"; do set -- $$m; \
	  $(BIN)/prowl train --dataset $(GS)/train --format market1501 --val-fraction 0 $(FT) \
	    $$2 $$3 --gan-iters $(GAN_ITERS) $(GAN_FLAGS) --out $(GS)/$$1 || exit 1; \
	  $(BIN)/prowl eval-reid $(GS)/test --format market1501 --reid prowl:$(GS)/$$1/model.pt \
	    --json $(GS)/json/$$1.json || exit 1; \
	done
	$(BIN)/prowl ingest build/real-mot/PETS09-S2L1/video.avi --reid hsv --data-dir $(GS)/target -q
	$(BIN)/prowl adapt --spgan --source $(GS)/train --source-format market1501 --val-fraction 0 \
	  --data-dir $(GS)/target $(FT) --gan-iters $(GAN_ITERS) $(GAN_FLAGS) --out $(GS)/spgan
	$(BIN)/prowl eval-reid $(GS)/test --format market1501 --reid prowl:$(GS)/spgan/model.pt \
	  --json $(GS)/json/spgan.json
	$(BIN)/python -m evaluation.summaries reid $(GS)/json default plain | tee $(GS)/summary.md
