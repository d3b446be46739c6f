// Package testkit holds the helpers evbus's tests share: an
// OpenTelemetry SDK that keeps what evbus records (OTel, Counts), the
// clients of a started stack (Connect), waiting for a condition
// (WaitFor), reading a topic back (Read, ReadN), looking up a record's
// headers (Header, Headers), a log sink goroutines share (Buffer), the
// benchmarks' event (BenchOrder) and a tab of a headless Chromium for the
// tests of web pages (NewTab, RunWithBrowser). Every wait is bounded by
// Guard, a guard against hangs, never a timing check.
package testkit

import "time"

// Guard bounds every wait of the helpers.
const Guard = 90 * time.Second
