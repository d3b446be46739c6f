// Package examples holds runnable programs that use evbus on the embedded
// stack (an in-process Kafka-protocol broker and schema registry): no
// Docker and no servers to install. Run one with go run: go run
// ./examples/orders (what make demo runs) tells the whole story, outbox to
// dead-letter replay; go run ./examples/quickstart publishes and consumes.
package examples
