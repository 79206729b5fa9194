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
		$(SERVICES)/with-services.sh $(GO) test -race -count=1 -timeout 25m ./...

# Unit tests only: no servers; tests that need one are skipped (-short).
test-short:
	$(GO) test -short -count=1 ./...

# Placeholder: runs every benchmark once. Real benchmark runs will get their own settings.
bench:
	$(GO) test -run '^$$' -bench . -benchtime=1x ./...

lint:
	@out="$$(gofmt -l $(GO_FILES))"; if [[ -n "$$out" ]]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then echo staticcheck ./...; staticcheck ./...; \
	else echo "staticcheck not installed: skipped (go install honnef.co/go/tools/cmd/staticcheck@latest)"; fi

# Placeholder: no fuzz targets yet.
fuzz:
	@echo "no fuzz targets yet"
