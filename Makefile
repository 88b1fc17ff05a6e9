# The two commands of the README: `make demo` and `make test`. Both set up what is missing
# (scripts/setup.sh), build with the `release` preset into build/, and run.
JOBS ?= $(shell nproc)
BUILD := build

.PHONY: all setup build demo test test-cpp test-py format format-check asan clean

all: build

setup:
	@scripts/setup.sh

$(BUILD)/build.ninja: CMakeLists.txt CMakePresets.json | setup
	cmake --preset release

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo.sh

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	QLAKE_BIN=$(CURDIR)/$(BUILD)/qlake QLAKE_PYTHONPATH=$(CURDIR)/$(BUILD)/python \
	  .venv/bin/python -m pytest -q tests/python

format:
	scripts/format.sh fix

format-check:
	scripts/format.sh check

asan: setup
	cmake --preset asan && cmake --build build-asan -j $(JOBS) && cd build-asan && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-debug build-asan demo
