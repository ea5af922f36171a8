# Car Build — the two commands a user needs:
#   make run    start everything locally (PostgreSQL found or started for you)
#   make test   the whole test suite, exactly what CI (.ci/run) runs; installs
#               what a fresh Debian 12 machine lacks first (scripts/deps.sh)
# `make help` lists the rest; `make test-quick` is the edit-loop lane.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Modules of the Go workspace (go.work). k8s/proof and observability/check
# are separate modules run with GOWORK=off (k8s/kind's modules build upstream code).
MODULES := shared catalog pricing gateway migrations dev loadtest
SERVICES := catalog pricing gateway
RUN := go run ./dev/cmd/run

.PHONY: help
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z][a-z0-9-]*:.*## /{printf "  make %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Run
.PHONY: run
run: ## build and start PostgreSQL (found or private), migrations, catalog, pricing, gateway on :8000
	@bash scripts/deps.sh run
	$(RUN)

.PHONY: build
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/carbuild/carbuild/shared/buildinfo.Version=$(VERSION) -X github.com/carbuild/carbuild/shared/buildinfo.Commit=$(COMMIT)

build: ## build bin/catalog, bin/pricing, bin/gateway, bin/migrate (version and commit stamped)
	go build -ldflags '$(LDFLAGS)' -o bin/ ./catalog/cmd/catalog ./pricing/cmd/pricing ./gateway/cmd/gateway ./migrations/cmd/migrate

.PHONY: generate
generate: ## regenerate shared/gen (Go, gRPC, grpc-gateway, OpenAPI) from shared/proto
	./scripts/generate.sh

##@ Test
# The stages of `make test`, in order; .ci/run is `make test`, so this list
# is what "the tests" are everywhere. scripts/stages.sh runs them one by one,
# stops at the first failure and prints each stage's wall time.
TEST_STAGES := deps check-generated vet lint test-go test-race test-fuzz test-observability test-k8s test-browser test-loadtest-unit test-loadtest-smoke test-kind

.PHONY: test
test: ## everything CI runs: every stage of TEST_STAGES in turn, timed (installs what is missing first)
	@bash scripts/stages.sh $(TEST_STAGES)

.PHONY: deps
deps: ## check, and install with apt when root, what make test needs (scripts/deps.sh)
	@bash scripts/deps.sh test

# The edit-loop lane: the unit and store tests of every workspace module and
# the e2e tests that cover every REST route and gRPC method once (not the
# cache, revision and fault scenarios, which wait on state changes).
QUICK_E2E := TestRESTRoutes|TestCatalogGRPC|TestPricingGRPC|TestHealthAndReflection|TestBadInput

.PHONY: test-quick
test-quick: ## fast lane for the edit loop: unit + store tests and a short e2e subset (not what CI runs)
	go test -count=1 ./shared/... ./catalog/... ./pricing/... ./gateway/... ./migrations/... ./loadtest/...
	go test -count=1 -run '^($(QUICK_E2E))$$' ./dev/e2e

.PHONY: check-generated
check-generated: ## fail when shared/gen is stale (regenerates, then compares with git)
	./scripts/generate.sh
	@if ! git diff --quiet -- shared/gen || [ -n "$$(git ls-files --others --exclude-standard shared/gen)" ]; then \
	  git status --short shared/gen; echo "shared/gen is stale: run 'make generate' and commit the result" >&2; exit 1; fi
	@echo "check-generated: shared/gen is up to date"

.PHONY: vet
vet: ## gofmt and go vet on every workspace module; every module builds, vets and is tidy with GOWORK=off
	@bad=$$(gofmt -l $(MODULES) scripts); if [ -n "$$bad" ]; then echo "gofmt needed:" $$bad >&2; exit 1; fi
	go vet $(addprefix ./,$(addsuffix /...,$(MODULES)))
	bash scripts/modcheck.sh
	GOWORK=off go vet scripts/vulngate/main.go scripts/vulngate/main_test.go

.PHONY: test-go
test-go: ## unit, store (real PostgreSQL) and end-to-end tests (real binaries over REST and gRPC)
	go test -count=1 $(addprefix ./,$(addsuffix /...,$(MODULES)))

# Packages with concurrency: the revision watcher and its test double, the
# gRPC server (stream workers, drain) and client, the catalog's cache and
# LISTEN loop and WatchRevision, pricing's parts cache and concurrent orders,
# the gateway's answer cache and REST muxes, the per-test database pool and
# the process monitor. The e2e suite adds the real binaries built with -race,
# which is where the gateway's backend health watcher (no package tests),
# the drain on SIGTERM and the stream workers under real traffic run; with
# halt_on_error a race stops the service, the tests fail and the service
# logs (with the race report) are printed. Also the load generator's
# collector, the gateway's admission guard (token buckets, in-flight bound)
# and the bearer-token key cache.
RACE_PKGS := ./catalog/catalogclient/... ./shared/grpcserver/... ./shared/grpcclient/... ./shared/lifecycle/... \
	./catalog/internal/cache/... ./catalog/internal/server/... \
	./pricing/internal/catalogclient/... ./pricing/internal/pricing/... ./pricing/internal/store/... \
	./gateway/internal/respcache/... ./gateway/internal/rest/... \
	./gateway/internal/edge/... ./shared/auth/... \
	./migrations/dbtest/... ./loadtest/internal/procmon/... ./loadtest/internal/load/...

.PHONY: test-race
test-race: ## the race detector over the packages with concurrency, and the e2e suite against race-built binaries
	go test -race -count=1 $(RACE_PKGS)
	GOFLAGS="$${GOFLAGS:-} -race" GORACE=halt_on_error=1 go test -count=1 ./dev/e2e

.PHONY: lint
lint: ## staticcheck and govulncheck over every module (pinned, installed once into ~/.cache/carbuild/tools)
	GOWORK=off go test -count=1 scripts/vulngate/main.go scripts/vulngate/main_test.go
	bash scripts/lint.sh

.PHONY: test-unit
test-unit: ## only the pure rule tables (no database)
	go test -count=1 ./pricing/internal/quote/ ./pricing/internal/money/

.PHONY: test-observability
test-observability: build ## promtool rule tests; PromQL and docs/metrics.md checked against a real scrape
	bash observability/prometheus/check.sh
	cd observability/check && GOWORK=off go test -count=1 -run Offline ./...
	$(RUN) -skip-build -exec 'cd observability/check && CARBUILD_WARMUP_URL=$$CARBUILD_URL GOWORK=off go test -count=1 ./...'

.PHONY: test-fuzz
test-fuzz: ## every native Go fuzz target for a short while (FUZZTIME, default 5s each); longer runs: docs/reliability.md
	FUZZTIME=$${FUZZTIME:-5s} bash scripts/fuzz.sh

.PHONY: test-fault
test-fault: ## only the fault tests: drain, crash, database restart, slow backend, exactly-once, roles (~2 min)
	go test -count=1 -v ./dev/fault

.PHONY: fuzz-long
fuzz-long: ## every fuzz target for 10 minutes, one at a time, niced
	FUZZTIME=$${FUZZTIME:-10m} NICE=19 PARALLEL=1 bash scripts/fuzz.sh

.PHONY: test-k8s
test-k8s: ## render every overlay, strict-decode, invariants, Tiltfile and ctlptl checks
	cd k8s/proof && GOWORK=off go test -count=1 ./...

.PHONY: test-kind
test-kind: deps ## the dev loop on a real Kind cluster, offline: Docker engine, images, ctlptl.yaml, tilt ci, every overlay, teardown
	bash k8s/kind/run.sh


.PHONY: test-browser
test-browser: build ## storefront purchase in headless Chromium against the real stack
	$(RUN) -skip-build -exec 'bash gateway/web/e2e/run.sh'

.PHONY: test-loadtest-unit
test-loadtest-unit: ## unit tests of the locustfile's checks and rules (Debian's python3-locust)
	/usr/bin/python3 -m unittest discover -s loadtest -p 'test_locustfile.py'

.PHONY: test-loadtest-smoke
test-loadtest-smoke: build ## Locust journeys for 15 s against the real stack, 0 failures required
	$(RUN) -skip-build -exec 'bash loadtest/smoke.sh'

##@ Load
.PHONY: bench
bench: ## benchmark the local stack against a bare reference; report + plots under results/ (BENCH_FLAGS=-pprof ...)
	go run ./loadtest/cmd/bench $(BENCH_FLAGS)

.PHONY: bench-overload
bench-overload: ## only the overload phase (orders at 3x their closed loop), stack and its private PostgreSQL pinned to one CPU, the generator to the other(s); plots under results/
	go run ./loadtest/cmd/bench -pin -durable-db -series= $(BENCH_FLAGS)

.PHONY: bench-floor
bench-floor: ## issue 17 target 2: the mixed journey through the gateway and through a bare relay (net/http + grpc-go to the same pricing, the gateway's floor), CPU per request of each, profiles
	go run ./loadtest/cmd/bench -series mixed,relay -rates 2000,5000 -step-duration 10s -overload-factor 0 -durable-orders-rates= -pprof $(BENCH_FLAGS)

.PHONY: bench-bigcat
bench-bigcat: ## issue 17 target 1: 1,000,000 parts over 10,000 models, uniformly random cold reads of /v1/cars/{id}/parts and /get-pecas vs a bare in-memory reference, RSS per service, EXPLAIN of the catalog's queries
	go run ./loadtest/cmd/bench -scenario bigcat $(BENCH_FLAGS)

.PHONY: loadtest
loadtest: ## Locust shopper journeys against http://127.0.0.1:8000 (start `make run` first); USERS, DURATION, API=v1|compat
	locust -f loadtest/locustfile.py --headless -u $${USERS:-100} -r $${SPAWN:-20} -t $${DURATION:-60s} \
	  --api $${API:-v1} --host $${CARBUILD_URL:-http://127.0.0.1:8000} --only-summary

.PHONY: experiments
experiments: ## the earlier experiment matrix (2,500/5,000/7,500 users) scaled by SCALE (default 0.1)
	go run ./loadtest/cmd/experiments -target local=$${CARBUILD_URL:-http://127.0.0.1:8000} -scale $${SCALE:-0.1} $(EXPERIMENTS_FLAGS)

.PHONY: clean
clean: ## remove build output
	rm -rf bin build
