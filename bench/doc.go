// Package bench compares evbus with hand-rolled franz-go + hamba/avro and
// with Watermill's Kafka Pub/Sub (Sarama), on one in-process kfake broker
// in one process. It is its own module so that Watermill and Sarama never
// become dependencies of the SDK. Everything is in the benchmarks:
//
//	cd bench
//	go test -run '^$' -bench . -benchmem -count 6 | tee /tmp/bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl /tmp/bench.txt
//
// See ../BENCHMARKS.md for the figures and what limits them.
package bench
