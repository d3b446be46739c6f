# The two commands of the README: `make demo` and `make test`.
GO ?= go
# An execution count, not a duration: with a duration, Go 1.26's fuzz coordinator can report
# its own -fuzztime deadline as a failure (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 30000x

.PHONY: demo test vet unit fuzz bench bench-peers postgres zsh chromium

## demo: the whole story on the embedded stack and SQLite (no Docker, no servers to install):
## outbox, relay, idempotent consumers, a duplicate, a dead letter, evbus dlt ls and replay, a trace
demo:
	$(GO) run ./examples/orders

## test: the whole suite, with the race detector, then a short fuzz run
test: vet unit fuzz

vet:
	$(GO) vet ./...

unit: postgres zsh chromium
	$(GO) test -race -count=1 -timeout 10m ./...

# The tests start a throwaway PostgreSQL from the system's server binaries
# (evbustest.StartPostgreSQL); install Debian's when they are missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		echo "make: installing the PostgreSQL server binaries the tests run (apt-get install postgresql)"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }

# The CLI's tests run its zsh completion script in zsh (bash is there already).
zsh:
	@command -v zsh >/dev/null 2>&1 || { \
		echo "make: installing zsh, which the completion tests run (apt-get install zsh)"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q zsh; }

# The console's tests drive it in a headless Chromium (testkit.NewTab); they fail, never skip,
# without one, so install Debian's when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "make: installing Chromium, which the browser tests run headless (apt-get install chromium)"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

fuzz:
	$(GO) test ./codec -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./wire -run '^$$' -fuzz '^FuzzParseLedgerRecord$$' -fuzztime $(FUZZTIME)
	$(GO) test ./deadletter -run '^$$' -fuzz '^FuzzFingerprint$$' -fuzztime $(FUZZTIME)

## bench: evbus next to its baselines (bare hamba/avro, raw franz-go), six runs for benchstat
bench:
	$(GO) test ./codec ./bus ./consumer -run '^$$' -bench . -benchmem -count 6

## bench-peers: evbus against raw franz-go and Watermill (the bench/ module, which alone depends on
## Watermill): publish and consume on the embedded broker, then outbox and idempotent consume on a
## throwaway PostgreSQL. Each comparison runs its implementations in turn within one process, COUNT
## times; for outbox and idempotent consume the "#" lines give the ratios of each round.
COUNT ?= 5
bench-peers: postgres
	cd bench && $(GO) test -run '^$$' -bench 'Publish|Consume' -benchmem -benchtime 3s -count $(COUNT)
	cd bench && $(GO) test -run '^$$' -bench 'Outbox|Idempotent' -benchtime 1x -count $(COUNT) -timeout 30m
