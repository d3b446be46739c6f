// Package examples holds runnable programs that use evbus on the embedded
// stack (an in-process Kafka-protocol broker and schema registry): no
// Docker and no servers to install. Run one with go run, for example
// go run ./examples/quickstart (what make demo runs).
package examples
