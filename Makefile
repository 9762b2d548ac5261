# h2rpc's front door. `make demo` and `make test` work on a fresh Debian 12
# machine: both install what is missing (scripts/install-deps.sh) first.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build test demo chaos bench sanitize tsan clean format

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The microservices demo (docs/microservices.md): registry, six services,
# a replica killed and a dependency failing; a summary and a plot.
demo: build
	bash scripts/demo.sh $(BUILD)

# The chaos scenarios (docs/resilience.md): each asserts its timeline and
# renders it as build/chaos/<scenario>.png.
chaos: build
	cd $(BUILD) && H2RPC_CHAOS_PLOT=1 ctest --output-on-failure -L chaos_scenario
	@ls $(BUILD)/chaos/*.png

# h2rpc side by side with gRPC C++ (scripts/bench.sh); updates docs/benchmarks.md.
bench: build
	@bash scripts/install-deps.sh --bench
	BUILD=$(BUILD) bash scripts/bench.sh

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (clang),
# leaks included.
sanitize: deps
	cmake -S . -B $(BUILD)-asan -DH2RPC_SANITIZE=ON -DCMAKE_C_COMPILER=clang $(CMAKE_FLAGS)
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# The multi-threaded tests (contexts, streams, servers with handler pools,
# h2rpc to h2rpc interop, the chain) under ThreadSanitizer (clang).
tsan: deps
	cmake -S . -B $(BUILD)-tsan -DH2RPC_TSAN=ON -DCMAKE_C_COMPILER=clang $(CMAKE_FLAGS)
	cmake --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure \
	  -j $(JOBS) -R 'unit_core_ctx|integration_|interop_c2c'

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
