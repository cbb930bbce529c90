# baepo — build, test, demo, bench, lint, deps.
GO       ?= go
BIN      := bin
PKGS     := ./...
MODULE   := $(shell $(GO) list -m)
# EXAMPLE is the example plugin, a module of its own that ./... skips.
EXAMPLE  := examples/runner-plugin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)

.PHONY: all build test lint deps bench clean demo demo-stop proto fuzz

# FUZZTIME is how long `make fuzz` runs each fuzz target (seconds), FUZZ
# which targets (a regexp of their names); `make test` runs every target
# for FUZZTEST seconds.
FUZZTIME ?= 60
FUZZ     ?= .
FUZZTEST ?= 2

all: build

# build puts baepo, baepo-agent and the in-tree driver plugins
# (baepo-plugin-jetty, baepo-plugin-jar: the names the agent looks for in
# plugins_dir) in bin/.
build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./client/cmd/baepo ./agent/cmd/baepo-agent ./plugins/...

# demo runs a real rolling deploy to two local Tomcat 10 instances through a
# local agent; demo-stop stops everything it started.
demo: deps build
	@bash examples/demo.sh

demo-stop:
	@bash examples/demo.sh stop

# test runs everything: lint, the unit and script tests with the race
# detector, the end-to-end tests against real app servers, the example
# plugin's build and tests, and each fuzz target for a few seconds.
test: deps lint
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	cd $(EXAMPLE) && $(GO) build -o /dev/null . && $(GO) test -race -count=1 ./...
	bash .ci/fuzz.sh $(FUZZTEST)

# fuzz runs each fuzz target (or those FUZZ matches) for FUZZTIME seconds;
# a failing input lands in the package's testdata/fuzz/FuzzX/.
fuzz:
	bash .ci/fuzz.sh $(FUZZTIME) '$(FUZZ)'

lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	$(GO) vet $(PKGS)
	cd $(EXAMPLE) && $(GO) vet ./...
	@leak=$$($(GO) list -deps ./sdk/... 2>/dev/null | grep '^$(MODULE)/' | grep -v '^$(MODULE)/sdk' || true); \
	  if [ -n "$$leak" ]; then echo "sdk/ must import nothing else from $(MODULE): $$leak"; exit 1; fi

# bench runs every benchmark once over its default time, then the
# zero-downtime ones (deploys under load, e2e/zerodowntime_bench_test.go) a
# fixed number of deploys each: HOTDEPLOYS to one Tomcat (hot and restart),
# FLEETDEPLOYS to two Tomcats behind HAProxy (drain, no drain, the script).
HOTDEPLOYS   ?= 20
FLEETDEPLOYS ?= 10
bench: deps
	$(GO) test -run '^$$' -bench . -skip 'UnderLoad' -benchmem -timeout 30m $(PKGS)
	$(GO) test -run '^$$' -bench 'TomcatUnderLoad' -benchtime $(HOTDEPLOYS)x -timeout 30m ./e2e
	$(GO) test -run '^$$' -bench 'FleetUnderLoad' -benchtime $(FLEETDEPLOYS)x -timeout 30m ./e2e

# deps installs what the tests need; it is idempotent and says what is
# missing when it cannot install it.
deps:
	@sh .ci/deps.sh

# proto regenerates sdk/proto from driver.proto. It needs protoc
# (apt-get install protobuf-compiler) and, installed one at a time,
# go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 and
# go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2.
proto:
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" $(GO) generate ./sdk/proto

clean:
	rm -rf $(BIN)
