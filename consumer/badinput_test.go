package consumer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/wire"
)

// Basket has an array and a string, the fields hostile lengths target.
type Basket struct {
	BasketID string   `avro:"basket_id"`
	Items    []string `avro:"items"`
}

var basketType = bus.Event[Basket]("baskets", func(b *Basket) string { return b.BasketID }, bus.Namespace("com.example.test"))

// encodeBasket returns b as a producer would frame it: registered under
// the baskets topic, Confluent prefix, Avro body.
func encodeBasket(t *testing.T, e *env, b *Basket) []byte {
	t.Helper()
	w, err := e.reg.Writer(context.Background(), "baskets", basketType.Descriptor().Schema())
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encoder(w.ID, w.Schema, basketType.Descriptor().Schema())
	if err != nil {
		t.Fatal(err)
	}
	v, err := enc.AppendEncode(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// basketHeaders are the CloudEvents headers of a Basket record, then extra.
func basketHeaders(extra ...kgo.RecordHeader) []kgo.RecordHeader {
	return append([]kgo.RecordHeader{
		{Key: wire.HeaderSpecVersion, Value: []byte("1.0")}, {Key: wire.HeaderID, Value: []byte("id")},
		{Key: wire.HeaderSource, Value: []byte("/corpus")}, {Key: wire.HeaderType, Value: []byte("com.example.test.Basket")},
	}, extra...)
}

// TestBadInputCorpus: one partition gets every kind of bad record between
// good ones. The bad ones are dead-lettered as poison (or, for what is not
// bad, handled or skipped), in order; the partition keeps flowing; nothing
// panics; and the memory the consumer allocates stays far from what the
// hostile lengths claim.
func TestBadInputCorpus(t *testing.T) {
	e := start(t)
	const group = "corpus"
	dltTopic := wire.DeadLetterTopic("baskets", group)
	e.topics(1, "baskets", dltTopic)
	ctx := context.Background()
	good := encodeBasket(t, e, &Basket{BasketID: "k", Items: []string{"apple"}})
	prefix := good[:5]
	body := func(parts ...[]byte) []byte { return append(bytes.Clone(prefix), bytes.Join(parts, nil)...) }
	varint := func(n int64) []byte { return binary.AppendVarint(nil, n) }
	str := func(s string) []byte { return append(varint(int64(len(s))), s...) }
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64)
	for i := range random {
		random[i] = byte(rnd.UintN(256))
	}
	ce := basketHeaders
	type want int
	const (
		poison want = iota
		handled
		skipped
	)
	cases := []struct {
		name string
		rec  *kgo.Record
		want want
	}{
		{"random bytes", &kgo.Record{Value: random}, poison},
		{"wrong magic byte", &kgo.Record{Value: append([]byte{1}, good[1:]...), Headers: ce()}, poison},
		{"empty value", &kgo.Record{Headers: ce()}, poison},
		{"unknown schema id", &kgo.Record{Value: append([]byte{0, 0x7f, 0, 0, 1}, good[5:]...), Headers: ce()}, poison},
		{"truncated body", &kgo.Record{Value: good[:len(good)-2], Headers: ce()}, poison},
		{"another schema's body", &kgo.Record{Value: body(varint(300)), Headers: ce()}, poison},
		{"bytes left over", &kgo.Record{Value: append(bytes.Clone(good), 0x02, 0x02), Headers: ce()}, poison},
		{"array of 2^40 items", &kgo.Record{Value: body(str("k"), varint(1<<40), str("x")), Headers: ce()}, poison},
		{"negative array block of -2^40", &kgo.Record{Value: body(str("k"), varint(-1<<40), varint(8), str("x")), Headers: ce()}, poison},
		{"string of 2^40 bytes", &kgo.Record{Value: body(varint(1 << 40)), Headers: ce()}, poison},
		{"CloudEvent without ce_type", &kgo.Record{Value: good, Headers: ce()[:3]}, poison},
		{"ce_time that is no time", &kgo.Record{Value: good, Headers: ce(kgo.RecordHeader{Key: wire.HeaderTime, Value: []byte("\xff\xfe")})}, poison},
		{"invalid UTF-8 key", &kgo.Record{Key: []byte{0xff, 0xfe, 0xfd}, Value: good, Headers: ce()}, handled},
		{"a type nobody handles", &kgo.Record{Value: good, Headers: ce(kgo.RecordHeader{Key: wire.HeaderType, Value: []byte("com.example.Unknown")})[1:]}, skipped},
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, c := range cases {
		c.rec.Topic = "baskets"
		if c.rec.Key == nil {
			c.rec.Key = []byte("k")
		}
		if err := e.cl.ProduceSync(ctx, c.rec).FirstErr(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	last := &kgo.Record{Topic: "baskets", Key: []byte("k"), Value: good, Headers: ce(kgo.RecordHeader{Key: "note", Value: []byte("last")})}
	if err := e.cl.ProduceSync(ctx, last).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var (
		mu   sync.Mutex
		keys [][]byte
	)
	c := e.consumer(group)
	consumer.Handle(c, basketType, func(ctx context.Context, b *Basket, m bus.Meta) error {
		mu.Lock()
		keys = append(keys, m.Key)
		mu.Unlock()
		return nil
	})
	run(t, c)
	waitFor(t, "the last record handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(keys) == 2 })

	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The hostile lengths claim terabytes; the whole test, broker
	// included, allocates a small fraction of a GiB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 512<<20 {
		t.Errorf("%d MiB allocated while consuming the corpus", alloc>>20)
	}
	mu.Lock()
	if !bytes.Equal(keys[0], []byte{0xff, 0xfe, 0xfd}) || !bytes.Equal(keys[1], []byte("k")) {
		t.Errorf("handled keys %q, want the invalid UTF-8 key as it was, then k", keys)
	}
	mu.Unlock()

	var poisons []*kgo.Record
	for _, c := range cases {
		if c.want == poison {
			poisons = append(poisons, c.rec)
		}
	}
	dlts := e.read(dltTopic, len(poisons))
	for i, d := range dlts {
		if !bytes.Equal(d.Value, poisons[i].Value) {
			t.Errorf("dead letter %d is not %q's record", i, cases[i].name)
			continue
		}
		checkDeadLetter(t, d, poisons[i], group, wire.KindPoison, 0, "")
	}
	st := c.Stats()
	if st.DeadLettered[wire.KindPoison] != uint64(len(poisons)) || st.Skipped != 1 || st.Handled != 2 {
		t.Errorf("stats %+v: want %d poison, 1 skipped, 2 handled", st, len(poisons))
	}
}

// TestOversizeRecords: records near their topic's size limit (well over
// franz-go's default producer batch size) are dead-lettered whole, with
// the headers the dead-letter topic has room for, and the partition keeps
// flowing; a consumer with MaxValueBytes dead-letters a valid but larger
// event as poison without decoding it.
func TestOversizeRecords(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	const limit = 1_500_000
	if err := bus.CreateTopics(ctx, e.adm, bus.TopicSpec{Name: "baskets", Partitions: 1,
		Configs: map[string]string{"max.message.bytes": strconv.Itoa(limit)}, DeadLetterGroups: []string{"roomy", "strict"}}); err != nil {
		t.Fatal(err)
	}
	encode := func(b *Basket) []byte { return encodeBasket(t, e, b) }
	ce := basketHeaders()
	garbage := bytes.Repeat([]byte{0xff}, limit-2_000)
	bigValid := encode(&Basket{BasketID: "k", Items: []string{strings.Repeat("x", limit-3_000)}})
	recs := []*kgo.Record{
		{Topic: "baskets", Key: []byte("k"), Value: garbage, Headers: ce},
		{Topic: "baskets", Key: []byte("k"), Value: bigValid, Headers: ce},
		{Topic: "baskets", Key: []byte("k"), Value: encode(&Basket{BasketID: "k", Items: []string{"last"}}), Headers: ce},
	}
	big, err := kgo.NewClient(kgo.SeedBrokers(e.stack.Brokers()...), kgo.ProducerBatchMaxBytes(2*limit))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	for _, r := range recs {
		if err := big.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	for _, g := range []struct {
		group    string
		opts     []consumer.Option
		poisoned []*kgo.Record
		handled  []int // item lengths, in order
	}{
		{"roomy", nil, recs[:1], []int{limit - 3_000, len("last")}},
		{"strict", []consumer.Option{consumer.MaxValueBytes(1 << 20)}, recs[:2], []int{len("last")}},
	} {
		t.Run(g.group, func(t *testing.T) {
			var (
				mu      sync.Mutex
				handled []int
			)
			c := e.consumer(g.group, g.opts...)
			consumer.Handle(c, basketType, func(ctx context.Context, b *Basket, m bus.Meta) error {
				mu.Lock()
				defer mu.Unlock()
				handled = append(handled, len(b.Items[0]))
				return nil
			})
			run(t, c)
			waitFor(t, "the last record handled", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(handled) == len(g.handled)
			})
			mu.Lock()
			if !slices.Equal(handled, g.handled) {
				t.Errorf("handled items of %v bytes, want %v", handled, g.handled)
			}
			mu.Unlock()
			dlts := e.read(wire.DeadLetterTopic("baskets", g.group), len(g.poisoned))
			for i, d := range dlts {
				checkDeadLetter(t, d, g.poisoned[i], g.group, wire.KindPoison, 0, "")
			}
			if g.group == "strict" && !strings.Contains(headers(t, dlts[1])[wire.HeaderDLTError], "MaxValueBytes") {
				t.Errorf("the dead letter's error does not name the limit: %q", headers(t, dlts[1])[wire.HeaderDLTError])
			}
		})
	}
}

// TestDeadLetterTopicTooSmall: a consumer warns at start about a
// dead-letter topic that could not take a record as large as its topic
// allows, naming the topic and the size it needs.
func TestDeadLetterTopicTooSmall(t *testing.T) {
	e := start(t)
	if err := bus.CreateTopics(context.Background(), e.adm, bus.TopicSpec{Name: "baskets", Configs: map[string]string{"max.message.bytes": "2000000"}}); err != nil {
		t.Fatal(err)
	}
	dlt := wire.DeadLetterTopic("baskets", "narrow")
	e.topics(1, dlt) // the broker's default limit
	var logs logBuffer
	c := e.consumer("narrow", consumer.Logger(slog.New(slog.NewTextHandler(&logs, nil))))
	consumer.Handle(c, basketType, func(context.Context, *Basket, bus.Meta) error { return nil })
	run(t, c)
	want := fmt.Sprintf("topic=%s max_message_bytes=1048588 want_at_least=%d", dlt, 2000000+bus.DeadLetterHeadroom)
	waitFor(t, "the warning "+want, func() bool { return strings.Contains(logs.String(), want) })
}
