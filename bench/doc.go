// Package bench compares evbus with hand-rolled franz-go + hamba/avro and
// with Watermill (watermill-kafka on Sarama, watermill-sql, the Forwarder,
// the Deduplicator), on one in-process kfake broker and, for the outbox
// and idempotent consumers, one throwaway PostgreSQL server, in one
// process. It is its own module so that Watermill and Sarama never become
// dependencies of the SDK. Everything is in the benchmarks; from the
// repository's root, `make bench-peers` runs them all, or:
//
//	cd bench
//	go test -run '^$' -bench 'Publish|Consume' -benchmem -benchtime 3s -count 5 | tee /tmp/bench.txt
//	go test -run '^$' -bench 'Outbox|Idempotent' -benchtime 1x -count 5 -timeout 30m | tee /tmp/peers.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl /tmp/bench.txt /tmp/peers.txt
//
// The outbox and idempotent ops each handle a fixed number of events
// whatever b.N, so run them with -benchtime 1x. Lines starting with "#"
// are the ratios of one round.
//
// See ../BENCHMARKS.md for the figures and what limits them.
package bench
