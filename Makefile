# The two commands of the README: `make demo` and `make test`.
GO ?= go
FUZZTIME ?= 10s

.PHONY: demo test vet unit fuzz bench

## demo: the main job on the embedded stack (no Docker, no servers to install)
demo:
	$(GO) run ./examples/quickstart

## test: the whole suite, with the race detector, then a short fuzz run
test: vet unit fuzz

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 10m ./...

fuzz:
	$(GO) test ./codec -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)

## bench: evbus next to its baselines (bare hamba/avro, raw franz-go), six runs for benchstat
bench:
	$(GO) test ./codec ./bus ./consumer -run '^$$' -bench . -benchmem -count 6
