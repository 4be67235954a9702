# Thin front end over CMake; `make build`, `make run`, `make test` are the documented entry points.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: deps build run test fuzz bench clean

deps:
	scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/bin/ingotd --listen 127.0.0.1:9292 --data-dir $${INGOT_DATA_DIR:-$$HOME/.local/share/ingot}

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 1200

fuzz:
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINGOT_FUZZ=ON \
	  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang
	cmake --build build-fuzz -j $(JOBS) --target fuzz_targets

bench: build
	bench/run.sh

clean:
	rm -rf $(BUILD) build-fuzz
