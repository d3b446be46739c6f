// Package cputime reads the CPU time the process has used, for the
// benchmarks of every package and of the bench module: on a shared
// machine it is steadier than the wall clock.
package cputime

import "testing"

// PerOp reports b's cpu-ns/op: the process's CPU time from the call
// until b's run ends, divided by b.N.
func PerOp(b *testing.B) {
	start := Process()
	b.Cleanup(func() { b.ReportMetric(float64(Process()-start)/float64(b.N), "cpu-ns/op") })
}
