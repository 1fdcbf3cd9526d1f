# idscope build. `make` builds the release CLI; `make check` installs missing Debian packages,
# builds, and runs the whole test suite (release + ASan/UBSan + a smoke of the fuzz harnesses);
# `make fuzz` runs every libFuzzer harness for FUZZ_SECONDS; `make demo` runs the main job.

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
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC := $(wildcard bench/*.c)
HDRS      := include/idscope.h $(wildcard include/idscope/*.h src/*/*.h cli/*.h) tests/test.h bench/synth.h

# make bench LLAMA_BENCH=/path/to/llama.cpp/build/bin/llama-bench: also a prefill of 640 tokens
# through 4 LLaVA-1.5-7B-shaped blocks (F16 and Q8_0 files written into BENCH_DIR by
# ../shared/tools/make7b.py with the gguf-py beside that llama.cpp; needs python3-numpy), idscope and
# llama-bench on the same file in the same run, and the ratio (BENCH_ROUNDS=3: three turns of each, the
# best of each, where the machine's speed drifts).
BENCH_DIR     ?= build/bench
BENCH_THREADS ?= 2
BENCH_ROUNDS  ?= 1
PYTHON        ?= $(firstword $(wildcard /usr/bin/python3) python3)

# Builds use every core unless a -j was given (make -j1 for a serial build).
NPROC := $(shell nproc 2>/dev/null || echo 1)
ifeq ($(MAKELEVEL)$(filter -j%,$(MAKEFLAGS)),0)
MAKEFLAGS += -j$(NPROC)
endif

.PHONY: all release asan test test-asan check deps demo demo-golden bench clean fixtures fuzz fuzz-build \
        fuzz-build-if-clang fuzz-corpus shared shared-asan check-python-asan install uninstall
.SECONDARY:

# The Qwen3-VL golden text model (tests/golden/make_qwen3vl.py): tests/golden/qwen3vl-tiny/text-blocks.gguf
# joined with the vocabulary of ../shared's Qwen2-VL golden, made when ../shared has that file.
QWEN3VL_BASE := $(SHARED)/golden/qwen2vl-tiny/text.gguf
QWEN3VL_TEXT := $(if $(wildcard $(QWEN3VL_BASE)),build/golden/qwen3vl-tiny/text.gguf)

all: release
release: build/release/idscope build/release/test_idscope $(patsubst bench/%.c,build/release/%,$(BENCH_SRC)) \
         $(QWEN3VL_TEXT)
asan: build/asan/idscope build/asan/test_idscope

# The source a build comes from (recorded in every result's provenance); build/source.txt changes
# only when it does, so that only src/base/prov.c is rebuilt.
BUILD_SOURCE := $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
$(shell mkdir -p build; [ "$$(cat build/source.txt 2>/dev/null)" = "$(BUILD_SOURCE)" ] || echo "$(BUILD_SOURCE)" > build/source.txt)

# variant NAME, FLAGS[, COMPILER (default $(CC))]
define variant
build/$(1)/obj/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	$(if $(3),$(3),$$(CC)) $(2) -c $$< -o $$@

build/$(1)/obj/src/base/prov.o: src/base/prov.c $(HDRS) build/source.txt
	@mkdir -p $$(dir $$@)
	$(if $(3),$(3),$$(CC)) $(2) -DIDS_BUILD_SOURCE='"git $(BUILD_SOURCE)"' -c $$< -o $$@

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

build/release/gguf_join: build/release/obj/tests/golden/gguf_join.o build/release/libidscope.a
	$(CC) $(RELEASE_FLAGS) $^ -o $@ $(LIBS)
build/golden/qwen3vl-tiny/text.gguf: build/release/gguf_join tests/golden/qwen3vl-tiny/text-blocks.gguf $(QWEN3VL_BASE)
	@mkdir -p $(dir $@)
	build/release/gguf_join $(QWEN3VL_BASE) tests/golden/qwen3vl-tiny/text-blocks.gguf $@
$(eval $(call variant,asan,$(ASAN_FLAGS)))
$(eval $(call variant,pic,$(RELEASE_FLAGS) -fPIC))

# The shared library (position-independent objects in build/pic/), versioned by the soname.
VERSION  := $(shell sed -n 's/^\#define IDS_VERSION_STRING "\(.*\)"/\1/p' include/idscope/base.h)
SOMAJOR  := 0
SHLIB    := build/release/libidscope.so.$(VERSION)
$(SHLIB): $(patsubst %.c,build/pic/obj/%.o,$(LIB_SRC)) scripts/libidscope.map
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libidscope.so.$(SOMAJOR) -Wl,--no-undefined -Wl,--version-script=scripts/libidscope.map \
	    $(filter %.o,$^) -o $@ $(LIBS)
	ln -sf libidscope.so.$(VERSION) build/release/libidscope.so.$(SOMAJOR)
	ln -sf libidscope.so.$(SOMAJOR) build/release/libidscope.so
shared: $(SHLIB)

# The shared library under ASan+UBSan (build/asan-shared/), for the Python suite: tests/python/asan.sh
# runs tests/python/run.py against it with libasan preloaded (make check-python-asan).
$(eval $(call variant,asan-pic,$(ASAN_FLAGS) -fPIC))
ASAN_SHLIB := build/asan-shared/libidscope.so.$(SOMAJOR)
$(ASAN_SHLIB): $(patsubst %.c,build/asan-pic/obj/%.o,$(LIB_SRC)) scripts/libidscope.map
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) -shared -Wl,-soname,libidscope.so.$(SOMAJOR) -Wl,--no-undefined \
	    -Wl,--version-script=scripts/libidscope.map $(filter %.o,$^) -o $@ $(LIBS)
shared-asan: $(ASAN_SHLIB)
check-python-asan: release shared-asan
	@IDSCOPE_SHARED=$(SHARED) CC=$(CC) tests/python/asan.sh

# make install [PREFIX=/usr/local] [DESTDIR=...]: the CLI, both libraries, the headers, idscope.pc, the
# bundled model (PREFIX/share/idscope/models, where the installed CLI looks for it) and the Python package
# (PYTHONDIR, default PREFIX/lib/pythonX.Y/dist-packages: on Debian's path for PREFIX=/usr/local).
PREFIX ?= /usr/local
PYVER  := $(shell $(PYTHON) -c 'import sys; print("python%d.%d" % sys.version_info[:2])' 2>/dev/null || echo python3)
PYTHONDIR ?= $(PREFIX)/lib/$(PYVER)/dist-packages
PY_FILES  := $(wildcard python/idscope/*.py)
INSTALL_FILES := bin/idscope lib/libidscope.a lib/libidscope.so.$(VERSION) lib/libidscope.so.$(SOMAJOR) \
                 lib/libidscope.so lib/pkgconfig/idscope.pc include/idscope.h \
                 $(patsubst include/%,include/%,$(wildcard include/idscope/*.h)) \
                 $(patsubst models/%,share/idscope/models/%,$(wildcard models/tiny-llava/*))
install: release $(SHLIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/idscope \
	    $(DESTDIR)$(PREFIX)/share/idscope/models/tiny-llava
	install -m 755 build/release/idscope $(DESTDIR)$(PREFIX)/bin/
	install -m 644 build/release/libidscope.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libidscope.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libidscope.so.$(SOMAJOR)
	ln -sf libidscope.so.$(SOMAJOR) $(DESTDIR)$(PREFIX)/lib/libidscope.so
	install -m 644 include/idscope.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/idscope/*.h $(DESTDIR)$(PREFIX)/include/idscope/
	install -m 644 models/tiny-llava/* $(DESTDIR)$(PREFIX)/share/idscope/models/tiny-llava/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' scripts/idscope.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/idscope.pc
	install -d $(DESTDIR)$(PYTHONDIR)/idscope
	install -m 644 $(PY_FILES) $(DESTDIR)$(PYTHONDIR)/idscope/
uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALL_FILES))
	rm -f $(addprefix $(DESTDIR)$(PYTHONDIR)/idscope/,$(notdir $(PY_FILES)))
	rm -rf $(DESTDIR)$(PYTHONDIR)/idscope/__pycache__
	-rmdir $(DESTDIR)$(PYTHONDIR)/idscope $(DESTDIR)$(PYTHONDIR) $(dir $(DESTDIR)$(PYTHONDIR)) 2>/dev/null
	-rmdir $(DESTDIR)$(PREFIX)/share/idscope/models/tiny-llava $(DESTDIR)$(PREFIX)/share/idscope/models \
	    $(DESTDIR)$(PREFIX)/share/idscope $(DESTDIR)$(PREFIX)/include/idscope 2>/dev/null

# Fuzzing (tests/fuzz/README.md): the library again, built by clang with libFuzzer's coverage,
# ASan and UBSan (every check stops the run); one binary per harness, build/fuzz/fuzz_NAME.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
# (no unsigned-integer-overflow: the hashes wrap on purpose)
FUZZ_SAN     := -fsanitize=address,undefined,float-cast-overflow,float-divide-by-zero,integer-divide-by-zero \
                -fsanitize=signed-integer-overflow,shift,bounds,pointer-overflow,implicit-conversion \
                -fno-sanitize-recover=all
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) $(WARN) $(CSTD) $(INC)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
$(eval $(call variant,fuzz,$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_CC)))

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h build/fuzz/libidscope.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< build/fuzz/libidscope.a -o $@ $(LIBS)

fuzz-build: $(FUZZ_NAMES:%=build/fuzz/fuzz_%)

# The test suite's fuzz smoke needs the harnesses; without clang's libFuzzer it is skipped.
fuzz-build-if-clang:
	@if tests/fuzz/have_libfuzzer.sh $(FUZZ_CC); then $(MAKE) --no-print-directory fuzz-build; \
	else echo "fuzz: $(FUZZ_CC) with libFuzzer not found: the fuzz smoke will be skipped (make deps installs it)"; fi

# Every harness for FUZZ_SECONDS each (seed corpus tests/fuzz/corpus/NAME, new inputs kept in
# build/fuzz/corpus/NAME); fails on any finding (crash, leak, sanitizer report, timeout, OOM).
fuzz: fuzz-build
	@IDSCOPE_SHARED=$(SHARED) tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)

# Rewrite the seed corpora (tests/fuzz/corpus/) from their sources.
build/release/make_corpus: tests/fuzz/make_corpus.c build/release/libidscope.a
	$(CC) $(RELEASE_FLAGS) $^ -o $@ $(LIBS)

fuzz-corpus: release build/release/make_corpus
	IDSCOPE_SHARED=$(SHARED) tests/fuzz/make_corpus.sh

deps:
	@scripts/deps.sh

# Whole suite: unit tests (release), CLI tests, the install, the Python package (on the shared library),
# unit tests again under ASan+UBSan, fuzz smoke; the builds in parallel, then the suites side by side
# (TEST_JOBS lanes, default one per core: tests/run_all.sh). LLAMA_CPP: a llama.cpp checkout whose models/
# holds ggml-vocab-gemma-4.gguf (the 262144-token Gemma vocabulary tests; skipped without it).
LLAMA_CPP ?= $(HOME)/.cache/llamacpp-oracle/llama.cpp
test: release asan shared fuzz-build-if-clang
	@IDSCOPE_SHARED=$(SHARED) IDSCOPE_LLAMA_CPP=$(LLAMA_CPP) tests/run_all.sh

check: deps
	@$(MAKE) --no-print-directory test

bench: release
	build/release/bench_quant
	build/release/bench_gemm
	build/release/bench_lm
	build/release/bench_vision
	build/release/bench_vision --gemma3
	build/release/bench_vision --qwen3vl
	build/release/bench_internvl
	build/release/bench_train
ifdef LLAMA_BENCH
	@mkdir -p $(BENCH_DIR)
	@for t in f16 q8_0; do \
	    f=$(BENCH_DIR)/llava7b-4blocks-$$t.gguf; \
	    [ -s $$f ] || LLAMACPP_DIR=$$(cd "$$(dirname $(LLAMA_BENCH))/../.." && pwd) $(PYTHON) $(SHARED)/tools/make7b.py $$f 4 $$t || exit 1; \
	    if [ $$t = f16 ]; then ps="f32 bf16"; else ps="f32 int8"; fi; \
	    for p in $$ps; do \
	        build/release/idscope bench prefill -m $$f --tokens 640 --threads $(BENCH_THREADS) --precision $$p \
	            --rounds $(BENCH_ROUNDS) --compare $(LLAMA_BENCH) || exit 1; \
	    done; \
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
