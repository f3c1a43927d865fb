# The two README commands. Each runs scripts/setup first (fast when all is installed).
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: demo test build configure setup bench clean

setup:
	@scripts/setup

configure: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: configure
	@cmake --build $(BUILD) -j $(JOBS) --target retort
	$(BUILD)/retort demo

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: build
	/usr/bin/python3 bench/kd_fashion_vs_pytorch.py

clean:
	rm -rf $(BUILD)
