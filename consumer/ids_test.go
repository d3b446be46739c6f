package consumer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/wire"
)

// withHeader returns a copy of r whose headers of key are replaced by
// one header per value (none for no values), where the first of them was.
func withHeader(r *kgo.Record, key string, values ...string) *kgo.Record {
	out := &kgo.Record{Key: r.Key, Value: r.Value}
	done := false
	for _, h := range r.Headers {
		if h.Key != key {
			out.Headers = append(out.Headers, h)
			continue
		}
		if !done {
			for _, v := range values {
				out.Headers = append(out.Headers, kgo.RecordHeader{Key: key, Value: []byte(v)})
			}
			done = true
		}
	}
	return out
}

// unstorableIDs are ce_ids PostgreSQL cannot store as text in an index:
// a NUL byte, invalid UTF-8, 10 KB of characters that do not compress.
func unstorableIDs() map[string]string {
	rnd := rand.New(rand.NewPCG(1, 2))
	long := make([]byte, 10_000)
	for i := range long {
		long[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rnd.IntN(62)]
	}
	return map[string]string{
		"nul":          "evt-\x00-1",
		"invalid utf8": "evt-\xff\xfe-2",
		"10 KB":        string(long),
	}
}

// TestIdempotentUnstorableIDs: a record whose ce_id the database cannot
// store as it is, followed by a good record of the same key, on each
// database, one record per transaction and in batches: both are handled,
// the bad one's row holds the digest form (the same on every database),
// and a redelivery of it is a duplicate.
func TestIdempotentUnstorableIDs(t *testing.T) {
	eachDB(t, []string{pgxDB, stdlibDB, sqliteDB}, func(t *testing.T, db *tdb) {
		for _, mode := range []struct {
			group    string
			register func(c *consumer.Consumer, group string)
		}{
			{"per-record", func(c *consumer.Consumer, g string) { db.handle(c, effect(db.d, g)) }},
			{"batch", func(c *consumer.Consumer, g string) { db.handle(c, effect(db.d, g), consumer.Batch(50)) }},
			{"batch-handler", func(c *consumer.Consumer, g string) {
				eff := effect(db.d, g)
				db.handleBatch(c, func(ctx context.Context, q sqldb.Querier, evs []*Order, ms []bus.Meta) error {
					for i, ev := range evs {
						if err := eff(ctx, q, ev, ms[i]); err != nil {
							return err
						}
					}
					return nil
				}, consumer.Batch(50))
			}},
		} {
			t.Run(mode.group, func(t *testing.T) {
				e := start(t)
				e.topics(1, "orders", wire.DeadLetterTopic("orders", mode.group))
				enc := e.encoder()
				ids := unstorableIDs()
				var bad []*kgo.Record
				for name, id := range ids {
					b, err := enc.Record(context.Background(), &Order{OrderID: "k", Note: name})
					if err != nil {
						t.Fatal(err)
					}
					g, err := enc.Record(context.Background(), &Order{OrderID: "k", Note: "good after " + name})
					if err != nil {
						t.Fatal(err)
					}
					b = withHeader(b, wire.HeaderID, id)
					bad = append(bad, b)
					e.produce("orders", b, g)
				}
				c := e.consumer(mode.group)
				mode.register(c, mode.group)
				run(t, c)
				n := 2 * len(ids)
				waitFor(t, "the bad and the good records settled", func() bool { return settledCount(c) == uint64(n) })
				e.produce("orders", bad...) // delivered again
				waitFor(t, "the redeliveries settled", func() bool { return settledCount(c) == uint64(n+len(bad)) })
				st := c.Stats()
				if st.Handled != uint64(n) || st.Duplicates != uint64(len(bad)) || st.DatabaseWaits != 0 {
					t.Errorf("stats %+v: want %d handled, %d duplicates, no database waits", st, n, len(bad))
				}
				if rows, d := db.effects(t, mode.group); rows != n || d != n {
					t.Errorf("%d effects of %d ids, want %d of %d", rows, d, n, n)
				}
				for name, id := range ids {
					sum := sha256.Sum256([]byte(id))
					stored := "evbus-sha256:" + hex.EncodeToString(sum[:])
					if got := consumer.ProcessedID(id); got != stored {
						t.Errorf("%s: ProcessedID = %q, want %q", name, got, stored)
					}
					if k := db.count(t, "SELECT count(*) FROM evbus_processed WHERE consumer_group = "+db.d.Arg(1)+" AND message_id = "+db.d.Arg(2), mode.group, stored); k != 1 {
						t.Errorf("%s: %d processed rows %s, want 1", name, k, stored)
					}
				}
			})
		}
	})
}

// TestProcessedID: ids that are valid UTF-8 without NUL and at most 512
// bytes are stored as they are, every other id as its digest; an id that
// looks like a digest is digested too, so no id can take another's row.
func TestProcessedID(t *testing.T) {
	digest := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "evbus-sha256:" + hex.EncodeToString(sum[:])
	}
	long := strings.Repeat("a", 513)
	for _, c := range []struct{ id, want string }{
		{"0190f7a2-7c1d-7b3e-9a41-3f1c2d4e5f60", "0190f7a2-7c1d-7b3e-9a41-3f1c2d4e5f60"},
		{"kafka:orders/0/17", "kafka:orders/0/17"},
		{"é€😀", "é€😀"},
		{string(make([]byte, 0)), ""},
		{"a\x00b", digest("a\x00b")},
		{"\xc3\x28", digest("\xc3\x28")},
		{long, digest(long)},
		{digest("x"), digest(digest("x"))},
	} {
		if got := consumer.ProcessedID(c.id); got != c.want {
			t.Errorf("ProcessedID(%.20q) = %.40q, want %.40q", c.id, got, c.want)
		}
	}
	if id := strings.Repeat("é", 256); consumer.ProcessedID(id) != id {
		t.Errorf("a valid id of %d bytes not stored as it is", len(id))
	}
}

// TestEventIDHeaders: records from a producer without ce_specversion whose
// ce_id headers do not name one event, each delivered twice. With
// RequireEventID, an empty ce_id or more than one is poison; in the default
// mode, ce_ids that differ are poison, equal ones count as one, and an empty
// one counts as none (the record's coordinates). No record gets two ids.
func TestEventIDHeaders(t *testing.T) {
	db := openDB(t, sqliteDB)
	e := start(t)
	e.topics(1, "orders", wire.DeadLetterTopic("orders", "strict"), wire.DeadLetterTopic("orders", "lax"))
	enc := e.encoder()
	foreign := func(note string, ids ...string) *kgo.Record {
		r, err := enc.Record(context.Background(), &Order{OrderID: "k", Note: note})
		if err != nil {
			t.Fatal(err)
		}
		return withHeader(withHeader(r, wire.HeaderSpecVersion), wire.HeaderID, ids...)
	}
	recs := []*kgo.Record{
		foreign("one then empty", "evt-1", ""),
		foreign("twice the same", "evt-2", "evt-2"),
		foreign("empty", ""),
		foreign("good", "evt-4"),
	}
	e.produce("orders", recs...)
	e.produce("orders", recs...) // delivered again

	strict, lax := evbustest.NewRecorder(), evbustest.NewRecorder()
	cs := e.consumer("strict", strict.Option())
	db.handle(cs, effect(db.d, "strict"), consumer.MessageID(consumer.RequireEventID))
	run(t, cs)
	cl := e.consumer("lax", lax.Option())
	db.handle(cl, effect(db.d, "lax"))
	run(t, cl)
	waitFor(t, "every record settled", func() bool { return settledCount(cs) == 8 && settledCount(cl) == 8 })

	outcomes := func(r *evbustest.Recorder) []string {
		var out []string
		for _, o := range r.Outcomes() {
			s := string(o.Result)
			if o.Result == consumer.DeadLettered {
				s += " " + string(o.Kind)
			}
			out = append(out, s)
		}
		return out
	}
	// In offset order: the four records, then the four again.
	want := "[dead-lettered poison dead-lettered poison dead-lettered poison handled dead-lettered poison dead-lettered poison dead-lettered poison duplicate]"
	if got := fmt.Sprint(outcomes(strict)); got != want {
		t.Errorf("RequireEventID: %s, want %s", got, want)
	}
	want = "[dead-lettered poison handled handled handled dead-lettered poison duplicate handled duplicate]"
	if got := fmt.Sprint(outcomes(lax)); got != want {
		t.Errorf("default: %s, want %s", got, want)
	}
	for _, d := range e.read(wire.DeadLetterTopic("orders", "strict"), 6)[:3] {
		dl, err := wire.ParseDeadLetter(d)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dl.Error, "ce_id") || dl.Kind != wire.KindPoison {
			t.Errorf("dead letter %s %q, want poison naming ce_id", dl.Kind, dl.Error)
		}
		t.Logf("dlt-error: %s", dl.Error)
	}
	for group, want := range map[string]string{"strict": "evt-4", "lax": "evt-2 evt-4 kafka:orders/0/2 kafka:orders/0/6"} {
		rows, err := db.q.Query(context.Background(), "SELECT message_id FROM evbus_processed WHERE consumer_group = ?1 ORDER BY 1", group)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if got := strings.Join(ids, " "); got != want {
			t.Errorf("%s: processed %s, want %s", group, got, want)
		}
	}
}

// FuzzProcessedID: whatever the id, its stored form is text PostgreSQL
// takes and indexes (valid UTF-8, no NUL, at most MaxStoredIDLen bytes),
// and two different ids never share one.
func FuzzProcessedID(f *testing.F) {
	f.Add("0190f7a2-7c1d-7b3e-9a41-3f1c2d4e5f60", "evt-\x00-1")
	f.Add("evt-\xff", consumer.ProcessedID("evt-\xff"))
	f.Add(strings.Repeat("x", consumer.MaxStoredIDLen), strings.Repeat("x", consumer.MaxStoredIDLen+1))
	f.Fuzz(func(t *testing.T, a, b string) {
		pa, pb := consumer.ProcessedID(a), consumer.ProcessedID(b)
		if !utf8.ValidString(pa) || strings.ContainsRune(pa, 0) || len(pa) > consumer.MaxStoredIDLen {
			t.Fatalf("ProcessedID(%q) = %q: not storable", a, pa)
		}
		if a != b && pa == pb {
			t.Fatalf("ProcessedID(%q) = ProcessedID(%q) = %q", a, b, pa)
		}
	})
}
