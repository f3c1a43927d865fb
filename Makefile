# The two README commands. Each runs scripts/setup first (fast when all is installed).
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: demo test test-asan fuzz build configure setup bench bench-lm bench-scale bench-serve bench-api bench-watermark bench-radioactivity bench-dawn bench-hostile bench-detect clean

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

# The unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, in a build of their own
# (cmake/sanitize.cmake; the runtimes' options are compiled into the test binary).
ASAN_BUILD ?= build-asan
test-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DRETORT_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target unit_tests
	cd $(ASAN_BUILD) && ctest -L unit --output-on-failure -j $(JOBS) --timeout 900

# libFuzzer over every reader of outside bytes (clang 14, ASan + UBSan; cmake/fuzz.cmake) in a
# build of its own: each target FUZZ_SECONDS from its seed corpus (tests/fuzz/corpus/<name>). New
# inputs and crash files go to $(FUZZ_OUT), never into the repository (tests/fuzz/run.sh).
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_OUT ?= $(FUZZ_BUILD)/findings
fuzz: setup
	@cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++-14 -DRETORT_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_OUT)

bench: build
	/usr/bin/python3 bench/kd_fashion_vs_pytorch.py

# Language models: training throughput vs plain PyTorch, then the distillation table
# (needs the teacher of `retort demo lm` in runs/demo-lm/teacher).
bench-lm: build
	/usr/bin/python3 bench/lm_vs_pytorch.py --retort $(BUILD)/retort
	/usr/bin/python3 bench/lm_table.py --retort $(BUILD)/retort

# 1 process x 2 threads vs 2 ranks x 1 thread, bf16 vs fp32, overlap, FLOP utilisation (~12 min)
bench-scale: build
	/usr/bin/python3 bench/scale.py --retort $(BUILD)/retort

# retort serve under a bounded load on loopback: requests/s, p50/p99, limits under concurrency,
# and p50/p99 with campaign detection off vs on (`--detection-only` runs just those rows).
bench-serve: build
	/usr/bin/python3 bench/serve_bench.py --retort $(BUILD)/retort

# Student quality by what a teacher API returns: text only, top-1/5/20 logprobs, full logits.
bench-api: build
	/usr/bin/python3 bench/api_table.py --retort $(BUILD)/retort

# Watermarks served by retort serve: bits/byte and perplexity cost, tokens to p < 1e-6, edits (~13 min).
bench-watermark: build
	/usr/bin/python3 bench/watermark_table.py --retort $(BUILD)/retort

# Radioactivity: students (8 epochs) distilled through a marked server at 100/10/5% marked data, 3 tests, 48 nulls (~2 h).
bench-radioactivity: build
	/usr/bin/python3 bench/radioactivity_table.py --retort $(BUILD)/retort

# DAWN: MLP students distilled through a classifier served with a 5% marked share, 60 null tests (~65 min).
bench-dawn: build
	/usr/bin/python3 bench/dawn_table.py --retort $(BUILD)/retort

# 100,000 mutated requests over every route of retort serve: statuses, memory before and after (~8 min).
bench-hostile: build
	/usr/bin/python3 bench/hostile_bench.py --retort $(BUILD)/retort

# Campaign detection keeps up? Audit rows scored per second (bar 10,000) by `retort guard campaigns`
# and by the worker inside retort serve, over synthetic logs of 50k/200k/500k rows (~1 min).
bench-detect: build
	/usr/bin/python3 bench/detect_bench.py --retort $(BUILD)/retort

clean:
	rm -rf $(BUILD)
