# The two commands the README promises: `make demo` and `make test`.
# Each installs missing packages, configures and builds before it runs.
#   make test SANITIZE=1   builds in build-asan/ with ASan and UBSan
#   make fuzz FUZZ_SECONDS=60   runs the libFuzzer targets for a bounded time
BUILD ?= build
SANITIZE ?= 0
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
# Every libFuzzer target in tests/fuzz/ (without the fuzz_ prefix).
FUZZ_TARGETS := envelope status gw_coap edge_answers meta stream batch keyring cfgfile \
	psk stores nodecfg records bootenv

ifeq ($(SANITIZE),1)
BUILD := build-asan
CMAKE_EXTRA := -DFERRY_SANITIZE=ON
endif

.PHONY: all deps build test demo fuzz format format-check shellcheck clean

all: build

deps:
	@scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_EXTRA) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

demo: build
	scripts/demo.sh $(BUILD)

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DFERRY_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

# Every tracked shell script: *.sh and the extensionless ones with a shell
# shebang (CI, deploy hooks, test tools).
SHELL_SCRIPTS = $(shell git ls-files '*.sh'; git ls-files | grep -v '\.sh$$' | \
	xargs -r grep -lsE '^\#!.*(env bash|/bash|/sh)' 2>/dev/null)

shellcheck: deps
	shellcheck -x -S warning $(SHELL_SCRIPTS)

clean:
	rm -rf build build-asan build-fuzz
