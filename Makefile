# aim-swift — the two commands a user needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := build

# Debian packages the build links against (and the ffmpeg CLI used by tests to make videos).
DEPS := libopenblas-dev libopenmpi-dev openmpi-bin libavcodec-dev libavformat-dev \
        libswscale-dev libavutil-dev pkg-config ffmpeg libdnnl-dev libblis4-pthread iproute2
EXECUTABLES := aim-train aim-eval aim-predict aim-model aim-data aim-report aim-bench aim-mpi-check
SWIFT ?= swift
CONFIG := release

# CI and these machines run as root; Open MPI refuses that unless told it is intended.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
# One thread per rank unless a command sets its own (2 ranks × 1 thread on 2 cores).
export OMPI_MCA_rmaps_base_oversubscribe := 1
# OpenBLAS's own threads (rarely woken: our loops run its products) sleep right after a call.
export OPENBLAS_THREAD_TIMEOUT ?= 4

.PHONY: deps build test demo bench clean check-swift

check-swift:
	@command -v $(SWIFT) >/dev/null || { echo "error: the Swift toolchain (swift 5.9 or newer) is not on PATH; install it from swift.org, then run make again" >&2; exit 1; }

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps check-swift
	$(SWIFT) build -c $(CONFIG)
	@mkdir -p bin
	@for e in $(EXECUTABLES); do ln -sf ../.build/$(CONFIG)/$$e bin/$$e; done
	@echo "executables in bin/: $(EXECUTABLES)"

# The whole suite, built once in release mode (the tests do real arithmetic). The test process
# starts with the library settings our executables give themselves (`aim-model cpu --exports`:
# OpenBLAS kernels that fit this CPU, sleeping idle threads), since it cannot restart itself.
# The tests' runs cache their GEMM choices under .build, not in the user's ~/.cache.
test: build
	eval "$$(bin/aim-model cpu --exports)"; bin/aim-model cpu; export XDG_CACHE_HOME="$(CURDIR)/.build/test-cache"; \
	$(SWIFT) test -c $(CONFIG) --disable-swift-testing 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}

demo: build
	@bash tools/demo.sh

# CPU_CLASS=avx2 benchmarks the AVX2 code paths on this machine into BENCHMARKS_AVX2.md (tools/bench.sh).
bench: build
	@CPU_CLASS=$(CPU_CLASS) bash tools/bench.sh

clean:
	rm -rf .build bin
