package consumer_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

// TestOptionsValidatedByNew: options only record values; New refuses a
// nil option and a bad value, naming the option and the fix.
func TestOptionsValidatedByNew(t *testing.T) {
	reg, err := schema.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []consumer.Option
		want string
	}{
		{"nil option", []consumer.Option{consumer.Concurrency(2), nil}, "consumer: New: option 2 is nil"},
		{"Telemetry(nil)", []consumer.Option{consumer.Telemetry(nil)}, "consumer: Telemetry(nil): pass one from tracing.New, or leave the option out (tracing.Default())"},
		{"Logger(nil)", []consumer.Option{consumer.Logger(nil)}, "Logger(nil)"},
		{"Concurrency", []consumer.Option{consumer.Concurrency(0)}, "consumer: Concurrency(0): want at least 1"},
		{"PerKey", []consumer.Option{consumer.PerKey(-1)}, "PerKey(-1)"},
		{"Unhandled", []consumer.Option{consumer.Unhandled(7)}, "Unhandled(7)"},
		{"CommitInterval", []consumer.Option{consumer.CommitInterval(0)}, "CommitInterval(0s)"},
		{"DrainTimeout", []consumer.Option{consumer.DrainTimeout(-time.Second)}, "DrainTimeout(-1s)"},
		{"MaxValueBytes", []consumer.Option{consumer.MaxValueBytes(-1)}, "MaxValueBytes(-1)"},
		{"HandlerRetry", []consumer.Option{consumer.HandlerRetry(consumer.Backoff{Multiplier: 0.5})}, "HandlerRetry: Multiplier 0.5"},
		{"OutageRetry", []consumer.Option{consumer.OutageRetry(consumer.Backoff{Initial: -1})}, "OutageRetry: Initial -1ns"},
		{"MaxReplays", []consumer.Option{consumer.MaxReplays(0)}, "consumer: MaxReplays(0): want 1 or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := consumer.New("g", reg, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, %v; want an error with %q", c, err, tc.want)
			}
		})
	}
	// The last value of an option wins; only the result is validated.
	if _, err := consumer.New("g", reg, consumer.Concurrency(0), consumer.Concurrency(3)); err != nil {
		t.Errorf("Concurrency(0) then Concurrency(3): %v", err)
	}
}

// TestHandlerOptionsValidatedByRun: a nil or bad handler option fails Run
// with ErrRegistration naming the option; Handle with a nil consumer does
// not panic.
func TestHandlerOptionsValidatedByRun(t *testing.T) {
	reg, err := schema.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	noop := func(context.Context, *Order, bus.Meta) error { return nil }
	consumer.Handle(nil, orderPlaced, noop) // logged, not a panic
	for _, tc := range []struct {
		name string
		opts []consumer.HandlerOption
		want string
	}{
		{"nil option", []consumer.HandlerOption{consumer.Retry(consumer.Backoff{}), nil}, "consumer: Handle: option 2 is nil"},
		{"Retry", []consumer.HandlerOption{consumer.Retry(consumer.Backoff{MaxAttempts: -1})}, "Retry: MaxAttempts -1"},
		{"RetryTopics()", []consumer.HandlerOption{consumer.RetryTopics()}, "RetryTopics: 0 delays"},
		{"RetryTopics(0)", []consumer.HandlerOption{consumer.RetryTopics(0)}, "RetryTopics: delay 1 is 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := consumer.New("g", reg)
			if err != nil {
				t.Fatal(err)
			}
			consumer.Handle(c, orderPlaced, noop, tc.opts...)
			err = c.Run(context.Background())
			if !errors.Is(err, consumer.ErrRegistration) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want ErrRegistration with %q", err, tc.want)
			}
		})
	}
}

// TestProcessedOptions: NewProcessed refuses a nil option and names Table
// for a bad table name.
func TestProcessedOptions(t *testing.T) {
	lite, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Pool().Close()
	if _, err := consumer.NewProcessed(lite, nil); err == nil || !strings.Contains(err.Error(), "consumer: NewProcessed: option 1 is nil") {
		t.Errorf("NewProcessed(nil option) = %v", err)
	}
	if _, err := consumer.NewProcessed(lite, consumer.Table("bad name")); !errors.Is(err, sqldb.ErrInvalidIdentifier) || !strings.Contains(err.Error(), `Table("bad name")`) {
		t.Errorf("NewProcessed(Table(bad name)) = %v", err)
	}
}
