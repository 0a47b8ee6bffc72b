# topk — the two commands: `make run` and `make test`.
# Everything else is a step of those two, or an operator's tool.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
TOPK := bin/topk
# Packages whose tests share the real servers run one at a time.
INTEGRATION_FLAGS ?= -tags integration -count=1 -p 1 -timeout 18m -run Integration
# The packages with integration tests (files tagged integration), not
# ./...: the other packages' tests are unit tests, already run by `make
# unit`, and compiling and linking their test binaries again with the tag
# cost minutes of a fresh clone's `make test` (44 of 61 packages). Without
# git (a tarball): ./... .
INTEGRATION_PKGS ?= $(or $(shell git grep -l '^//go:build integration' -- '*_test.go' 2>/dev/null | xargs -r -n1 dirname | sort -u | sed 's|^|./|'),./...)

.PHONY: help build run test vet unit integration infra-up infra-down infra-status infra-reset bench-ingest bench-latency bench-lb bench-rollup \
        topics migrate compose-check produce clean cluster-up cluster-down cluster-status cluster-reset cluster-env pyenv

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/topk
	$(GO) build -o $(TOPK) ./cmd/topk

# Simulated listeners `make run` registers (their history is crawled, then
# they keep listening).
RUN_USERS ?= 200
# Development defaults of make run only: a generated token key (said so in
# the log) and a known admin password for the browser UIs. The terminal
# shows a status line every 5 s, warnings and errors; the whole log goes
# to $TOPK_RUNTIME_DIR/logs/topk.log (the previous run's: topk.log.1).
# `TOPK_LOG_FILE= make run` puts the whole log on the terminal again,
# TOPK_STATUS_INTERVAL=0s turns the status line off.
RUN_ENV = TOPK_DEV_MODE=$${TOPK_DEV_MODE:-1} TOPK_ADMIN_TOKEN=$${TOPK_ADMIN_TOKEN:-topk-dev} \
	TOPK_LOG_FILE=$${TOPK_LOG_FILE-$${TOPK_RUNTIME_DIR:-.runtime}/logs/topk.log} TOPK_STATUS_INTERVAL=$${TOPK_STATUS_INTERVAL:-5s}
run: build infra-up topics migrate ## start the local stack, create topics and schemas, register simulated users, run everything
	@$(RUN_ENV); if [ -n "$$TOPK_LOG_FILE" ] && [ -f "$$TOPK_LOG_FILE" ]; then mv -f "$$TOPK_LOG_FILE" "$$TOPK_LOG_FILE.1"; fi
	$(RUN_ENV) $(TOPK) seed --users $(RUN_USERS)
	@$(RUN_ENV) deploy/local/banner.sh
	$(RUN_ENV) $(TOPK) all

test: build vet unit integration ## vet + unit tests (-race) + integration tests on the real stack

vet: ## go vet of every file: the tags integration and cluster add the integration and cluster suites to the plain files
	$(GO) vet -tags 'integration cluster' ./...

# The test targets keep their output in .runtime/*.log and, when a test
# fails, print its failures again at the end (deploy/local/test-failures.sh).
unit: ## unit tests with the race detector
	@mkdir -p .runtime
	set -o pipefail; $(GO) test -race -count=1 ./... 2>&1 | tee .runtime/unit.log || { deploy/local/test-failures.sh .runtime/unit.log; exit 1; }

integration: build infra-up pyenv ## integration tests against the real Kafka, Cassandra, Redis, PostgreSQL
	set -o pipefail; TOPK_PYTHON=$(PYENV)/bin/python $(GO) test $(INTEGRATION_FLAGS) $(INTEGRATION_PKGS) 2>&1 | tee .runtime/integration.log || { deploy/local/test-failures.sh .runtime/integration.log; exit 1; }

# A Python virtual environment with the ListenBrainz client library the
# ListenBrainz api's integration test drives (cmd/topk/testdata/); no
# system-wide pip. Made again when the requirements change.
PYENV := $(CURDIR)/.runtime/pyenv
pyenv: $(PYENV)/.installed ## the Python environment of the client-library tests (liblistenbrainz)
$(PYENV)/.installed: cmd/topk/testdata/requirements.txt
	python3 -m venv $(PYENV)
	$(PYENV)/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

# The chaos suite (processors/chaos_integration_test.go, TestIntegrationChaos…)
# is part of `make integration`; `make chaos` runs it alone and longer.
.PHONY: chaos
chaos: build infra-up ## the chaos suite, longer (TOPK_CHAOS_SOAK=1): 6 broker kills, a 4-minute broker pause, 100 service-kill rounds
	TOPK_CHAOS_SOAK=1 $(GO) test -tags integration -count=1 -p 1 -timeout 90m -run TestIntegrationChaos -v ./processors/

# The cluster chaos suite (processors/cluster_integration_test.go, build
# tags integration+cluster): broker kill -9, a Cassandra node down, an
# aggregator joining while a copy dies, on the local three-node cluster.
.PHONY: test-cluster
test-cluster: build cluster-up ## the cluster chaos suite on the local three-broker, three-node cluster (make cluster-up)
	eval "$$(deploy/local/cluster.sh env)"; \
	$(GO) test -tags 'integration cluster' -count=1 -p 1 -timeout 45m -run TestCluster -v ./processors/

infra-up: build ## start Kafka, Cassandra, Redis, PostgreSQL on 127.0.0.1 (idempotent)
	deploy/local/stack.sh up

infra-down: build ## stop exactly the processes infra-up started
	deploy/local/stack.sh down

infra-status: build ## show what runs where and whether it answers
	deploy/local/stack.sh status

infra-reset: build ## stop the stack and wipe its data (downloaded jars stay cached)
	deploy/local/stack.sh reset

# A local three-broker, three-node cluster (Kafka 127.0.0.1:9192-9194,
# Cassandra 127.0.0.1-3:9142) beside the single-node stack, under
# $(TOPK_CLUSTER_DIR) (default .runtime/cluster). Chaos helpers:
# deploy/local/cluster.sh kill9|start|stop|pid kafka|cassandra N.
cluster-up: build ## start the local 3-broker Kafka + 3-node Cassandra cluster, wait until it is whole (idempotent)
	deploy/local/cluster.sh up

cluster-down: build ## stop the cluster's six servers
	deploy/local/cluster.sh down

cluster-status: build ## each cluster server: pid, address, answering or not, RSS
	deploy/local/cluster.sh status

cluster-reset: build ## stop the cluster and wipe its data (jars stay cached)
	deploy/local/cluster.sh reset

cluster-env: ## print export lines that point topk at the cluster (eval them)
	@deploy/local/cluster.sh env

topics: build ## create or reconcile the Kafka topics
	$(TOPK) topics

migrate: build ## apply the Cassandra and PostgreSQL schemas
	$(TOPK) migrate

# docker-compose.yml requires the two secrets; placeholders suffice to check it.
compose-check: ## validate docker-compose.yml and docker-compose.cluster.yml without an engine
	TOPK_TOKEN_KEY=placeholder TOPK_ADMIN_TOKEN=placeholder docker-compose -f docker-compose.yml --profile tools config -q
	docker-compose -f docker-compose.cluster.yml config -q

# make produce LISTEN='{"user_id":"alice",...}' — one JSON line into user.listen.raw
produce: build ## send $(LISTEN) to user.listen.raw with the real kafka-console-producer
	@eval "$$($(TOPK) config --shell)"; \
	echo '$(LISTEN)' | bin/kafka-console-producer --bootstrap-server "$${TOPK_KAFKA_BROKERS}" --topic user.listen.raw

clean: ## remove build output (not the stack's data: see infra-reset)
	rm -f $(TOPK)

# Benchmarks: each prints its figures beside a reference measured in the same run.
BENCH_N ?= 1000000
bench-ingest: build infra-up ## listens/s of ingest+aggregator vs a minimal Goka processor and kafka-consumer-perf-test; topk sitewide's listens/s ÷ the aggregator's
	$(GO) run ./bench/ingest -n $(BENCH_N)

bench-latency: build infra-up ## produce-to-chart latency p50/p99 at 2,000 listens/s, per user and sitewide, vs Kafka's EndToEndLatency tool
	$(GO) run ./bench/latency

# The ListenBrainz api: single-listen submissions at a fixed rate, each
# timed until the user's listen-count shows it, beside EndToEndLatency.
BENCH_LB_RATE ?= 500
BENCH_LB_DURATION ?= 30s
bench-lb: build infra-up ## ListenBrainz submit-to-chart latency p50/p99 at $(BENCH_LB_RATE) submissions/s vs Kafka's EndToEndLatency tool
	$(GO) run ./bench/listenbrainz -rate $(BENCH_LB_RATE) -duration $(BENCH_LB_DURATION)

# A ten-year Spotify archive through `topk import` until every range
# answers exactly (today, 7d, this_year, each past year, all), beside
# kafka-producer-perf-test sending the same listens.
BENCH_IMPORT_STREAMS ?= 150000
.PHONY: bench-import
bench-import: build infra-up ## time from `topk import` of a 10-year Spotify archive ($(BENCH_IMPORT_STREAMS) streams) until every range answers exactly (goal 30 s) vs kafka-producer-perf-test
	$(GO) run ./bench/import -streams $(BENCH_IMPORT_STREAMS)

BENCH_REIMPORT_N ?= 100000
.PHONY: bench-reimport
bench-reimport: build infra-up ## changelog bytes of re-importing $(BENCH_REIMPORT_N) counted listens vs their first import
	$(GO) run ./bench/reimport -n $(BENCH_REIMPORT_N)

# Recovery: time to ready and peak RSS of the api's view and of an
# aggregator copy (empty local store, own local store) at BENCH_RECOVERY_BASE
# user-days and after BENCH_RECOVERY_EXTRA more of older history.
BENCH_RECOVERY_BASE ?= 1000000
BENCH_RECOVERY_EXTRA ?= 5000000
.PHONY: bench-recovery
bench-recovery: build infra-up ## time to ready + RSS of the view and an aggregator copy at 1M and 6M user-days (same recent days)
	$(GO) run ./bench/recovery -base $(BENCH_RECOVERY_BASE) -extra $(BENCH_RECOVERY_EXTRA)

# Scale-out: listens/s of 1, 2 and 3 aggregator copies (own processes, state
# directories and ops ports) on one backlog, then freshness p99 while a copy
# joins and one leaves, on the brokers TOPK_KAFKA_BROKERS names (the
# single-node stack, or the cluster after `eval "$(make -s cluster-env)"`,
# in which case the single-node stack is not started).
BENCH_SCALEOUT_N ?= 1000000
BENCH_SCALEOUT_RATE ?= 2000
.PHONY: bench-scaleout
bench-scaleout: build $(if $(TOPK_KAFKA_BROKERS),,infra-up) ## aggregator listens/s with 1, 2, 3 copies on $(BENCH_SCALEOUT_N) listens; freshness p99 while copies join and leave
	$(GO) run ./bench/scaleout -n $(BENCH_SCALEOUT_N) -rate $(BENCH_SCALEOUT_RATE)

BENCH_CRAWL_USERS ?= 10000
.PHONY: bench-crawl
bench-crawl: build infra-up ## crawl $(BENCH_CRAWL_USERS) simulated users from a local server vs a bare sarama producer
	$(GO) run ./bench/crawl -users $(BENCH_CRAWL_USERS)

# The Cassandra sinks (raw writer, flusher) on an imported backlog, beside a
# bare gocql writer of the same rows in the same run.
BENCH_SINKS_N ?= 1000000
BENCH_SINKS_USERS ?= 10000
BENCH_SINKS_DAYS ?= 100
.PHONY: bench-sinks
bench-sinks: build infra-up ## raw writer rows/s, flusher user-days/s on $(BENCH_SINKS_N) imported listens vs a bare gocql writer
	$(GO) run ./bench/sinks -n $(BENCH_SINKS_N) -users $(BENCH_SINKS_USERS) -days $(BENCH_SINKS_DAYS)

# The sitewide rollup recompute after old history is rolled up: flushes of
# new rows into rolled-up months, each flush's recompute beside its own write.
.PHONY: bench-rollup
bench-rollup: infra-up ## sitewide rollup recompute (RollupTouched) time vs the flush's own write, after 100k rows of 2024-2025 were rolled up
	$(GO) run ./bench/rollup

# The Top-K api: requests at a fixed rate beside a trivial echo handler, and
# bounded fuzzing of its query parameters (the seeds also run in `make unit`).
BENCH_API_RATE ?= 1000
.PHONY: bench-api fuzz-api
bench-api: build infra-up ## api p50/p99 at $(BENCH_API_RATE) req/s (view, rollups, Cassandra; sitewide 7d/30d, 365d/all, old) vs a trivial echo handler, and under a 2,000 req/s attacker (limits on and off)
	$(GO) run ./bench/api -rate $(BENCH_API_RATE)

fuzz-api: ## fuzz the api's query parameters for 30 s (no 5xx, every 400 names its parameter)
	$(GO) test ./api -run '^$$' -fuzz FuzzQuery -fuzztime 30s
