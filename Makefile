# The README's quick start: `make run` and `make test`. Both install missing Debian packages.
BUILD       ?= build
FUZZ_BUILD  ?= build-fuzz
SAN_BUILD   ?= build-asan
CMAKE_FLAGS ?=
JOBS        ?= $(shell nproc)
CONFIG      ?= config/examples/wmcs.yaml
FUZZ_SECONDS ?= 20

.PHONY: all deps build run test test-unit fuzz sanitize bench bench-load install clean

all: build

deps:
	@scripts/install-deps.sh $(if $(shell command -v clang++ 2>/dev/null),--with-fuzz,)

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

LISTEN ?= 127.0.0.1:9595

# Runs the daemon in the foreground on the example configuration (Ctrl-C stops it).
run: build
	$(BUILD)/bin/alertrouterctl check-config $(CONFIG)
	@scripts/run-hint.sh $(LISTEN)
	exec $(BUILD)/bin/alertrouterd --config $(CONFIG) --listen $(LISTEN) --state-dir $(BUILD)/state

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	@if command -v clang++ >/dev/null 2>&1; then $(MAKE) --no-print-directory fuzz; \
	 else echo "clang++ not found: fuzz targets ran only as corpus replays"; fi

# libFuzzer targets, each run for FUZZ_SECONDS from its seed corpus.
fuzz: deps
	CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DALERTROUTER_FUZZ=ON \
	  -DALERTROUTER_FUZZ_SECONDS=$(FUZZ_SECONDS) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -L fuzz -j $(JOBS)

# All tests under AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize: deps
	cmake -S . -B $(SAN_BUILD) -G Ninja -DALERTROUTER_SANITIZE=ON -DALERTROUTER_BENCH=OFF \
	  -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(SAN_BUILD) -j $(JOBS)
	ctest --test-dir $(SAN_BUILD) --output-on-failure -j $(JOBS)

bench: build
	bench/run.sh $(BUILD)

# Load benchmark: alertrouterd (Release, in build-release) against Alertmanager's own ingest, with
# wrk (closed loop) and bench/load/loadgen (fixed rate); see bench/README.md "Load benchmark".
# LOADBENCH_* variables tune bench/load/run.sh. Only the targets it runs are built.
RELEASE_BUILD ?= build-release
bench-load: deps
	cmake -S . -B $(RELEASE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DALERTROUTER_TESTS=OFF \
	  -DALERTROUTER_BENCH=ON $(CMAKE_FLAGS)
	cmake --build $(RELEASE_BUILD) -j $(JOBS) --target alertrouterd loadgen cpu_probe null_server
	bench/load/run.sh $(RELEASE_BUILD)

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD) $(SAN_BUILD)
