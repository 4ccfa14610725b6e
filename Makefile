# weavenet: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := iproute2 iptables nftables iputils-ping procps python3-venv bind9-dnsutils
BENCH_APT := iperf3
PYTEST_ARGS ?=
REPO_ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
# interop: a Go weaver 2.8.1 (links libpcap; Go-side containers need ethtool; unshare: util-linux)
GO_WEAVER ?= $(REPO_ROOT)/../shared/anchor/weaver
INTEROP_APT := libpcap0.8 ethtool util-linux
# `make test-fast COV_ARGS=` skips coverage (about 3x faster on Python 3.11)
COV_ARGS ?= --cov=weavenet --cov-report=term-missing:skip-covered
# Opt-in: `make test NETNS_COV='--cov=weavenet --cov-append'` adds the namespace tier's coverage
# to test-fast's (combined TOTAL ~93%). Off by default: traced routers are ~50% slower, which
# exposes timing races in namespace tests.
NETNS_COV ?=

.PHONY: help deps venv lint typecheck test test-fast test-netns demo bench bench-all bench-mesh bench-sleeve bench-ipam bench-fastdp bench-scale clean

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

# test-fast: the proxy's wait-program tests need a static busybox (as the Docker and CNI tiers)
test-fast: $(STAMP) ## unit, property, simulation and loopback integration tests, with coverage
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) busybox-static"
	$(BIN)/pytest -q -n 2 -m 'not netns' --ignore=tests/netns --ignore=tests/interop --ignore=tests/docker \
	  $(COV_ARGS) $(PYTEST_ARGS)

test-netns: $(STAMP) ## namespace integration tests (root), run serially
	@$(MAKE) --no-print-directory deps
	$(BIN)/pytest -q -p no:xdist tests/netns $(NETNS_COV) $(PYTEST_ARGS)

# k8s-test: a real Kubernetes v1.20 cluster (binaries built once by scripts/k8s-build.sh into
# K8S_CACHE, outside the repository), our manifests applied, weavenet agents on 3 nodes
K8S_CACHE ?= /var/cache/weavenet-k8s
K8S_APT := containerd runc busybox-static etcd-server containernetworking-plugins openssl util-linux

.PHONY: k8s-build k8s-test
k8s-build: ## build kube-apiserver, controller-manager, scheduler, kubelet, pause into K8S_CACHE
	scripts/k8s-build.sh "$(K8S_CACHE)"

k8s-test: $(STAMP) k8s-build ## real cluster (etcd, API server, 3 kubelets+containerd): items 3-6 of issue 11
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) $(K8S_APT)"
	WEAVENET_K8S_CACHE="$(K8S_CACHE)" $(BIN)/pytest -q -p no:xdist tests/k8s $(PYTEST_ARGS)

.PHONY: bench-k8s
bench-k8s: $(STAMP) k8s-build ## pod creation to Running: weave-net vs bridge+host-local, medians of 20
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) $(K8S_APT)"
	WEAVENET_K8S_CACHE="$(K8S_CACHE)" $(BIN)/python bench/k8s_pods.py

.PHONY: interop
interop: $(STAMP) ## namespace tests against a real Go weaver: make interop GO_WEAVER=PATH
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) $(INTEROP_APT)"
	@test -f "$(GO_WEAVER)" || { echo "interop: no Go weaver at $(GO_WEAVER) (give GO_WEAVER=PATH)"; exit 2; }
	GO_WEAVER="$(abspath $(GO_WEAVER))" $(BIN)/pytest -q -p no:xdist tests/interop $(PYTEST_ARGS)

test: lint typecheck test-fast test-netns test-docker test-cni ## lint, types, all tests but interop (.ci/run runs both)

demo: $(STAMP) ## 3 hosts: mesh, IPAM attach, pings, DNS names, kill -9 + --resume; then 2 Docker hosts (--net=weave)
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) $(DOCKER_APT)"
	$(BIN)/python scripts/demo.py
	$(BIN)/python scripts/demo_docker_proxy.py

bench-mesh: $(STAMP) ## 50 routers on loopback: convergence time, RSS, idle CPU
	$(BIN)/python bench/mesh.py

bench: $(STAMP) ## data plane, one table from one run: underlay, kernel VXLAN, fastdp, fast sleeve, sleeve, Go sleeve
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BENCH_APT) $(INTEROP_APT)"
	GO_WEAVER="$(abspath $(GO_WEAVER))" $(BIN)/python bench/dataplane.py $(BENCH_ARGS)

bench-sleeve: ## the sleeve rows of `make bench`: underlay, our sleeve and Go's, plain and encrypted
	@$(MAKE) --no-print-directory bench BENCH_ARGS="--paths underlay,sleeve,sleeve-enc,go-sleeve,go-sleeve-enc $(BENCH_ARGS)"

bench-fastdp: ## the kernel rows of `make bench`: underlay, hand-made kernel VXLAN, fastdp
	@$(MAKE) --no-print-directory bench BENCH_ARGS="--paths underlay,vxlan,fastdp $(BENCH_ARGS)"

bench-ipam: $(STAMP) ## IPAM over HTTP: allocation latency/rate, launch to first allocation (vs Go)
	$(BIN)/python bench/ipam.py

bench-all: ## every benchmark in turn: bench, mesh, ipam, dns, scale, docker, cni, k8s (fails if any did)
	@rc=0; for t in bench bench-mesh bench-ipam bench-dns bench-scale bench-docker bench-cni bench-k8s; do \
	  $(MAKE) --no-print-directory $$t || { echo "make $$t: failed (exit $$?)"; rc=1; }; done; exit $$rc

clean: ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

bench-scale: $(STAMP) ## N=20,50,100 routers with the data plane, chain-started (vs Go at 20,50; BENCH_SCALE_ARGS=--sizes 50 --no-go)
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(INTEROP_APT)"
	$(BIN)/python bench/scale.py $(BENCH_SCALE_ARGS)

.PHONY: bench-startup
bench-startup: $(STAMP) ## `weave launch` -> /status, one router alone: CPU-s of CLI + router (BENCH_STARTUP_ARGS=--runs 10 --strace)
	$(BIN)/python bench/startup.py $(BENCH_STARTUP_ARGS)

.PHONY: bench-forming-hold
bench-forming-hold: $(STAMP) ## simulated chain start per topology forming hold: versions, updates, routability (BENCH_HOLD_ARGS=--routers 100 --spread 30 --overlay 2,15)
	$(BIN)/python bench/forming_hold.py $(BENCH_HOLD_ARGS)

.PHONY: bench-fastdp-observe
bench-fastdp-observe: $(STAMP) ## fastdp's drift detection: CPU of observing the kernel per round and per minute at N fake peers
	$(BIN)/python bench/fastdp_observe.py $(BENCH_FASTDP_OBSERVE_ARGS)

.PHONY: bench-dns
bench-dns: $(STAMP) ## WeaveDNS, 2 hosts: dnsperf qps/core and p99 at 20k qps (BENCH_DNS_ARGS=--realtime)
	@$(MAKE) --no-print-directory deps APT_PACKAGES="dnsperf util-linux"
	$(BIN)/python bench/dns.py $(BENCH_DNS_ARGS)

# CNI: the reference plugins (portmap, bridge, host-local), podman 4.3, containerd 1.6 + runc,
# a static busybox for the containers' root filesystem; nsenter/unshare from util-linux
CNI_APT := containernetworking-plugins podman containerd runc busybox-static util-linux curl
.PHONY: test-cni
test-cni: $(STAMP) ## CNI plugin: conformance suite, podman + ctr on two hosts, missed-DEL GC (root)
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) $(CNI_APT)"
	$(BIN)/pytest -q -p no:xdist tests/cni $(PYTEST_ARGS)

.PHONY: bench-cni
bench-cni: $(STAMP) ## CNI plugin wall time per ADD/DEL/VERSION vs bridge + host-local (root)
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) $(CNI_APT)"
	$(BIN)/python bench/cni.py
# Docker tier: Debian's docker.io (dockerd + client at /usr/sbin, /usr/bin) and busybox-static
DOCKER_APT := docker.io busybox-static util-linux
.PHONY: test-docker
test-docker: $(STAMP) ## real dockerd per host: plugin, weave attach, restarts (Docker tier)
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) $(DOCKER_APT)"
	$(BIN)/pytest -q -p no:xdist tests/docker $(PYTEST_ARGS)

# Docker API proxy benchmark (dproxy): medians of 20 interleaved runs per way
.PHONY: bench-docker
bench-docker: $(STAMP) ## docker run --rm IMAGE true on a stock dockerd: direct, via the proxy, --net=weave (<=150 ms over direct)
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) $(DOCKER_APT)"
	$(BIN)/python bench/docker.py
