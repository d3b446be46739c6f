// Package evbustest gives tests a Kafka cluster with a schema registry.
//
// Start runs the embedded stack (package devstack) in the test's process:
// no Docker, in memory, on free loopback ports, stopped when the test ends.
// StartRedpanda runs Redpanda in a container through testcontainers-go
// instead, for the checks only a real broker and registry can answer, and
// skips the test with one line when no Docker engine answers.
//
// Both return a Cluster, so a test body can run against either:
//
//	func TestOrders(t *testing.T) { testOrders(t, evbustest.Start(t)) }
//	func TestOrdersRedpanda(t *testing.T) { testOrders(t, evbustest.StartRedpanda(t)) }
//
//	func testOrders(t *testing.T, c evbustest.Cluster) {
//		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...))
//		...
//		reg, err := sr.NewClient(sr.URLs(c.RegistryURL()))
//		...
//	}
package evbustest
