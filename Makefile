# idscope build. `make` builds the release CLI; `make check` installs missing Debian packages,
# builds, and runs the whole test suite (release + ASan/UBSan); `make demo` runs the main job.

CC      ?= cc
SHARED  ?= ../shared
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CSTD    := -std=c11 -D_DEFAULT_SOURCE
INC     := -Iinclude -Isrc
LIBS    := -lstb -lopenblas -lpcre2-8 -lcjson -lavformat -lavcodec -lswscale -lavutil -lm -lpthread

RELEASE_FLAGS := -O2 -g $(WARN) $(CSTD) $(INC)
ASAN_FLAGS    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                 -fno-sanitize-recover=undefined $(WARN) $(CSTD) $(INC)

LIB_SRC   := $(wildcard src/*/*.c)
CLI_SRC   := $(wildcard cli/*.c)
TEST_SRC  := $(wildcard tests/*.c)
BENCH_SRC := $(wildcard bench/*.c)
HDRS      := include/idscope.h $(wildcard include/idscope/*.h src/*/*.h cli/*.h) tests/test.h bench/synth.h

# make bench LLAMA_BENCH=/path/to/llama.cpp/build/bin/llama-bench: also a prefill of 640 tokens
# through 4 LLaVA-1.5-7B-shaped blocks (F16 and Q8_0 files written into BENCH_DIR by
# ../shared/tools/make7b.py with the gguf-py beside that llama.cpp; needs python3-numpy), idscope and
# llama-bench on the same file in the same run, and the ratio.
BENCH_DIR     ?= build/bench
BENCH_THREADS ?= 2
PYTHON        ?= $(firstword $(wildcard /usr/bin/python3) python3)

.PHONY: all release asan test test-asan check deps demo demo-golden bench clean fixtures
.SECONDARY:

all: release
release: build/release/idscope build/release/test_idscope $(patsubst bench/%.c,build/release/%,$(BENCH_SRC))
asan: build/asan/idscope build/asan/test_idscope

# The source a build comes from (recorded in every result's provenance); build/source.txt changes
# only when it does, so that only src/base/prov.c is rebuilt.
BUILD_SOURCE := $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
$(shell mkdir -p build; [ "$$(cat build/source.txt 2>/dev/null)" = "$(BUILD_SOURCE)" ] || echo "$(BUILD_SOURCE)" > build/source.txt)

define variant
build/$(1)/obj/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -c $$< -o $$@

build/$(1)/obj/src/base/prov.o: src/base/prov.c $(HDRS) build/source.txt
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -DIDS_BUILD_SOURCE='"git $(BUILD_SOURCE)"' -c $$< -o $$@

build/$(1)/libidscope.a: $(patsubst %.c,build/$(1)/obj/%.o,$(LIB_SRC))
	@rm -f $$@
	ar rcs $$@ $$^

build/$(1)/idscope: $(patsubst %.c,build/$(1)/obj/%.o,$(CLI_SRC)) build/$(1)/libidscope.a
	$$(CC) $(2) $$^ -o $$@ $(LIBS)

build/$(1)/test_idscope: $(patsubst %.c,build/$(1)/obj/%.o,$(TEST_SRC)) build/$(1)/libidscope.a
	$$(CC) $(2) $$^ -o $$@ $(LIBS)

build/$(1)/bench_%: build/$(1)/obj/bench/bench_%.o build/$(1)/libidscope.a
	$$(CC) $(2) $$^ -o $$@ $(LIBS)
endef

$(eval $(call variant,release,$(RELEASE_FLAGS)))
$(eval $(call variant,asan,$(ASAN_FLAGS)))

deps:
	@scripts/deps.sh

# Whole suite: unit tests (release), CLI tests, unit tests again under ASan+UBSan.
test: release asan
	@IDSCOPE_SHARED=$(SHARED) tests/run_all.sh

check: deps
	@$(MAKE) --no-print-directory test

bench: release
	build/release/bench_quant
	build/release/bench_lm
	build/release/bench_vision
	build/release/bench_train
ifdef LLAMA_BENCH
	@mkdir -p $(BENCH_DIR)
	@for t in f16 q8_0; do \
	    f=$(BENCH_DIR)/llava7b-4blocks-$$t.gguf; \
	    [ -s $$f ] || LLAMACPP_DIR=$$(cd "$$(dirname $(LLAMA_BENCH))/../.." && pwd) $(PYTHON) $(SHARED)/tools/make7b.py $$f 4 $$t || exit 1; \
	    build/release/idscope bench prefill -m $$f --tokens 640 --threads $(BENCH_THREADS) --compare $(LLAMA_BENCH) || exit 1; \
	done
endif

# Main job: every experiment on the bundled model (models/tiny-llava), build/demo/report.html and
# build/demo/summary.json; an interrupted run resumes (DEMO_FLAGS=--fresh reruns everything).
demo: deps
	@$(MAKE) --no-print-directory release
	build/release/idscope demo --out build/demo $(DEMO_FLAGS)

# The same chain on the golden LLaVA-shaped model (random weights: its answers and IDs are noise).
GOLD := $(SHARED)/golden/llava-tiny
demo-golden: deps
	@$(MAKE) --no-print-directory release
	build/release/idscope demo --out build/demo-golden -m $(GOLD)/text.gguf --mmproj $(GOLD)/mmproj.gguf --n 4 $(DEMO_FLAGS)

fixtures:
	python3 tests/fixtures/make_fixtures.py tests/fixtures

clean:
	rm -rf build
