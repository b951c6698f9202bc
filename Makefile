# ThoughtGate developer entry points. The README's two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.package-lock.json

.PHONY: help install build typecheck lint format test test-unit bench run crds manifests dev-cluster dev-cluster-down k8s-tools net-tools a2a-peers kind-e2e clean

help:
	@echo "make run          start server-everything and the sidecar with examples/thoughtgate.yaml"
	@echo "make test         lint (types, layers, Biome, ShellCheck), then every test (unit, real MCP peers, real kube-apiserver)"
	@echo "make bench        run the benchmarks and print their numbers"
	@echo "make dev-cluster  start etcd, kube-apiserver, controller-manager and the operator (.dev/)"
	@echo "make kind-e2e     build both images and test them on a kind cluster (needs Docker, kind, helm)"
	@echo "make build | typecheck | lint | format | crds | k8s-tools | net-tools | a2a-peers | dev-cluster-down | clean"

$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(NODE_MODULES_STAMP)

build: install
	npm run build

typecheck: install
	npm run typecheck

# Typecheck (strict, noUncheckedIndexedAccess), the layer rules (.dependency-cruiser.cjs), Biome's lint
# and format check (biome.jsonc) and ShellCheck. `make test` runs it first.
lint: typecheck
	npm run depcheck
	npx biome ci .
	scripts/lint-shell.sh

# Rewrites the tree in Biome's format (what `make lint` checks).
format: install
	npx biome format --write .

# The Kubernetes binaries, helm, promtool and Jaeger (the tracing test's collector) the e2e, chart and
# tracing tests run, built once from the Go module proxy into ~/.cache/thoughtgate (cold: several
# minutes; afterwards instant).
k8s-tools:
	scripts/k8s-tools.sh install >/dev/null
	scripts/helm-tools.sh install >/dev/null
	scripts/promtool-tools.sh install >/dev/null
	scripts/jaeger-tools.sh install >/dev/null

# iptables (nft and legacy), ip, setpriv and dnsmasq from Debian's packages, for the capture tests
# (scripts/net-tools.sh; installing needs root, checking does not).
net-tools:
	scripts/net-tools.sh install

# The Python A2A client the A2A tests drive (a2a-sdk from PyPI, hash-pinned in
# scripts/a2a-python-requirements.txt) in a venv under ~/.cache/thoughtgate (scripts/a2a-python.sh;
# cold: about half a minute). The JS A2A peers are devDependencies.
a2a-peers:
	scripts/a2a-python.sh install >/dev/null

test: install lint k8s-tools net-tools a2a-peers
	scripts/run-tests.sh

test-unit: install a2a-peers
	scripts/run-tests.sh --testPathIgnorePatterns=/e2e/

bench: build
	scripts/bench.sh

run: build
	scripts/run-demo.sh

crds: build
	node dist/scripts/gen-crds.js

# deploy/thoughtgate.yaml, the plain-kubectl install, rendered from the chart with the real helm.
manifests: k8s-tools
	scripts/helm-tools.sh deploy-manifest > deploy/thoughtgate.yaml

dev-cluster: build k8s-tools
	scripts/dev-cluster.sh up

dev-cluster-down:
	scripts/dev-cluster.sh down

# Both images on a real kubelet (kind): injection, native-sidecar start order, probes, enforcement.
# Needs Docker, kind, helm and kubectl; not part of `make test` (scripts/kind-e2e.sh).
kind-e2e:
	scripts/kind-e2e.sh

clean:
	rm -rf dist .dev coverage
