# amlfw developer entry points. `sudo make demo` and `sudo make test` do all the set-up.
BUILD ?= build
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 20

ifeq ($(CI),true)
CMAKE_FLAGS += -DAMLFW_WERROR=ON
endif

.PHONY: all deps build test unit e2e fuzz bench demo install package clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja $(BUILD)/Makefile:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

# Every test: unit, privileged end-to-end (root), fuzzers for a bounded time.
test: build
	cd $(BUILD) && ctest --output-on-failure -j 1
	$(MAKE) fuzz

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)

e2e: build
	cd $(BUILD) && ctest --output-on-failure -L e2e

fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DAMLFW_FUZZ=ON -DAMLFW_BENCH=OFF -DAMLFW_TESTS=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	bash bench/run.sh $(BUILD)

demo: build
	bash demo/demo.sh $(BUILD)/amlfw

install: build
	cmake --install $(BUILD)

# A .deb (CPack, DEB generator) in $(BUILD): amlfw_<version>_<arch>.deb. See docs/install.md.
package: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS) --target amlfw
	cd $(BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
