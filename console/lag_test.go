package console_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/console"
)

// consumePart has group consume topic's records with a consumer-group
// client and commit the first n of them.
func consumePart(t *testing.T, brokers []string, group, topic string, total, n int) {
	t.Helper()
	gc, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < total {
		fs := gc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("group %s read %d of %d records of %s", group, len(got), total, topic)
		}
		got = append(got, fs.Records()...)
	}
	if n > 0 {
		if err := gc.CommitRecords(ctx, got[:n]...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGroupLag: a group that consumed part of a topic lags by the rest,
// in records and by the age of the first record it has not consumed; a
// topic it consumed whole has no lag; an unknown group has no partitions.
func TestGroupLag(t *testing.T) {
	f := newFixture(t)
	adm := kadm.NewClient(f.cl)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1}, bus.TopicSpec{Name: "payments", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range 10 {
		rec := &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "o%d", i), Timestamp: t0.Add(time.Duration(i) * time.Minute)}
		if err := f.cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := f.cl.ProduceSync(t.Context(), &kgo.Record{Topic: "payments", Value: fmt.Appendf(nil, "p%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumePart(t, f.stack.Brokers(), "billing", "orders", 10, 4)
	consumePart(t, f.stack.Brokers(), "billing", "payments", 3, 3)

	before := time.Now()
	lags, err := console.GroupLag(t.Context(), f.cl, "billing")
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if len(lags) != 2 {
		t.Fatalf("GroupLag: %+v, want orders/0 and payments/0", lags)
	}
	o, p := lags[0], lags[1]
	wantOldest := t0.Add(4 * time.Minute)
	if o.Topic != "orders" || o.Partition != 0 || o.Committed != 4 || o.End != 10 || o.Records != 6 || !o.Oldest.Equal(wantOldest) ||
		o.Age < before.Sub(wantOldest) || o.Age > after.Sub(wantOldest) {
		t.Errorf("orders: %+v, want committed 4, end 10, 6 records, oldest %v", o, wantOldest)
	}
	if p.Topic != "payments" || p.Committed != 3 || p.End != 3 || p.Records != 0 || p.Age != 0 || !p.Oldest.IsZero() {
		t.Errorf("payments: %+v, want caught up", p)
	}
	if none, err := console.GroupLag(t.Context(), f.cl, "nobody"); err != nil || len(none) != 0 {
		t.Errorf("unknown group: %+v, %v", none, err)
	}

	r := f.do(t, nil, "GET", "/groups/billing/lag", nil, bearerViewer)
	row := between(r.body, `<tr data-topic="orders" data-partition="0">`, "</tr>")
	if r.code != 200 || !strings.Contains(r.body, `<table id="lag">`) || !strings.HasPrefix(cells(row), "orders|0|4|10|6|") ||
		!regexp.MustCompile(`\|\d+m\d+s$`).MatchString(cells(row)) || !strings.Contains(row, wantOldest.UTC().Format("2006-01-02 15:04:05Z")) {
		t.Errorf("lag page: %d, orders row %q:\n%s", r.code, cells(row), r.body)
	}
	if r := f.do(t, nil, "GET", "/groups/nobody/lag", nil, bearerViewer); r.code != 200 || !strings.Contains(r.body, "no committed offset") {
		t.Errorf("lag page of an unknown group: %d\n%s", r.code, r.body)
	}
}

// between returns the text of s from start to the next end.
func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	in, _, _ := strings.Cut(rest, end)
	return in
}

// cells returns the texts of a row's cells joined by "|".
func cells(row string) string {
	var out []string
	for _, part := range strings.Split(row, "<td")[1:] {
		_, text, _ := strings.Cut(part, ">")
		text, _, _ = strings.Cut(text, "</td>")
		out = append(out, strings.TrimSpace(stripTags(text)))
	}
	return strings.Join(out, "|")
}

func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestGroupLagTransactionMarker: a group that consumed every record of a
// transactional topic has only the commit marker left: GroupLag returns
// without waiting for a record that never comes, with no lag in time.
func TestGroupLagTransactionMarker(t *testing.T) {
	f := newFixture(t)
	if err := bus.CreateTopics(t.Context(), kadm.NewClient(f.cl), bus.TopicSpec{Name: "ledger-events", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	tx, err := kgo.NewClient(kgo.SeedBrokers(f.stack.Brokers()...), kgo.TransactionalID("console-lag-test"), kgo.DefaultProduceTopic("ledger-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := tx.ProduceSync(t.Context(), &kgo.Record{Value: fmt.Appendf(nil, "e%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	consumePart(t, f.stack.Brokers(), "audit", "ledger-events", 3, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	lags, err := console.GroupLag(ctx, f.cl, "audit")
	if err != nil {
		t.Fatal(err)
	}
	if len(lags) != 1 || lags[0].Committed != 3 || lags[0].End != 4 || lags[0].Age != 0 || !lags[0].Oldest.IsZero() {
		t.Errorf("GroupLag after a transaction: %+v, want committed 3, end 4 (the marker), no age", lags)
	}
}
