package main

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

type Invoice struct {
	ID       string    `avro:"id"`
	Total    *big.Rat  `avro:"total" avsc:"decimal(12,2)"`
	Scan     []byte    `avro:"scan"`
	Note     *string   `avro:"note"`
	IssuedAt time.Time `avro:"issued_at"`
}

var invoiced = bus.Event[Invoice]("invoices", func(i *Invoice) string { return i.ID }, bus.Namespace("com.example.cli"))

// consumeInvoices runs group billing on the invoices, with a typed
// handler as any service has, which dead-letters invoice i-2. h counts
// the handler's runs; received returns what it got, by invoice id.
func consumeInvoices(t *testing.T, stack *devstack.Stack) (h *handled, received func() map[string]Invoice) {
	t.Helper()
	var mu sync.Mutex
	got := map[string]Invoice{}
	h = newHandled()
	startConsumer(t, stack, "billing", func(c *consumer.Consumer) {
		consumer.Handle(c, invoiced, func(_ context.Context, inv *Invoice, m bus.Meta) error {
			mu.Lock()
			got[inv.ID] = *inv
			mu.Unlock()
			h.add(m)
			if inv.ID == "i-2" {
				return consumer.Permanent(errors.New("refund without an order"))
			}
			return nil
		})
	})
	return h, func() map[string]Invoice {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(got)
	}
}

// valueOf is the value of the one record tail printed.
func valueOf(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := jsonLines(t, out)
	if len(lines) != 1 {
		t.Fatalf("want one record, got %d:\n%s", len(lines), out)
	}
	v, _ := lines[0]["value"].(map[string]any)
	return v
}

// shown is the record dlt show printed.
func shown(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("dlt show printed %q: %v", out, err)
	}
	return m
}

// TestPublishDecimal: a decimal written as people write it reaches a typed
// consumer exactly, and tail and dlt show print it back the same way;
// --avro-json reads and prints Confluent's encoding; a value that does not
// fit is refused, naming its line and field, and nothing is sent.
func TestPublishDecimal(t *testing.T) {
	stack := evbustest.Start(t)
	_, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "invoices", Partitions: 2, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	avsc := filepath.Join(t.TempDir(), "invoice.avsc")
	if err := os.WriteFile(avsc, []byte(invoiced.Descriptor().Schema().String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"publish", "--topic", "invoices", "--schema", avsc, "--key-field", "id"}

	// Refused: too many digits after the point, or before it; nothing is sent.
	for _, tc := range []struct{ total, want string }{
		{`"49.999"`, `"49.999" has more digits after the point than decimal(12,2) keeps (2)`},
		{`"12345678901.5"`, `"12345678901.5" does not fit decimal(12,2): at most 10 digits before the point`},
		{`49.999`, `49.999 has more digits after the point`},
	} {
		r := cli(t, stack, `{"id":"i-0","total":"1.00","scan":"","note":null,"issued_at":"2026-01-02T15:04:05Z"}
{"id":"i-1","total":`+tc.total+`,"scan":"","note":null,"issued_at":"2026-01-02T15:04:05Z"}
`, args...)
		if r.code != 1 || !strings.Contains(r.err, "line 2: field total: "+tc.want) || !strings.Contains(r.err, "nothing was sent") {
			t.Errorf("total %s: exit %d, stderr %q", tc.total, r.code, r.err)
		}
	}
	if n := evbustest.Records(t, stack, "invoices"); n != 0 {
		t.Fatalf("refused input sent %d records", n)
	}

	h, received := consumeInvoices(t, stack)
	cli(t, stack, `{"id":"i-1","total":"49.99","scan":"AP8=","note":"paid","issued_at":"2026-01-02T15:04:05.123Z"}
{"id":"i-2","total":"-1.00","scan":"","note":null,"issued_at":"2026-01-02T15:04:05Z"}
{"id":"i-3","total":0.05,"scan":"","note":null,"issued_at":"2026-01-02T16:04:05+01:00"}
`, args...).ok(t, "publish")
	cli(t, stack, `{"id":"i-4","total":"\u0013\u0087","scan":"\u0000\u00ff","note":{"string":"avro"},"issued_at":1767366245123}`,
		append(args, "--avro-json")...).ok(t, "publish --avro-json")
	// A Go service's 49.99, for tail to print.
	cl, _ := admin(t, stack)
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	enc, err := bus.NewEncoder(t.Context(), reg, bus.Source("/billing"), bus.Types(invoiced))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := enc.Record(t.Context(), &Invoice{ID: "i-5", Total: big.NewRat(4999, 100), Scan: []byte{}, IssuedAt: time.UnixMilli(1767366245123)})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}

	h.wait(t, "the consumer receives the five invoices", func(runs map[string]int) bool { return len(runs) == 5 })
	all := received()
	at := time.Date(2026, 1, 2, 15, 4, 5, 123e6, time.UTC)
	for id, want := range map[string]struct {
		total, scan, note string
		at                time.Time
	}{
		"i-1": {"4999/100", "\x00\xff", "paid", at},
		"i-2": {"-1", "", "", at.Truncate(time.Second)},
		"i-3": {"1/20", "", "", at.Truncate(time.Second)},
		"i-4": {"4999/100", "\x00\xff", "avro", at},
	} {
		inv := all[id]
		note := ""
		if inv.Note != nil {
			note = *inv.Note
		}
		if inv.Total == nil || inv.Total.RatString() != want.total || string(inv.Scan) != want.scan || note != want.note || !inv.IssuedAt.Equal(want.at) {
			t.Errorf("%s: the consumer received total %v scan %q note %q issued_at %v, want %s %q %q %v", id, inv.Total, inv.Scan, note, inv.IssuedAt, want.total, want.scan, want.note, want.at)
		}
	}

	// tail prints each as it was written, in both modes.
	for key, want := range map[string]string{"i-1": "49.99", "i-2": "-1.00", "i-3": "0.05", "i-4": "49.99", "i-5": "49.99"} {
		v := valueOf(t, cli(t, stack, "", "tail", "invoices", "--from", "beginning", "--key", key, "--count", "1").ok(t, "tail").out)
		if v["total"] != want {
			t.Errorf("tail %s: total %v, want %q", key, v["total"], want)
		}
	}
	plain := valueOf(t, cli(t, stack, "", "tail", "invoices", "--from", "beginning", "--key", "i-1", "--count", "1").ok(t, "tail").out)
	if want := `{"id":"i-1","total":"49.99","scan":"AP8=","note":"paid","issued_at":"2026-01-02T15:04:05.123Z"}`; mustJSON(plain) != mustJSON(decodeJSON(t, want)) {
		t.Errorf("tail i-1 = %s, want %s", mustJSON(plain), want)
	}
	strict := valueOf(t, cli(t, stack, "", "tail", "invoices", "--from", "beginning", "--key", "i-1", "--count", "1", "--avro-json").ok(t, "tail --avro-json").out)
	if want := `{"id":"i-1","total":"\u0013\u0087","scan":"\u0000\u00ff","note":{"string":"paid"},"issued_at":1767366245123}`; mustJSON(strict) != mustJSON(decodeJSON(t, want)) {
		t.Errorf("tail --avro-json i-1 = %s, want %s", mustJSON(strict), want)
	}

	// dlt show prints the dead letter of i-2 the same way.
	dl := evbustest.ExpectDeadLettered(t, stack, "invoices", "billing", func(d wire.DeadLetter) bool { return string(d.Record.Key) == "i-2" })
	where := []string{"dlt", "show", dl.Record.Topic, itoa(int64(dl.Record.Partition)), itoa(dl.Record.Offset)}
	if v, _ := shown(t, cli(t, stack, "", where...).ok(t, "dlt show").out)["value"].(map[string]any); v["total"] != "-1.00" || v["scan"] != "" || v["note"] != nil {
		t.Errorf("dlt show: value %v, want total -1.00", v)
	}
	if v, _ := shown(t, cli(t, stack, "", append(where, "--avro-json")...).ok(t, "dlt show --avro-json").out)["value"].(map[string]any); v["total"] != "\u009c" || v["issued_at"] != 1767366245000.0 {
		t.Errorf("dlt show --avro-json: value %v, want total \"\\u009c\" (-100 unscaled, one byte)", v)
	}
}

// TestRecordBytesAsJSON: tail and dlt show lose no byte of keys and
// header values (text as strings, anything else as {"base64": ...}, null
// as null), and tell a tombstone from an empty value.
func TestRecordBytesAsJSON(t *testing.T) {
	stack := evbustest.Start(t)
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "raw", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(),
		&kgo.Record{Topic: "raw", Key: []byte{0xff, 0xfe}, Value: nil, Headers: []kgo.RecordHeader{
			{Key: "bin", Value: []byte{0xff, 0x00, 0x01}},
			{Key: "text", Value: []byte("héllo\tworld")},
			{Key: "null", Value: nil},
			{Key: "empty", Value: []byte{}},
			{Key: "id", Value: []byte{0, 0, 0, 0, 5}}, // valid UTF-8, not text
		}},
		&kgo.Record{Topic: "raw", Key: []byte("k"), Value: []byte{}},
		&kgo.Record{Topic: "raw", Key: nil, Value: nil},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wantHeaders := `{"bin":{"base64":"/wAB"},"text":"héllo\tworld","null":null,"empty":"","id":{"base64":"AAAAAAU="}}`
	check := func(what string, got []map[string]any) {
		t.Helper()
		if len(got) != 3 {
			t.Fatalf("%s: %d records", what, len(got))
		}
		tomb, empty, bare := got[0], got[1], got[2]
		if mustJSON(tomb["key"]) != mustJSON(decodeJSON(t, `{"base64":"//4="}`)) || mustJSON(tomb["headers"]) != mustJSON(decodeJSON(t, wantHeaders)) {
			t.Errorf("%s: key %v headers %v, want {\"base64\":\"//4=\"} and %s", what, tomb["key"], tomb["headers"], wantHeaders)
		}
		if v, ok := tomb["value"]; !ok || v != nil || tomb["tombstone"] != true || tomb["decode_error"] != nil || tomb["value_hex"] != nil {
			t.Errorf("%s: tombstone printed as %v", what, tomb)
		}
		if _, ok := empty["tombstone"]; ok || empty["key"] != "k" || empty["value"] != nil || empty["value_hex"] != "" || empty["decode_error"] == nil {
			t.Errorf("%s: empty value printed as %v", what, empty)
		}
		if k, ok := bare["key"]; !ok || k != nil || bare["tombstone"] != true {
			t.Errorf("%s: null key and value printed as %v", what, bare)
		}
	}
	check("tail", jsonLines(t, cli(t, stack, "", "tail", "raw", "--from", "beginning", "--count", "3").ok(t, "tail").out))
	var shows []map[string]any
	for offset := range 3 {
		shows = append(shows, shown(t, cli(t, stack, "", "dlt", "show", "raw", "0", itoa(int64(offset))).ok(t, "dlt show").out))
	}
	check("dlt show", shows)
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
