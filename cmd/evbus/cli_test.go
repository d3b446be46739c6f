package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

// guard bounds every wait: a hang guard, never a timing check.
const guard = 45 * time.Second

// result is one run of the command.
type result struct {
	out, err string
	code     int
}

// cli runs evbus in-process against stack, which it names through the
// environment as an operator would (EVBUS_BROKERS, EVBUS_REGISTRY).
func cli(t *testing.T, stack *devstack.Stack, stdin string, args ...string) result {
	t.Helper()
	return cliEnv(t, map[string]string{
		"EVBUS_BROKERS":  strings.Join(stack.Brokers(), ","),
		"EVBUS_REGISTRY": stack.RegistryURL(),
	}, stdin, args...)
}

func cliEnv(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	r := result{out.String(), errOut.String(), code}
	for _, bad := range []string{"goroutine ", "panic"} {
		if strings.Contains(r.out+r.err, bad) {
			t.Errorf("evbus %s: output contains %q:\n%s%s", strings.Join(args, " "), bad, r.out, r.err)
		}
	}
	return r
}

// ok fails t unless r exited 0.
func (r result) ok(t *testing.T, what string) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.code, r.out, r.err)
	}
	return r
}

// jsonLines decodes each line of s.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

type Order struct {
	OrderID string `avro:"order_id"`
	Amount  int64  `avro:"amount"`
}

var orderPlaced = bus.Event[Order]("orders", func(o *Order) string { return o.OrderID }, bus.Namespace("com.example.cli"))

// handled counts what a group's handler ran for, by ce_id, and keeps the
// metadata of the last run.
type handled struct {
	mu      sync.Mutex
	runs    map[string]int
	last    map[string]bus.Meta
	changed chan struct{}
}

func newHandled() *handled {
	return &handled{runs: map[string]int{}, last: map[string]bus.Meta{}, changed: make(chan struct{})}
}

func (h *handled) add(m bus.Meta) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runs[m.ID]++
	h.last[m.ID] = m
	close(h.changed)
	h.changed = make(chan struct{})
}

// wait waits until cond holds over the runs.
func (h *handled) wait(t *testing.T, what string, cond func(runs map[string]int) bool) {
	t.Helper()
	deadline := time.After(guard)
	for {
		h.mu.Lock()
		done, ch := cond(h.runs), h.changed
		h.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("never: %s (runs %v)", what, h.runs)
		}
	}
}

func (h *handled) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runs[id]
}

func (h *handled) meta(id string) bus.Meta {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last[id]
}

// startGroup runs a consumer of group on the stack whose handler fails
// permanently for the order fail names while fail returns true.
func startGroup(t *testing.T, stack *devstack.Stack, group string, h *handled, fail func(*Order) bool) {
	t.Helper()
	startConsumer(t, stack, group, func(c *consumer.Consumer) {
		consumer.Handle(c, orderPlaced, func(ctx context.Context, o *Order, m bus.Meta) error {
			if fail(o) {
				return consumer.Permanent(errors.New("card declined for " + o.OrderID))
			}
			h.add(m)
			return nil
		})
	})
}

// startConsumer runs a consumer of group on the stack with the handlers
// handle registers, until the test ends.
func startConsumer(t *testing.T, stack *devstack.Stack, group string, handle func(*consumer.Consumer)) {
	t.Helper()
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := consumer.New(group, reg, consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...)),
		consumer.CommitInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	handle(c)
	errc := make(chan error, 1)
	go func() { errc <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close %s: %v", group, err)
		}
		if err := <-errc; err != nil {
			t.Errorf("run %s: %v", group, err)
		}
	})
}

func admin(t *testing.T, stack *devstack.Stack) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

func publish(t *testing.T, stack *devstack.Stack, orders ...*Order) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	enc, err := bus.NewEncoder(t.Context(), reg, bus.Source("/orders"), bus.Types(orderPlaced))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range orders {
		rec, err := enc.Record(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, string(rec.Headers[1].Value))
	}
	return ids
}

// TestDeadLetterReplay: two groups on one topic, a record dead-lettered by
// billing only; ls and show find it, replay reaches billing's handler with
// the original ce_id and the replay headers, and notifications never sees
// it again; a record replayed before is skipped, and one past the limit is
// refused.
func TestDeadLetterReplay(t *testing.T) {
	stack := evbustest.Start(t)
	ctx := t.Context()
	_, adm := admin(t, stack)
	if err := bus.CreateTopics(ctx, adm, bus.TopicSpec{Name: "orders", Partitions: 2, DeadLetterGroups: []string{"billing", "notifications"}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	declined := map[string]bool{"o-2": true}
	billing, notifications := newHandled(), newHandled()
	startGroup(t, stack, "billing", billing, func(o *Order) bool {
		mu.Lock()
		defer mu.Unlock()
		return declined[o.OrderID]
	})
	startGroup(t, stack, "notifications", notifications, func(*Order) bool { return false })

	ids := publish(t, stack, &Order{"o-1", 10}, &Order{"o-2", 20}, &Order{"o-3", 30})
	dl := evbustest.ExpectDeadLettered(t, stack, "orders", "billing", func(d wire.DeadLetter) bool { return d.ID == ids[1] })
	notifications.wait(t, "notifications handles all three", func(r map[string]int) bool { return len(r) == 3 })
	billing.wait(t, "billing handles o-1 and o-3", func(r map[string]int) bool { return r[ids[0]] == 1 && r[ids[2]] == 1 })

	// ls: the table and the JSON lines name the record.
	table := cli(t, stack, "", "dlt", "ls").ok(t, "dlt ls")
	for _, want := range []string{"FAILED-AT", "orders.billing.dlt", "com.example.cli.Order", "o-2", "permanent", "card declined for o-2"} {
		if !strings.Contains(table.out, want) {
			t.Errorf("dlt ls table lacks %q:\n%s", want, table.out)
		}
	}
	lines := jsonLines(t, cli(t, stack, "", "dlt", "ls", "--group", "billing", "--json", "--error-kind", "permanent", "--since", "1h").ok(t, "dlt ls --json").out)
	if len(lines) != 1 || lines[0]["id"] != ids[1] || lines[0]["key"] != "o-2" || lines[0]["error_kind"] != "permanent" || lines[0]["replays"] != 0.0 {
		t.Fatalf("dlt ls --json = %v, want the one dead letter of o-2", lines)
	}
	if got := jsonLines(t, cli(t, stack, "", "dlt", "ls", "--group", "notifications", "--json").ok(t, "dlt ls notifications").out); len(got) != 0 {
		t.Errorf("notifications has dead letters: %v", got)
	}

	// show: headers and the value decoded.
	show := cli(t, stack, "", "dlt", "show", "orders.billing.dlt", itoa(int64(dl.Record.Partition)), itoa(dl.Record.Offset)).ok(t, "dlt show")
	var shown struct {
		Key     string            `json:"key"`
		Value   map[string]any    `json:"value"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(show.out), &shown); err != nil {
		t.Fatalf("dlt show is not JSON: %v\n%s", err, show.out)
	}
	if shown.Key != "o-2" || shown.Value["order_id"] != "o-2" || shown.Value["amount"] != 20.0 ||
		shown.Headers[wire.HeaderID] != ids[1] || shown.Headers[wire.HeaderDLTErrorKind] != "permanent" {
		t.Errorf("dlt show = %s", show.out)
	}

	// A dry run sends nothing.
	dry := cli(t, stack, "", "dlt", "replay", "--group", "billing", "--all", "--dry-run").ok(t, "dry run")
	if !strings.Contains(dry.out, "dry run: replay 1 of 1 selected dead letters of group billing") || !strings.Contains(dry.out, "o-2") {
		t.Errorf("dry run printed:\n%s", dry.out)
	}
	if n := evbustest.Records(t, stack, wire.ReplayTopic("orders", "billing")); n != 0 {
		t.Fatalf("a dry run wrote %d records", n)
	}

	// The handler is fixed; the replay reaches billing only.
	mu.Lock()
	declined["o-2"] = false
	mu.Unlock()
	rep := cli(t, stack, "", "dlt", "replay", "--group", "billing", "--topic", "orders", "--yes").ok(t, "replay")
	if !strings.Contains(rep.out, "replayed 1 of 1 selected dead letters of group billing through orders.billing.replay") || strings.Contains(rep.err, "replaying ") {
		t.Errorf("replay printed:\n%s\nstderr: %s", rep.out, rep.err)
	}
	billing.wait(t, "billing handles the replayed o-2", func(r map[string]int) bool { return r[ids[1]] == 1 })
	m := billing.meta(ids[1])
	if m.Topic != "orders" || string(m.Key) != "o-2" || header(m.Headers, wire.HeaderReplayCount) != "1" || header(m.Headers, wire.HeaderReplayedAt) == "" {
		t.Errorf("replayed record: topic %s key %s headers %v", m.Topic, m.Key, m.Headers)
	}
	// notifications goes on with later records and has handled o-2 once.
	marker := publish(t, stack, &Order{"o-4", 40})
	notifications.wait(t, "notifications handles o-4", func(r map[string]int) bool { return r[marker[0]] == 1 })
	billing.wait(t, "billing handles o-4", func(r map[string]int) bool { return r[marker[0]] == 1 })
	if n := notifications.count(ids[1]); n != 1 {
		t.Errorf("notifications handled o-2 %d times, want 1", n)
	}
	if n := evbustest.Records(t, stack, wire.ReplayTopic("orders", "notifications")); n != 0 {
		t.Errorf("notifications' replay topic holds %d records", n)
	}

	// Replaying again leaves the record replaying alone, and needs no
	// confirmation: there is nothing to do.
	again := cli(t, stack, "", "dlt", "replay", "--group", "billing", "--all").ok(t, "replay again")
	// (replaying, or resolved once billing's consumer recorded the outcome)
	if !strings.Contains(again.out, "replayed 0 of 1") || !regexp.MustCompile(`1 left alone \((replaying|resolved) 1\)`).MatchString(again.out) {
		t.Errorf("second replay printed:\n%s", again.out)
	}

	// A record that fails again comes back with its count, and the loop
	// guard parks it past --max-replays.
	mu.Lock()
	declined["o-5"] = true
	mu.Unlock()
	ids5 := publish(t, stack, &Order{"o-5", 50})
	first := evbustest.ExpectDeadLettered(t, stack, "orders", "billing", func(d wire.DeadLetter) bool { return d.ID == ids5[0] })
	cli(t, stack, "", "dlt", "replay", "--group", "billing", "--type", "com.example.cli.Order", "--rate", "100", "--yes").ok(t, "replay o-5")
	redone := evbustest.ExpectDeadLettered(t, stack, "orders", "billing", func(d wire.DeadLetter) bool {
		n, _ := wire.ReplayCount(d.Record)
		return d.ID == ids5[0] && n == 1
	})
	if redone.OriginalTopic != "orders" || header(redone.Record.Headers, wire.HeaderReplayOf) == "" {
		t.Errorf("dead-lettered again: original topic %s, headers %v", redone.OriginalTopic, redone.Record.Headers)
	}
	// It names the same original record, not its copy in the replay topic.
	if redone.OriginalPartition != first.OriginalPartition || redone.OriginalOffset != first.OriginalOffset || !redone.OriginalTimestamp.Equal(first.OriginalTimestamp) {
		t.Errorf("dead-lettered again as orders/%d/%d (%v), first as orders/%d/%d (%v)", redone.OriginalPartition, redone.OriginalOffset, redone.OriginalTimestamp,
			first.OriginalPartition, first.OriginalOffset, first.OriginalTimestamp)
	}
	refused := cli(t, stack, "", "dlt", "replay", "--group", "billing", "--all", "--max-replays", "1", "--yes").ok(t, "replay past the limit")
	if !strings.Contains(refused.out, "replayed 0 of 3") || !strings.Contains(refused.out, "1 parked instead by the loop guard") || !regexp.MustCompile(`2 left alone \(((replaying|resolved|failed again) [12](, )?)+\)`).MatchString(refused.out) {
		t.Errorf("replay past the limit printed:\n%s", refused.out)
	}
	// ls lists newest first; --since in the future selects nothing.
	all := jsonLines(t, cli(t, stack, "", "dlt", "ls", "--json").ok(t, "dlt ls all").out)
	if len(all) != 3 || all[0]["replays"] != 1.0 || all[0]["id"] != ids5[0] || all[2]["id"] != ids[1] {
		t.Errorf("dlt ls --json, newest first = %v", all)
	}
	if got := cli(t, stack, "", "dlt", "ls", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)).ok(t, "dlt ls --since").out; strings.Count(got, "\n") != 2 || !strings.HasSuffix(got, "\n0 dead letters selected of 3 read\n") {
		t.Errorf("dlt ls --since <future> = %q, want the header and the summary alone", got)
	}
	if billing.count(ids5[0]) != 0 {
		t.Errorf("billing handled o-5 while it declines it")
	}
}

// TestReplayCreatesReplayTopic: without a replay topic, replay creates it
// once, with its topic's partitions, and sends every selected record.
func TestReplayCreatesReplayTopic(t *testing.T) {
	stack := evbustest.Start(t)
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 2}, bus.TopicSpec{Name: wire.DeadLetterTopic("orders", "billing"), Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		produceDeadLetter(t, cl, i)
	}
	r := cli(t, stack, "", "dlt", "replay", "--group", "billing", "--all", "--yes").ok(t, "replay")
	if n := strings.Count(r.err, "created replay topic orders.billing.replay"); n != 1 || !strings.Contains(r.out, "replayed 3 of 3") {
		t.Errorf("replay: %d creations\nstdout: %s\nstderr: %s", n, r.out, r.err)
	}
	parts, err := topicPartitions(t.Context(), adm, wire.ReplayTopic("orders", "billing"))
	if err != nil || parts[wire.ReplayTopic("orders", "billing")] != 2 {
		t.Errorf("replay topic partitions %v (%v), want 2", parts, err)
	}
	if n := evbustest.Records(t, stack, wire.ReplayTopic("orders", "billing")); n != 3 {
		t.Errorf("the replay topic holds %d records, want 3", n)
	}
}

// produceDeadLetter writes a dead letter of group billing by hand: key
// o-<offset>, from orders/0 at offset, its value framed with schema id 1,
// which the registry does not have.
func produceDeadLetter(t *testing.T, cl *kgo.Client, offset int) {
	t.Helper()
	if err := cl.ProduceSync(t.Context(), deadLetterRecord(offset)).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// deadLetterRecord is the record produceDeadLetter writes.
func deadLetterRecord(offset int) *kgo.Record {
	dlt := &kgo.Record{Topic: wire.DeadLetterTopic("orders", "billing"), Key: []byte("o-" + strconv.Itoa(offset)), Value: []byte{0, 0, 0, 0, 1}}
	for k, v := range map[string]string{
		wire.HeaderDLTOriginalTopic: "orders", wire.HeaderDLTOriginalPartition: "0", wire.HeaderDLTOriginalOffset: strconv.Itoa(offset),
		wire.HeaderDLTOriginalTimestamp: "2026-01-02T15:04:05.000Z", wire.HeaderDLTConsumerGroup: "billing",
		wire.HeaderDLTError: "boom", wire.HeaderDLTErrorKind: "permanent", wire.HeaderDLTAttempts: "1",
		wire.HeaderDLTFailedAt: "2026-01-02T15:04:06.000Z",
	} {
		dlt.Headers = append(dlt.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return dlt
}

func header(hs []kgo.RecordHeader, key string) string { v, _ := testkit.Header(hs, key); return v }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

const foreignSchema = `{"type":"record","name":"Payment","namespace":"com.example.foreign","fields":[
	{"name":"id","type":"string"},
	{"name":"cents","type":"long"},
	{"name":"note","type":["null","string"],"default":null},
	{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`

type payment struct {
	ID    string    `avro:"id"`
	Cents int64     `avro:"cents"`
	Note  *string   `avro:"note"`
	At    time.Time `avro:"at"`
}

// TestTail: records of evbus publishers and of a foreign client (plain
// Confluent framing through franz-go's serde, no ce_* headers) print as
// JSON lines; --key, --type and --count select; an undecodable value
// prints in hex.
func TestTail(t *testing.T) {
	stack := evbustest.Start(t)
	ctx := t.Context()
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(ctx, adm, bus.TopicSpec{Name: "orders", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	ids := publish(t, stack, &Order{"o-1", 10})

	src, err := sr.NewClient(sr.URLs(stack.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := src.CreateSchema(ctx, "orders-value", sr.Schema{Schema: foreignSchema})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := codec.Parse(foreignSchema)
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encoder(ss.ID, fs, fs)
	if err != nil {
		t.Fatal(err)
	}
	var serde sr.Serde // frames the Avro body, which follows codec's own 5-byte prefix
	serde.Register(ss.ID, payment{}, sr.EncodeFn(func(v any) ([]byte, error) {
		b, err := enc.AppendEncode(nil, v)
		if err != nil {
			return nil, err
		}
		return b[5:], nil
	}))
	note := "tip"
	value, err := serde.Encode(payment{ID: "p-1", Cents: 250, Note: &note, At: time.UnixMilli(1700000000123)})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Topic: "orders", Key: []byte("p-1"), Value: value},
		&kgo.Record{Topic: "orders", Key: []byte("junk"), Value: []byte{0, 0, 0, 0x7f, 0x7f, 1}},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}

	tail := cli(t, stack, "", "tail", "orders", "--from", "beginning", "--count", "3").ok(t, "tail").out
	lines := jsonLines(t, tail)
	if len(lines) != 3 {
		t.Fatalf("tail printed %d lines, want 3", len(lines))
	}
	own, foreign, junk := lines[0], lines[1], lines[2]
	if own["key"] != "o-1" || own["value"].(map[string]any)["amount"] != 10.0 || own["headers"].(map[string]any)[wire.HeaderID] != ids[0] || own["schema_id"] == nil {
		t.Errorf("evbus record: %v", own)
	}
	if want := `"value":{"id":"p-1","cents":250,"note":"tip","at":"2023-11-14T22:13:20.123Z"}`; !strings.Contains(strings.Split(tail, "\n")[1], want) {
		t.Errorf("foreign record %s lacks %s (fields in schema order)", strings.Split(tail, "\n")[1], want)
	}
	avroTail := cli(t, stack, "", "tail", "orders", "--from", "beginning", "--count", "2", "--avro-json").ok(t, "tail --avro-json").out
	if want := `"value":{"id":"p-1","cents":250,"note":{"string":"tip"},"at":1700000000123}`; !strings.Contains(strings.Split(avroTail, "\n")[1], want) {
		t.Errorf("foreign record %s lacks %s (Avro JSON, fields in schema order)", strings.Split(avroTail, "\n")[1], want)
	}
	if foreign["schema_id"] != float64(ss.ID) || len(foreign["headers"].(map[string]any)) != 0 || foreign["partition"] != 0.0 || foreign["offset"] != 1.0 {
		t.Errorf("foreign record: %v", foreign)
	}
	if junk["value"] != nil || junk["value_hex"] != "0000007f7f01" || !strings.Contains(junk["decode_error"].(string), "schema") {
		t.Errorf("undecodable record: %v", junk)
	}

	byKey := jsonLines(t, cli(t, stack, "", "tail", "orders", "--from", "beginning", "--key", "p-1", "--count", "1").ok(t, "tail --key").out)
	if len(byKey) != 1 || byKey[0]["key"] != "p-1" {
		t.Errorf("tail --key p-1 = %v", byKey)
	}
	byType := jsonLines(t, cli(t, stack, "", "tail", "orders", "--from", "2000-01-01T00:00:00Z", "--type", "com.example.foreign.Payment", "--count", "1").ok(t, "tail --type").out)
	if len(byType) != 1 || byType[0]["key"] != "p-1" {
		t.Errorf("tail --type Payment = %v", byType)
	}

	// --from end: only records written after tail started. The three
	// above are at offsets 0 to 2; records keep coming until tail has
	// one, and it must be one of them.
	done := make(chan result, 1)
	go func() { done <- cli(t, stack, "", "tail", "orders", "--from", "end", "--count", "1") }()
	var fromEnd result
	for n := 0; ; n++ {
		select {
		case fromEnd = <-done:
		case <-time.After(100 * time.Millisecond):
			publish(t, stack, &Order{fmt.Sprintf("late-%d", n), 1})
			continue
		}
		break
	}
	late := jsonLines(t, fromEnd.ok(t, "tail --from end").out)
	if len(late) != 1 || !strings.HasPrefix(late[0]["key"].(string), "late-") || late[0]["offset"].(float64) < 3 {
		t.Errorf("tail --from end = %v, want one record written after it started", late)
	}
}

const invoiceV1 = `{"type":"record","name":"Invoiced","namespace":"com.example.billing","fields":[
	{"name":"invoice_id","type":"string"},
	{"name":"total","type":"long"},
	{"name":"currency","type":{"type":"enum","name":"Currency","symbols":["EUR","USD"]}},
	{"name":"memo","type":["null","string"],"default":null},
	{"name":"lines","type":{"type":"array","items":"string"},"default":[]}]}`

// TestPublish: JSON lines become evbus events, each printed with its
// partition, offset and ce_id; one bad line sends nothing.
func TestPublish(t *testing.T) {
	stack := evbustest.Start(t)
	_, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "invoices", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	avsc := filepath.Join(dir, "invoiced.avsc")
	if err := os.WriteFile(avsc, []byte(invoiceV1), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"publish", "--topic", "invoices", "--schema", avsc, "--key-field", "invoice_id", "--source", "/billing-seed"}

	bad := cli(t, stack, `{"invoice_id":"i-1","total":5,"currency":"EUR"}
{"invoice_id":"i-2","total":"five","currency":"EUR"}
`, args...)
	if bad.code != 1 || !strings.Contains(bad.err, "line 2") || !strings.Contains(bad.err, "field total") || !strings.Contains(bad.err, "nothing was sent") || strings.Count(bad.err, "\n") != 1 {
		t.Errorf("bad record: exit %d, stderr %q", bad.code, bad.err)
	}
	for name, input := range map[string]string{
		"unknown enum symbol": `{"invoice_id":"i-1","total":5,"currency":"GBP"}`,
		"unknown field":       `{"invoice_id":"i-1","total":5,"currency":"EUR","tax":1}`,
		"missing field":       `{"invoice_id":"i-1","currency":"EUR"}`,
		"not JSON":            `{"invoice_id":`,
	} {
		if r := cli(t, stack, input, args...); r.code != 1 || !strings.Contains(r.err, "line 1") {
			t.Errorf("%s: exit %d, stderr %q", name, r.code, r.err)
		}
	}
	if n := evbustest.Records(t, stack, "invoices"); n != 0 {
		t.Fatalf("bad input sent %d records", n)
	}

	good := cli(t, stack, `{"invoice_id":"i-1","total":500,"currency":"EUR","memo":"first","lines":["a","b"]}

{"invoice_id":"i-2","total":700,"currency":"USD","memo":"bare"}
`, args...).ok(t, "publish")
	printed := strings.Split(strings.TrimSpace(good.out), "\n")
	if len(printed) != 2 || !strings.HasPrefix(printed[0], "line 1: partition ") || !strings.HasPrefix(printed[1], "line 3: partition ") {
		t.Fatalf("publish printed:\n%s", good.out)
	}
	tail := cli(t, stack, "", "tail", "invoices", "--from", "beginning", "--key", "i-2", "--count", "1").ok(t, "tail").out
	lines := jsonLines(t, tail)
	if len(lines) != 1 {
		t.Fatalf("tail found %d records of i-2", len(lines))
	}
	hs := lines[0]["headers"].(map[string]any)
	id, _ := hs[wire.HeaderID].(string)
	if !strings.HasSuffix(printed[1], "ce_id "+id) || !strings.Contains(printed[1], "offset "+itoa(int64(lines[0]["offset"].(float64)))) {
		t.Errorf("publish line %q does not match the record: %v", printed[1], lines[0])
	}
	if len(id) != 36 || id[14] != '7' || hs[wire.HeaderType] != "com.example.billing.Invoiced" || hs[wire.HeaderSource] != "/billing-seed" ||
		hs[wire.HeaderSpecVersion] != "1.0" || hs[wire.HeaderSubject] != "i-2" || hs[wire.HeaderTime] == nil {
		t.Errorf("headers: %v", hs)
	}
	if want := `"value":{"invoice_id":"i-2","total":700,"currency":"USD","memo":"bare","lines":[]}`; !strings.Contains(tail, want) {
		t.Errorf("record %s lacks %s", tail, want)
	}
}

// TestPublishReportsEachLine: each printed result names its own input
// line, whatever order Kafka completes them in: here line 2 is too large
// for a batch and fails at once, before lines 1, 3 and 4 are acknowledged.
func TestPublishReportsEachLine(t *testing.T) {
	stack := evbustest.Start(t)
	_, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "invoices", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	avsc := filepath.Join(t.TempDir(), "invoiced.avsc")
	if err := os.WriteFile(avsc, []byte(invoiceV1), 0o644); err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for i := 1; i <= 4; i++ {
		memo := "short"
		if i == 2 {
			memo = strings.Repeat("x", 2<<20) // past a batch's 1 MB
		}
		fmt.Fprintf(&in, `{"invoice_id":"i-%d","total":%d,"currency":"EUR","memo":%q}`+"\n", i, i, memo)
	}
	r := cli(t, stack, in.String(), "publish", "--topic", "invoices", "--schema", avsc, "--key-field", "invoice_id")
	if r.code != 1 || !strings.Contains(r.err, "line 2: not sent: ") || !strings.Contains(r.err, "1 of 4 records were not sent (line 2); the others were") || strings.Contains(r.err, "line 1") {
		t.Errorf("exit %d, stderr %q", r.code, r.err)
	}
	printed := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(printed) != 3 {
		t.Fatalf("publish printed:\n%s", r.out)
	}
	for i, line := range []int{1, 3, 4} {
		recs := jsonLines(t, cli(t, stack, "", "tail", "invoices", "--from", "beginning", "--key", fmt.Sprintf("i-%d", line), "--count", "1").ok(t, "tail").out)
		want := fmt.Sprintf("line %d: partition %v offset %v ce_id %s", line, recs[0]["partition"], recs[0]["offset"], recs[0]["headers"].(map[string]any)[wire.HeaderID])
		if printed[i] != want {
			t.Errorf("printed %q, want %q", printed[i], want)
		}
	}
	if n := evbustest.Records(t, stack, "invoices"); n != 3 {
		t.Errorf("%d records sent, want 3", n)
	}
}

// TestSchemaCheck: the CI gate passes a compatible change and fails an
// incompatible one, naming the field; register registers.
func TestSchemaCheck(t *testing.T) {
	stack := evbustest.Start(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1 := write("v1.avsc", invoiceV1)
	compatible := write("v2.avsc", strings.Replace(invoiceV1, `{"name":"total","type":"long"},`, `{"name":"total","type":"long"},{"name":"due","type":"string","default":"now"},`, 1))
	breaking := write("v3.avsc", strings.Replace(invoiceV1, `{"name":"total","type":"long"},`, `{"name":"total","type":"long"},{"name":"tax_rate","type":"double"},`, 1))

	reg := cli(t, stack, "", "schema", "register", "--topic", "invoices", v1).ok(t, "register")
	if !strings.Contains(reg.out, "registered") || !strings.Contains(reg.out, "invoices-com.example.billing.Invoiced") {
		t.Errorf("register printed %q", reg.out)
	}
	r := cli(t, stack, "", "schema", "check", "--topic", "invoices", compatible)
	if r.code != 0 || !strings.Contains(r.out, "compatible") {
		t.Errorf("compatible change: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r = cli(t, stack, "", "schema", "check", "--topic", "invoices", compatible, breaking)
	if r.code != 1 || !strings.Contains(r.out, "incompatible") || !strings.Contains(r.out, "field tax_rate") || !strings.Contains(r.err, "1 of 2 schemas are incompatible") {
		t.Errorf("incompatible change: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	if r := cli(t, stack, "", "schema", "check", "--topic", "invoices", "--level", "none", breaking); r.code != 0 {
		t.Errorf("--level NONE: exit %d: %s", r.code, r.err)
	}
	if r := cli(t, stack, "", "schema", "register", "--topic", "invoices", breaking); r.code != 1 || !strings.Contains(r.out, "field tax_rate") {
		t.Errorf("register of an incompatible schema: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestBadInput: each mistake gets one line that says what and how to fix
// it, a non-zero exit status, and no secret in the output.
func TestBadInput(t *testing.T) {
	stack := evbustest.Start(t)
	_, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	live := map[string]string{"EVBUS_BROKERS": strings.Join(stack.Brokers(), ","), "EVBUS_REGISTRY": stack.RegistryURL()}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range live {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	closed := "127.0.0.1:1" // nothing listens on port 1
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		code int
		want []string
	}{
		"unknown topic":        {live, []string{"tail", "nope", "--count", "1"}, 1, []string{`topic "nope" does not exist`, "check the name"}},
		"unknown dlt topic":    {live, []string{"dlt", "ls", "--topic", "nope"}, 1, []string{`topic "nope" does not exist`}},
		"unreachable broker":   {with(map[string]string{"EVBUS_BROKERS": closed, "EVBUS_SASL_MECHANISM": "plain", "EVBUS_SASL_USER": "ops", "EVBUS_SASL_PASSWORD": "hunter2", "EVBUS_TIMEOUT": "1s"}), []string{"dlt", "ls"}, 1, []string{"cannot reach Kafka at " + closed, "check --brokers or EVBUS_BROKERS"}},
		"unreachable registry": {with(map[string]string{"EVBUS_REGISTRY": "http://ops:hunter2@" + closed, "EVBUS_TIMEOUT": "1s"}), []string{"tail", "orders", "--count", "1"}, 1, []string{"cannot use the schema registry at http://***@" + closed, "check --registry"}},
		"malformed flag":       {live, []string{"tail", "orders", "--count", "many"}, 2, []string{"-count", "evbus tail --help"}},
		"bad timeout env":      {with(map[string]string{"EVBUS_TIMEOUT": "soon"}), []string{"dlt", "ls"}, 2, []string{`EVBUS_TIMEOUT="soon" is not a valid --timeout`}},
		"bad sasl mechanism":   {live, []string{"dlt", "ls", "--sasl-mechanism", "gssapi"}, 2, []string{`--sasl-mechanism "gssapi"`, "plain, scram-sha-256 or scram-sha-512"}},
		"sasl without secret":  {live, []string{"dlt", "ls", "--sasl-mechanism", "scram-sha-512", "--sasl-user", "ops"}, 2, []string{"needs --sasl-user and --sasl-password"}},
		"half a client cert":   {live, []string{"dlt", "ls", "--tls-cert", "c.pem"}, 2, []string{"--tls-cert and --tls-key go together"}},
		"replay without group": {live, []string{"dlt", "replay"}, 2, []string{"--group is required"}},
		"show bad partition":   {live, []string{"dlt", "show", "orders", "x", "0"}, 2, []string{`partition "x"`}},
		"show missing offset":  {live, []string{"dlt", "show", "orders", "0", "5"}, 1, []string{"orders/0 holds offsets 0 to -1, not 5"}},
		"bad error kind":       {live, []string{"dlt", "ls", "--error-kind", "fatal"}, 2, []string{"retries-exhausted, permanent or poison"}},
		"bad since":            {live, []string{"dlt", "ls", "--since", "yesterday"}, 2, []string{"-since", "24h"}},
		"bad from":             {live, []string{"tail", "orders", "--from", "noon"}, 2, []string{`--from "noon"`, "RFC 3339"}},
		"check without topic":  {live, []string{"schema", "check", "x.avsc"}, 1, []string{"x.avsc"}},
		"missing schema flag":  {live, []string{"publish", "--topic", "orders", "--key-field", "id"}, 2, []string{"--schema is required"}},
		"unknown subcommand":   {live, []string{"dlt", "purge"}, 2, []string{`unknown subcommand "purge"`}},
		"bad strategy":         {live, []string{"schema", "check", "--strategy", "magic", "--topic", "t", "x.avsc"}, 2, []string{`--strategy "magic"`}},
	} {
		t.Run(name, func(t *testing.T) {
			r := cliEnv(t, tc.env, "", tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, tc.code, r.err)
			}
			if strings.Count(r.err, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", r.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.err, w) {
					t.Errorf("stderr %q lacks %q", r.err, w)
				}
			}
			if strings.Contains(r.out+r.err, "hunter2") {
				t.Errorf("a password was printed: %s%s", r.out, r.err)
			}
		})
	}
}

// TestHelp: every command has --help with an example, and the connection
// commands list their environment variables.
func TestHelp(t *testing.T) {
	for _, c := range commands {
		r := cliEnv(t, map[string]string{"EVBUS_SASL_PASSWORD": "hunter2"}, "", append(strings.Fields(c.name), "--help")...)
		if r.code != 0 || !strings.Contains(r.out, "example:\n  evbus "+c.name) {
			t.Errorf("evbus %s --help: exit %d\n%s", c.name, r.code, r.out)
		}
		if c.conn && c.only != registryOnly && (!strings.Contains(r.out, "EVBUS_BROKERS") || !strings.Contains(r.out, "EVBUS_SASL_PASSWORD")) ||
			c.conn && c.only != kafkaOnly && (!strings.Contains(r.out, "EVBUS_REGISTRY") || !strings.Contains(r.out, "EVBUS_REGISTRY_PASSWORD")) {
			t.Errorf("evbus %s --help does not list the connection variables", c.name)
		}
		if strings.Contains(r.out, "hunter2") {
			t.Errorf("evbus %s --help printed a password", c.name)
		}
	}
	if r := cliEnv(t, nil, "", "dlt", "--help"); r.code != 0 || !strings.Contains(r.out, "dlt replay") {
		t.Errorf("evbus dlt --help: exit %d\n%s", r.code, r.out)
	}
}
