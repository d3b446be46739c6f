package evbustest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
)

func TestStart(t *testing.T) { exercise(t, evbustest.Start(t)) }

func TestStartRedpanda(t *testing.T) { exercise(t, evbustest.StartRedpanda(t)) }

// exercise registers a schema, is refused an incompatible one, and sends a
// record through Kafka: what evbus needs of any backend.
func exercise(t *testing.T, c evbustest.Cluster) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a hang guard, not a timing check
	defer cancel()
	reg, err := sr.NewClient(sr.URLs(c.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	const v1 = `{"type":"record","name":"OrderPlaced","namespace":"com.example","fields":[{"name":"id","type":"string"}]}`
	const v2 = `{"type":"record","name":"OrderPlaced","namespace":"com.example","fields":[{"name":"id","type":"string"},{"name":"total","type":"long"}]}`
	if _, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Schema: v1}); err != nil {
		t.Fatalf("register v1: %v", err)
	}
	var re *sr.ResponseError
	if _, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Schema: v2}); !errors.As(err, &re) || re.StatusCode != http.StatusConflict {
		t.Fatalf("register v2 (new field, no default): %v, want HTTP 409", err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte("order-1"), Value: []byte("placed")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			if string(recs[0].Key) != "order-1" || string(recs[0].Value) != "placed" {
				t.Fatalf("consumed %q=%q, want order-1=placed", recs[0].Key, recs[0].Value)
			}
			return
		}
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs check on a fatalRecorder, so the kit's own failure
// messages can be checked, and returns the message it failed with; it
// fails t when check passes.
func failure(t *testing.T, check func(tb testing.TB)) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); check(r) }()
	<-done
	if r.msg == "" {
		t.Fatal("the check passed; want it to fail")
	}
	return r.msg
}

func TestStartFailsTheTestClearly(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port

	msg := failure(t, func(tb testing.TB) { evbustest.Start(tb, devstack.RegistryPort(port)) })
	want := fmt.Sprintf("evbustest: the embedded stack did not start: devstack: registry: listen tcp 127.0.0.1:%d", port)
	if !strings.HasPrefix(msg, want) {
		t.Errorf("failure message %q, want it to start with %q", msg, want)
	}
}

// A nil wait option, or a wait that is not positive, fails the test
// naming it, as the packages' constructors refuse theirs.
func TestWaitOptionsChecked(t *testing.T) {
	for _, c := range []struct {
		opt  evbustest.WaitOption
		want string
	}{
		{nil, "evbustest: option 1 is nil"},
		{evbustest.Within(0), "evbustest: Within(0s): want a positive duration"},
	} {
		msg := failure(t, func(tb testing.TB) {
			evbustest.ExpectHandled(tb, evbustest.NewRecorder(), "billing", paymentTaken, nil, c.opt)
		})
		if msg != c.want {
			t.Errorf("failure %q, want %q", msg, c.want)
		}
	}
}
