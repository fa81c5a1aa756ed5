# WNFlow — two commands on a fresh Debian machine: `make demo`, `make test`.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
APT_PACKAGES := libgsl-dev libglpk-dev libopenblas-dev gnuplot-nox pkg-config
BIN := .build/release/wnflow
DEMO_OUT ?= out/demo

.PHONY: deps build release demo test bench clean

# Install the Debian packages that are missing (apt-get update first).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "dependencies present: $(APT_PACKAGES)"; fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

demo: release
	$(BIN) reproduce figure2 --quick --out $(DEMO_OUT)
	@echo "plot: $(DEMO_OUT)/figure2.png (.svg)  summary: $(DEMO_OUT)/summary.md  data: $(DEMO_OUT)/figure2.csv"

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: release
	python3 -c "import numpy, scipy" 2>/dev/null || pip install numpy scipy
	$(BIN) bench --out out/bench.json
	python3 Benchmarks/compare_scipy.py

clean:
	rm -rf .build out
