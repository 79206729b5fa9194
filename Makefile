# Stoa developer entry points. See docs/services.md for the test servers.

SHELL := /bin/bash
GO ?= go
SERVICES := integration/services

# Addresses of the real test servers (started by `make test` / `make services-up`).
STOA_TEST_CASSANDRA ?= 127.0.0.1:9042
STOA_TEST_OPENSEARCH ?= http://127.0.0.1:9200

GO_FILES = $(shell find . -name '*.go' -not -path './.cache/*' -not -path './vendor/*')

.PHONY: build run services-up services-down services-status test test-short bench lint fuzz

build:
	$(GO) build -o bin/stoa ./cmd/stoa

run: build
	./bin/stoa serve

# Start Cassandra and OpenSearch for tests and leave them running (data in .cache/run).
services-up:
	$(SERVICES)/with-services.sh --up

# Stop the servers started by services-up (servers started some other way are left alone).
services-down:
	$(SERVICES)/with-services.sh --down

services-status:
	$(SERVICES)/with-services.sh --status

# Full test suite against real servers: starts those not already running, stops
# (only) those it started, even when tests fail; exits with the tests' status.
test:
	STOA_TEST_CASSANDRA=$(STOA_TEST_CASSANDRA) STOA_TEST_OPENSEARCH=$(STOA_TEST_OPENSEARCH) \
		$(SERVICES)/with-services.sh bash -c '\
		$(GO) test -race -count=1 -timeout 25m ./... && \
		echo "== large-mailbox contract tests (without -race, which slows them ~10x)" && \
		$(GO) test -count=1 -timeout 20m -run "TestContract/LargeMailbox" ./storage/...'

test-short:
	$(GO) test -short -count=1 ./...

# Reproducible load; prints figures. Storage (embedded and Cassandra), SMTP
# delivery with postfix's smtp-source, IMAP, indexing and search. Cassandra and
# OpenSearch are started for it like for make test.
bench:
	STOA_TEST_CASSANDRA=$(STOA_TEST_CASSANDRA) STOA_TEST_OPENSEARCH=$(STOA_TEST_OPENSEARCH) \
		$(SERVICES)/with-services.sh bash -c '\
		echo "== storage: embedded"; $(GO) test -run "^$$" -bench . -benchtime 3000x ./storage/embedded/ && \
		echo "== storage: cassandra"; $(GO) test -run "^$$" -bench . -benchtime 500x ./storage/cassandra/ && \
		echo "== smtp"; $(MAKE) --no-print-directory bench-smtp && \
		echo "== imap"; $(MAKE) --no-print-directory bench-imap && \
		echo "== index"; $(MAKE) --no-print-directory bench-index && \
		echo "== index sidecar"; $(MAKE) --no-print-directory bench-sidecar && \
		echo "== search over IMAP"; $(MAKE) --no-print-directory bench-imap-search'

lint:
	@out="$$(gofmt -l $(GO_FILES))"; if [[ -n "$$out" ]]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then echo staticcheck ./...; staticcheck ./...; \
	else echo "staticcheck not installed: skipped (go install honnef.co/go/tools/cmd/staticcheck@latest)"; fi

# Every fuzz target in the tree, FUZZTIME each (go test allows one -fuzz
# target per run). Their seed corpora also run in make test as plain tests.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./.cache/' | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -h '^func Fuzz' $$pkg/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "== $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# IMAP figures on the embedded engine: ops/s with 10 clients, RSS per IDLE
# connection (STOA_BENCH_IDLE_CONNS, default 2000), UID FETCH 1:1000 latency.
.PHONY: bench-imap
bench-imap:
	$(GO) test ./integration/ -run '^$$' -bench 'BenchmarkIMAP(Ops|IdleMemory|Fetch1000)$$' -benchtime=1x -timeout 30m -v

# IMAP UID SEARCH TEXT on a generated mailbox of STOA_BENCH_SEARCH_N messages (default 100,000)
# imported into the real server and indexed by it: Bleve, and OpenSearch with STOA_TEST_OPENSEARCH.
.PHONY: bench-imap-search
bench-imap-search:
	STOA_TEST_OPENSEARCH=$(STOA_TEST_OPENSEARCH) $(GO) test ./integration/ -run '^$$' -bench 'BenchmarkIMAPSearchText$$' -benchtime=1x -timeout 60m

# Inbound SMTP throughput with Postfix's smtp-source (20 sessions, 20,000
# messages of 4 KiB over 100 recipients); STOA_STORAGE_ENGINE=cassandra too.
.PHONY: bench-smtp
bench-smtp:
	$(GO) run ./frontend/smtp/bench -messages 20000 -sessions 20 -rcpts 100 -size 4096

# Multi-DC test of the Cassandra engine: starts a two-DC cluster (dc1 on 127.0.0.1, dc2 on 127.0.0.2;
# 127.0.0.3/.4 if the single test node holds 127.0.0.1), runs TestMultiDC*, stops the nodes it started.
# Not part of `make test` (it starts two more Cassandra nodes). See docs/adr/0005-multi-dc.md.
.PHONY: test-multidc
test-multidc:
	GO=$(GO) storage/cassandra/testdata/multidc.sh

# Indexer benchmarks (ADR 0008): indexing throughput with Bleve and OpenSearch, delivery → searchable
# lag with OpenSearch, SEARCH TEXT latency on a generated mailbox. BENCH_INDEX_N=100000 by default;
# OpenSearch parts need STOA_TEST_OPENSEARCH (started with `make services-up`).
BENCH_INDEX_N ?= 100000
.PHONY: bench-index
bench-index:
	STOA_TEST_OPENSEARCH=$(STOA_TEST_OPENSEARCH) $(GO) run ./indexer/cmd/benchindex -n $(BENCH_INDEX_N)

# The indexer as its own process against Cassandra and OpenSearch (ADR 0009): cost of one look for
# work through the activity feed against a sweep of every account, and delivery → searchable lag.
.PHONY: bench-sidecar
bench-sidecar:
	STOA_TEST_OPENSEARCH=$(STOA_TEST_OPENSEARCH) $(GO) run ./indexer/cmd/benchindex -sidecar $(STOA_TEST_CASSANDRA) -sidecar-accounts 2000 -lag 100
