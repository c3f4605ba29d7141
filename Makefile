# The inner loop. `make test` is the whole suite, as CI runs it; the other targets are its parts.
#
#   make build       the sanke binary, ./sanke
#   make demo        build, then run the server in dev mode with the web client and the demo data
#   make lint        golangci-lint v2.15.0 (.golangci.yml) and go vet
#   make test-short  unit tests only (go test -short, no end-to-end rigs): about a minute
#   make test        scripts/test.sh: every suite, one summary
#   make bench       the SFU's benchmarks (scripts/bench-livekit.sh compares with LiveKit)

# Go from the official tarball lives in /usr/local/go (see README.md).
export PATH := $(PATH):/usr/local/go/bin

GO ?= go

.PHONY: build demo lint test-short test bench

build:
	$(GO) build -o sanke ./cmd/sanke

# Run the binary, not `go run`: stopping `go run` by its PID leaves the server running.
demo: build
	exec ./sanke serve --dev --config web-client/demo/sanke-demo.yaml

lint:
	scripts/golangci-lint.sh run ./...
	$(GO) vet ./...

# Packages outside test/ (the end-to-end rigs); slow tests skip themselves in short mode.
test-short:
	$(GO) test -short $$($(GO) list ./... | grep -v '/test/')

test:
	bash scripts/test.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./sfu/...
