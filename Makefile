# weavenet: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := iproute2 iptables nftables iputils-ping procps python3-venv bind9-dnsutils
BENCH_APT := iperf3
PYTEST_ARGS ?=

.PHONY: help deps venv lint typecheck test test-fast test-netns demo bench bench-mesh bench-sleeve bench-ipam bench-fastdp clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

deps: ## install the Debian packages the tests and demo need (root)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv with pinned dependencies

lint: $(STAMP) ## ruff check + format check
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench

typecheck: $(STAMP) ## mypy (strict on weavenet.core)
	$(BIN)/mypy

test-fast: $(STAMP) ## unit, property, simulation and loopback integration tests
	$(BIN)/pytest -q -n 2 -m 'not netns' --ignore=tests/netns $(PYTEST_ARGS)

test-netns: $(STAMP) ## namespace integration tests (root), run serially
	$(BIN)/pytest -q -p no:xdist tests/netns $(PYTEST_ARGS)

test: lint typecheck test-fast test-netns ## everything CI runs: lint, types, all tests

demo: $(STAMP) ## 3 hosts, full mesh, containers attached by IPAM, pings, kill -9 + --resume; tears down
	$(BIN)/python scripts/demo.py

bench-mesh: $(STAMP) ## 50 routers on loopback: convergence time, RSS, idle CPU
	$(BIN)/python bench/mesh.py

bench-sleeve: $(STAMP) ## data plane, 2 hosts: iperf3 + ping over underlay, plain and encrypted sleeve
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BENCH_APT)"
	$(BIN)/python bench/sleeve.py

bench-ipam: $(STAMP) ## IPAM over HTTP: allocation latency/rate, launch to first allocation (vs Go)
	$(BIN)/python bench/ipam.py

bench-fastdp: $(STAMP) ## data plane side by side: underlay, hand-made kernel VXLAN, fastdp, sleeve
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BENCH_APT)"
	$(BIN)/python bench/fastdp.py

bench: bench-mesh bench-sleeve bench-fastdp bench-ipam bench-dns ## all benchmarks (results go to BENCHMARKS.md by hand)

clean: ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: bench-dns
bench-dns: $(STAMP) ## WeaveDNS, 2 hosts: dnsperf qps/core and p99 at 20k qps (BENCH_DNS_ARGS=--realtime)
	@$(MAKE) --no-print-directory deps APT_PACKAGES="dnsperf util-linux"
	$(BIN)/python bench/dns.py $(BENCH_DNS_ARGS)
