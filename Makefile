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

LIB_SRC   := $(wildcard src/*.c)
LIB_SRC   := $(filter-out src/main.c,$(LIB_SRC))
TEST_SRC  := $(wildcard tests/*.c)
BENCH_SRC := $(wildcard bench/*.c)
HDRS      := include/idscope.h $(wildcard src/*.h) tests/test.h bench/synth.h

.PHONY: all release asan test test-asan check deps demo bench clean fixtures
.SECONDARY:

all: release
release: build/release/idscope build/release/test_idscope $(patsubst bench/%.c,build/release/%,$(BENCH_SRC))
asan: build/asan/idscope build/asan/test_idscope

define variant
build/$(1)/obj/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -c $$< -o $$@

build/$(1)/libidscope.a: $(patsubst %.c,build/$(1)/obj/%.o,$(LIB_SRC))
	@rm -f $$@
	ar rcs $$@ $$^

build/$(1)/idscope: build/$(1)/obj/src/main.o build/$(1)/libidscope.a
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

# Main job. Until the bundled model exists: the golden LLaVA-shaped model end to end (it has
# random weights, so its answers and IDs are noise): ask, capture, a stimulus set, then every
# experiment and the report (build/demo/report.html).
GOLD := $(SHARED)/golden/llava-tiny
demo: deps
	@$(MAKE) --no-print-directory release
	@mkdir -p build/demo
	build/release/idscope ask -m $(GOLD)/text.gguf --mmproj $(GOLD)/mmproj.gguf --image $(GOLD)/image.png \
	    --question "Is the red circle to the left or right of the blue square?" --choices " left, right" -n 8
	build/release/idscope capture -m $(GOLD)/text.gguf --mmproj $(GOLD)/mmproj.gguf --image $(GOLD)/image.png \
	    --prompt-file $(GOLD)/prompt.txt -o build/demo/capture.safetensors --all
	build/release/idscope stimuli grid --out build/demo/grid --size 224 --mirror --limit 48
	build/release/idscope ids extract -m $(GOLD)/text.gguf --mmproj $(GOLD)/mmproj.gguf --out build/demo/ids \
	    --objects "red circle,blue square" --sizes 1 --per-pair
	build/release/idscope ids stats build/demo/ids
	build/release/idscope swap -m $(GOLD)/text.gguf --mmproj $(GOLD)/mmproj.gguf --out build/demo/swap --n 4
	build/release/idscope swap -m $(GOLD)/text.gguf --mmproj $(GOLD)/mmproj.gguf --out build/demo/swap --n 4 --control
	build/release/idscope steer belief --ids build/demo/ids/ids.safetensors -m $(GOLD)/text.gguf \
	    --mmproj $(GOLD)/mmproj.gguf --out build/demo/steer --n 4
	build/release/idscope steer grid --ids build/demo/ids/ids.safetensors -m $(GOLD)/text.gguf \
	    --mmproj $(GOLD)/mmproj.gguf --out build/demo/steer --n 4
	build/release/idscope depth --ids build/demo/ids/ids.safetensors -m $(GOLD)/text.gguf \
	    --mmproj $(GOLD)/mmproj.gguf --out build/demo/depth --n 4
	build/release/idscope score --stats build/demo/ids/stats.json --steer build/demo/steer/steer-belief.json \
	    -o build/demo/score.json
	build/release/idscope report build/demo

fixtures:
	python3 tests/fixtures/make_fixtures.py tests/fixtures

clean:
	rm -rf build
