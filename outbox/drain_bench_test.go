package outbox_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/schema"
)

// consumeEnv set: the child process consumes that many events of the
// orders topic with an evbus consumer, says "done" and waits to be
// killed, so that its peak memory can be read.
const consumeEnv = "OUTBOX_TEST_CONSUME"

// BenchmarkDrainBacklog: a backlog of b.N committed rows (a million with
// -benchtime 1000000x) drained by a relay in a child process into the
// embedded broker (in this process), then consumed by an evbus consumer
// in another child. It reports the events/s of each and the peak resident
// memory of each process (VmHWM), which holds neither the broker nor
// PostgreSQL.
//
//	go test ./outbox -run '^$' -bench DrainBacklog -benchtime 1000000x -timeout 60m
func BenchmarkDrainBacklog(b *testing.B) {
	k := startKafka(b)
	db, ob := filledOutbox(b, k, b.N)
	b.ResetTimer()

	start := time.Now()
	relay, _ := startChild(b, "drain", db.Pool().Config().ConnString(), k, 1000, false)
	for backlog(b, ob) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "relay-events/s")
	b.ReportMetric(peakMiB(b, relay), "relay-peak-MiB")

	start = time.Now()
	cons := exec.Command(os.Args[0], "-test.run=^$")
	cons.Env = append(os.Environ(), consumeEnv+"="+strconv.Itoa(b.N), brokersEnv+"="+strings.Join(k.stack.Brokers(), ","),
		registryEnv+"="+k.stack.RegistryURL())
	cons.Stderr = os.Stderr
	out, err := cons.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cons.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cons.Process.Kill(); _ = cons.Wait() }()
	if sc := bufio.NewScanner(out); !sc.Scan() || sc.Text() != "done" {
		b.Fatalf("consumer child: %q %v", sc.Text(), sc.Err())
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "consume-events/s")
	b.ReportMetric(peakMiB(b, cons), "consumer-peak-MiB")
}

// peakMiB is the peak resident memory of a running child process.
func peakMiB(b *testing.B, cmd *exec.Cmd) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

// consumeChild is the consumer of BenchmarkDrainBacklog.
func consumeChild() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 2 }
	want, err := strconv.Atoi(os.Getenv(consumeEnv))
	if err != nil {
		return fail(err)
	}
	reg, err := schema.New(os.Getenv(registryEnv))
	if err != nil {
		return fail(err)
	}
	c, err := consumer.New("drain", reg,
		consumer.Kafka(kgo.SeedBrokers(strings.Split(os.Getenv(brokersEnv), ",")...)),
		consumer.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return fail(err)
	}
	done := make(chan struct{})
	var n atomic.Int64
	consumer.Handle(c, orderEvent, func(context.Context, *OrderEvent, bus.Meta) error {
		if n.Add(1) == int64(want) {
			close(done)
		}
		return nil
	})
	go func() { _ = c.Run(context.Background()) }()
	<-done
	fmt.Println("done")
	select {}
}
