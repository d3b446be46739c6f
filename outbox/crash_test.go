package outbox_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
)

// The child process runs a relay (the tests kill it with SIGKILL).
const (
	childEnv    = "OUTBOX_TEST_CHILD" // the relay's name
	dbEnv       = "OUTBOX_TEST_DB"
	brokersEnv  = "OUTBOX_TEST_BROKERS"
	registryEnv = "OUTBOX_TEST_REGISTRY"
	batchEnv    = "OUTBOX_TEST_BATCH"
	// killEnv set: the child kills itself after Kafka acknowledged its
	// first batch, before marking it.
	killEnv = "OUTBOX_TEST_KILL_AFTER_ACK"
)

func child() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 2 }
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv(dbEnv))
	if err != nil {
		return fail(err)
	}
	reg, err := schema.New(os.Getenv(registryEnv))
	if err != nil {
		return fail(err)
	}
	enc, err := bus.NewEncoder(ctx, reg, bus.Source("/orders-service"), bus.Types(orderEvent))
	if err != nil {
		return fail(err)
	}
	ob, err := outbox.New(sqldb.Pgx(pool), enc)
	if err != nil {
		return fail(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(os.Getenv(brokersEnv), ",")...))
	if err != nil {
		return fail(err)
	}
	batch, _ := strconv.Atoi(os.Getenv(batchEnv))
	r, err := ob.Relay(cl, outbox.RelayName(os.Getenv(childEnv)), outbox.BatchSize(batch))
	if err != nil {
		return fail(err)
	}
	if os.Getenv(killEnv) != "" {
		outbox.SetAfterPublish(r, func() {
			fmt.Println("acked")
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		})
	}
	return fail(r.Run(ctx))
}

// startChild starts a relay in a child process; the test ends it with
// SIGKILL if it is still running.
func startChild(t testing.TB, name, dbURL string, k kafka, batch int, killAfterAck bool) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name, dbEnv+"="+dbURL, brokersEnv+"="+strings.Join(k.stack.Brokers(), ","),
		registryEnv+"="+k.stack.RegistryURL(), batchEnv+"="+strconv.Itoa(batch))
	if killAfterAck {
		cmd.Env = append(cmd.Env, killEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return cmd, bufio.NewScanner(out)
}

// TestRelayKilledBetweenAckAndMark: a relay killed after Kafka
// acknowledged a batch and before it marked it leaves the batch in the
// outbox; the next relay publishes it again, with the same ce_ids, and
// nothing is lost.
func TestRelayKilledBetweenAckAndMark(t *testing.T) {
	const n, batch = 50, 20
	k := startKafka(t)
	url := evbustest.PostgresDatabase(t)
	db := pgxDB(t, url)
	ob := newOutbox(t, db, k.enc)
	want := map[string][]int64{}
	for i := range n {
		kk := key(i % 5)
		enqueue(t, db, ob, OrderEvent{OrderID: kk, Seq: int64(i)})
		want[kk] = append(want[kk], int64(i))
	}

	cmd, out := startChild(t, "doomed", url, k, batch, true)
	if !out.Scan() || out.Text() != "acked" {
		t.Fatalf("the child did not publish a batch: %q %v", out.Text(), out.Err())
	}
	_ = cmd.Process.Signal(syscall.SIGKILL) // it killed itself already; make sure
	first := consume(t, k.stack.Brokers(), atLeast(batch))
	if len(first) != batch || backlog(t, ob) != n {
		t.Fatalf("before the restart: %d published, backlog %d; want %d published, none marked", len(first), backlog(t, ob), batch)
	}

	runRelay(t, ob, k.cl, outbox.BatchSize(batch))
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })
	got := consume(t, k.stack.Brokers(), atLeast(n+batch))
	if dups := checkOrder(t, got, want); dups != batch {
		t.Errorf("%d events published twice, want the killed batch's %d", dups, batch)
	}
	seen, again := map[string]int{}, map[string]bool{}
	for _, p := range got {
		if seen[p.id]++; seen[p.id] == 2 {
			again[p.id] = true
		}
	}
	for _, p := range first {
		if !again[p.id] {
			t.Errorf("ce_id %s of the killed batch was not re-published", p.id)
		}
	}
}
