# Musubi — the two commands a new user needs are `make demo` and `make test`.
# Both set up what they need: Debian's clickhouse-server (installed with
# apt-get when missing) started on private ports by deployments/local.

GO          ?= go
BIN         := bin/musubi
CH          := deployments/local/clickhouse.sh
CLUSTER     := deployments/local/cluster.sh
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
export MUSUBI_CLICKHOUSE_ADDR ?= 127.0.0.1:19000
FUZZTIME    ?= 3s
# The build's identity, printed by `musubi version` and exported as musubi_build_info.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE  ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS     := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(BUILD_DATE)

.PHONY: all build demo eval rules-artifact ui-screenshots test test-unit test-fuzz fuzz-nightly test-faults test-cluster lint chromium test-tools clickhouse-start clickhouse-stop cluster-start cluster-stop bench bench-quick bench-split clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/musubi

## demo: the main job — local ClickHouse, embedded Kafka, the engine, a sample attack; serves until Ctrl-C.
demo: build clickhouse-start
	./$(BIN) demo

## test: every test — unit, integration against the real ClickHouse and kfake, race detector, short fuzzing.
test: clickhouse-start chromium test-tools
	MUSUBI_REQUIRE_CLICKHOUSE=1 MUSUBI_REQUIRE_BROWSER=1 MUSUBI_REQUIRE_PROMTOOL=1 MUSUBI_REQUIRE_SHELLS=1 $(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory test-fuzz

test-fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

## eval: the detection-quality scorecard — generates EVAL_N scenarios (every attack variant and
## benign days) into .local/eval, replays them and testdata/scenarios in three orders, checks issue 15's thresholds.
EVAL_N    ?= 36
EVAL_SEED ?= 1
eval: build
	rm -rf .local/eval
	./$(BIN) eval -generate $(EVAL_N) -seed $(EVAL_SEED) -out .local/eval
	./$(BIN) eval -rules detections .local/eval testdata/scenarios

## fuzz-nightly: every Fuzz target for 5 minutes each (FUZZTIME overrides); for a nightly job.
fuzz-nightly:
	@scripts/fuzz.sh $(if $(filter command line environment,$(origin FUZZTIME)),$(FUZZTIME),5m)

## test-faults: the fault-injection suite (kill -9, database outage and slowness, broker faults,
## rebalances, restarts mid attack, hostile input); MUSUBI_FAULT_OUTAGE sets the outage (default 60s).
## Only the tests behind the faults build tag run; make test runs the rest.
FAULT_FILES = $(shell grep -rl '^//go:build faults' --include='*_test.go' .)
FAULT_TESTS = $(shell grep -ho '^func Test[A-Za-z0-9_]*' $(FAULT_FILES) | sed 's/^func //' | paste -sd'|')
FAULT_PKGS = $(sort $(dir $(FAULT_FILES)))
test-faults: clickhouse-start
	MUSUBI_REQUIRE_CLICKHOUSE=1 $(GO) test -count=1 -tags faults -timeout 20m -v -run '^($(FAULT_TESTS))$$' $(FAULT_PKGS)

## test-cluster: the replicated-cluster suite — starts deployments/local/cluster.sh (ZooKeeper from
## Debian's zookeeper package, two replicas of shard 1 and one of shard 2, on private ports) and runs
## the tests behind the cluster build tag: migrations ON CLUSTER run twice, the writer, the API's
## reads equal to the single server's, the Grafana panels, a replica of shard 1 stopped during writes.
CLUSTER_FILES = $(shell grep -rl '^//go:build cluster' --include='*_test.go' .)
CLUSTER_TESTS = $(shell grep -ho '^func Test[A-Za-z0-9_]*' $(CLUSTER_FILES) | sed 's/^func //' | paste -sd'|')
CLUSTER_PKGS = $(sort $(dir $(CLUSTER_FILES)))
test-cluster: clickhouse-start cluster-start
	env $$($(CLUSTER) env) MUSUBI_REQUIRE_CLICKHOUSE=1 $(GO) test -race -count=1 -tags cluster -timeout 20m -v -run '^($(CLUSTER_TESTS))$$' $(CLUSTER_PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## bench: the end-to-end benchmark (engine on one core, 10–1000 rules, ceiling, detection latency, stage costs); writes BENCHMARKS.md (about 30 minutes).
bench: build clickhouse-start
	$(GO) build -o bin/musubi-bench ./bench/cmd/musubi-bench
	./bin/musubi-bench -engine $(BIN) -out BENCHMARKS.md

## bench-split: only the split-roles numbers (-role all reference, detect ×1 and ×2 with one correlate, each 3 times; latency with the signals hop; the commit fence); replaces that section of BENCHMARKS.md (about 20 minutes on an idle machine).
bench-split: build clickhouse-start
	$(GO) build -o bin/musubi-bench ./bench/cmd/musubi-bench
	./bin/musubi-bench -only-split -engine $(BIN) -events 60000 -max-run 300s -out BENCHMARKS.md

## bench-quick: a fast check of the same (under two minutes); prints a summary, report in .local/bench/.
bench-quick: build clickhouse-start
	$(GO) build -o bin/musubi-bench ./bench/cmd/musubi-bench
	./bin/musubi-bench -quick -engine $(BIN)

## ui-screenshots: the console's screenshots in docs/img (docs/ui.md), taken by its browser tests on the demo incident.
ui-screenshots: clickhouse-start chromium
	MUSUBI_UI_DOCS=1 MUSUBI_REQUIRE_CLICKHOUSE=1 MUSUBI_REQUIRE_BROWSER=1 $(GO) test -count=1 -run '^(TestUIIncidentStory|TestUIWorkflowKeepsWork)$$' -v ./cmd/musubi/ | grep -E 'first paint|graph at|^(---|ok|FAIL)'

## chromium: Debian's headless Chromium, which the console's browser tests drive (installed with apt-get when missing).
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
		if ! command -v apt-get >/dev/null 2>&1; then echo "chromium is missing and this system has no apt-get; install Chromium for the browser tests"; exit 1; fi; \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		echo "installing Debian's chromium (apt-get) for the console's browser tests"; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi

## test-tools: Debian's promtool (package prometheus), which tests the shipped alert rules, and zsh and
## fish, which load the completion scripts; installed with apt-get when missing.
TEST_TOOLS = promtool:prometheus zsh:zsh fish:fish
test-tools:
	@missing=""; for t in $(TEST_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		if ! command -v apt-get >/dev/null 2>&1; then echo "missing:$$missing, and this system has no apt-get; install them for the alert rule and completion tests"; exit 1; fi; \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		echo "installing Debian's$$missing (apt-get) for the alert rule and completion tests"; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## rules-artifact: lint and test the detection pack (detections/), then push it with oras as an OCI
## artifact to RULES_REF (make rules-artifact RULES_REF=ghcr.io/acme/musubi-rules:v1), which the chart's
## rules.oci pulls (docs/deploy.md, "Rules as an OCI artifact"). Log in first: oras login REGISTRY.
RULES_REF           ?=
RULES_ARTIFACT_TYPE := application/vnd.musubi.rules.v1
rules-artifact: build
	@test -n "$(RULES_REF)" || { echo "set RULES_REF=registry/repository:tag"; exit 1; }
	@command -v oras >/dev/null 2>&1 || { echo "oras is missing (https://oras.land/docs/installation)"; exit 1; }
	./$(BIN) rules lint detections
	./$(BIN) rules test detections
	oras push $(RULES_REF) --artifact-type $(RULES_ARTIFACT_TYPE) \
		--annotation org.opencontainers.image.revision=$(COMMIT) \
		--annotation org.opencontainers.image.version=$(VERSION) \
		--annotation org.opencontainers.image.source=https://github.com/musubi-xdr/musubi \
		detections

clickhouse-start:
	@$(CH) start

clickhouse-stop:
	@$(CH) stop

## cluster-start / cluster-stop: the local replicated cluster of make test-cluster (data in .local/cluster).
cluster-start:
	@$(CLUSTER) start

cluster-stop:
	@$(CLUSTER) stop

clean:
	rm -rf bin
