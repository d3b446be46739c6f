package console_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/console"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

type card struct {
	Number string `avro:"number"`
	Holder string `avro:"holder"`
}

type line struct {
	SKU string `avro:"sku"`
}

type paymentTaken struct {
	ID     string `avro:"id"`
	Card   card   `avro:"card"`
	Amount int64  `avro:"amount"`
	Lines  []line `avro:"lines"`
}

var paymentType = bus.Event[paymentTaken]("payments", func(e *paymentTaken) string { return e.ID }, bus.Namespace("com.example.console"))

const (
	cardNumber = "4111111111111111"
	holderName = "Ada Lovelace"
	skuValue   = "SKU-SECRET-77"
)

// deadLetters writes n dead letters of group billing for payments, each
// failing with errText(i), and returns their ids.
func (f *fixture) deadLetters(t *testing.T, n int, errText func(i int) string) []string {
	t.Helper()
	enc, err := bus.NewEncoder(t.Context(), f.reg, bus.Source("/payments"), bus.Types(paymentType))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 2, 15, 4, 0, 0, time.UTC)
	var ids []string
	for i := range n {
		rec, err := enc.Record(t.Context(), paymentTaken{ID: fmt.Sprintf("p-%d", i), Card: card{cardNumber, holderName}, Amount: 4999, Lines: []line{{skuValue}}})
		if err != nil {
			t.Fatal(err)
		}
		dl := wire.DeadLetterRecord(rec, wire.Origin{Topic: "payments", Offset: int64(i), Timestamp: at}, "billing", wire.KindPermanent, 3, errors.New(errText(i)), at.Add(time.Duration(i)*time.Second))
		res := f.cl.ProduceSync(t.Context(), dl)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, wire.DeadLetterID(res[0].Record))
	}
	return ids
}

func (f *fixture) createPayments(t *testing.T) {
	t.Helper()
	if err := bus.CreateTopics(t.Context(), kadm.NewClient(f.cl), bus.TopicSpec{Name: "payments", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
}

// TestDeadLetterPages: the group page lists the fingerprints, the
// fingerprint page its dead letters, the letter page its headers, its
// value with every value masked and NeverShow fields absent, and its
// history; an undecodable value shows why, its bytes masked.
func TestDeadLetterPages(t *testing.T) {
	f := newFixture(t, func(c *console.Config) { c.NeverShow = []string{"card.number"} })
	f.createPayments(t)
	declined := f.deadLetters(t, 3, func(i int) string { return fmt.Sprintf("card c-%d declined", i) })
	timeouts := f.deadLetters(t, 1, func(int) string { return "bank at 10.0.0.1:443 timed out" })
	// A value that is no Avro the registry knows.
	at := time.Date(2026, 11, 2, 16, 0, 0, 0, time.UTC)
	raw := &kgo.Record{Key: []byte("k-raw"), Value: []byte("\x00\x00\x00\x7f\x01secret-bytes")}
	res := f.cl.ProduceSync(t.Context(), wire.DeadLetterRecord(raw, wire.Origin{Topic: "payments", Timestamp: at}, "billing", wire.KindPoison, 1, errors.New("not Avro"), at))
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	poison := wire.DeadLetterID(res[0].Record)

	ls, _, err := deadletter.Read(t.Context(), f.cl, "billing")
	if err != nil || len(ls) != 5 {
		t.Fatalf("read back %d dead letters: %v", len(ls), err)
	}
	fpDeclined := deadletter.FingerprintOf(ls[0]).ID

	r := f.do(t, nil, "GET", "/groups/billing", nil, bearerViewer)
	if r.code != 200 || !strings.Contains(r.body, `<table id="fingerprints"`) || strings.Count(r.body, "<tr data-fingerprint=") != 3 {
		t.Fatalf("group page: %d\n%s", r.code, r.body)
	}
	// The page groups as the Manager does, in its order.
	m, err := deadletter.NewManager(t.Context(), f.cl, "billing")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	gs, err := m.Groups(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, g := range gs {
		want = append(want, fmt.Sprintf("%s|%d|%s|%s", g.Fingerprint.ID, g.Count, g.FirstFailed.UTC().Format("2006-01-02 15:04:05Z"), g.LastFailed.UTC().Format("2006-01-02 15:04:05Z")))
	}
	for _, part := range strings.Split(r.body, "<tr data-fingerprint=")[1:] {
		c := strings.Split(cells(between(part, ">", "</tr>")), "|")
		got = append(got, strings.Join(c[:4], "|"))
	}
	if !slices.Equal(got, want) {
		t.Errorf("group page rows %q, Manager.Groups %q", got, want)
	}
	row := between(r.body, `<tr data-fingerprint="`+fpDeclined+`">`, "</tr>")
	if c := cells(row); !strings.HasPrefix(c, fpDeclined+"|3|2026-11-02 15:04:00Z|2026-11-02 15:04:02Z|open 3|permanent · com.example.console.paymentTaken|card c-2 declined") ||
		!strings.Contains(row, `href="/groups/billing/fingerprints/`+fpDeclined+`"`) {
		t.Errorf("fingerprint row: %q\n%s", c, row)
	}

	r = f.do(t, nil, "GET", "/groups/billing/fingerprints/"+fpDeclined, nil, bearerViewer)
	if r.code != 200 || !strings.Contains(r.body, `<table id="letters"`) || strings.Count(r.body, "<tr data-id=") != 3 {
		t.Fatalf("fingerprint page: %d\n%s", r.code, r.body)
	}
	for _, id := range declined {
		row := between(r.body, `<tr data-id="`+id+`">`, "</tr>")
		if !strings.Contains(row, `<td class="state">open</td>`) || !strings.Contains(row, `href="/groups/billing/letter?id=`+url.QueryEscape(id)+`"`) {
			t.Errorf("letter row %s: %s", id, row)
		}
	}

	r = f.do(t, nil, "GET", "/groups/billing/letter?id="+url.QueryEscape(declined[1]), nil, bearerViewer)
	value := between(r.body, `<div id="value">`, "</div>")
	if r.code != 200 || !strings.Contains(r.body, `<table id="headers">`) || !strings.Contains(between(r.body, `<table id="headers">`, "</table>"), "com.example.console.paymentTaken") ||
		!strings.Contains(r.body, `id="history"`) || !strings.Contains(r.body, `<dd class="state" id="state">open</dd>`) {
		t.Fatalf("letter page: %d\n%s", r.code, r.body)
	}
	for _, name := range []string{">id<", ">card<", ">holder<", ">amount<", ">lines<", ">sku<", ">number<"} {
		if !strings.Contains(value, name) {
			t.Errorf("the value does not show field %s:\n%s", name, value)
		}
	}
	if strings.Count(value, "••••") != 4 || !strings.Contains(value, "(never shown)") {
		t.Errorf("the value is not masked (4 masked leaves, card.number never shown):\n%s", value)
	}
	for _, secret := range []string{cardNumber, holderName, skuValue, "4999", "p-1"} {
		if strings.Contains(value, secret) {
			t.Errorf("the masked value shows %q:\n%s", secret, value)
		}
	}

	r = f.do(t, nil, "GET", "/groups/billing/letter?id="+url.QueryEscape(poison), nil, bearerViewer)
	if v := between(r.body, `<div id="value">`, "</div>"); r.code != 200 || !strings.Contains(v, "does not decode") || !strings.Contains(v, "••••") ||
		strings.Contains(r.body, "secret-bytes") || strings.Contains(r.body, fmt.Sprintf("%x", "secret-bytes")) {
		t.Errorf("undecodable value: %d\n%s", r.code, v)
	}
	_ = timeouts

	for _, p := range []string{"/groups/billing/letter?id=" + url.QueryEscape("payments.billing.dlt/0/999"), "/groups/billing/fingerprints/000000000000", "/groups/nobody", "/groups/billing/letter"} {
		if r := f.do(t, nil, "GET", p, nil, bearerViewer); r.code != 404 && r.code != 400 {
			t.Errorf("GET %s: %d, want 404", p, r.code)
		}
	}
}

// TestManagersShared: concurrent first pages of a group share one
// Manager (race detector), a name that is no group's gets 404 each time,
// and after Close the group's pages fail with 503 while the client given
// stays usable.
func TestManagersShared(t *testing.T) {
	f := newFixture(t)
	f.createPayments(t)
	f.deadLetters(t, 2, func(int) string { return "card declined" })
	get := func(path string, want int) {
		done := make(chan int, 8)
		for range 8 {
			go func() {
				req, _ := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+viewerSecret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- 0
					return
				}
				resp.Body.Close()
				done <- resp.StatusCode
			}()
		}
		for range 8 {
			if code := <-done; code != want {
				t.Errorf("concurrent GET %s: %d, want %d", path, code, want)
			}
		}
	}
	get("/groups/billing", 200)
	get("/groups/nobody", 404)
	get("/groups/nobody", 404)
	f.h.Close()
	if r := f.do(t, nil, "GET", "/groups/billing", nil, bearerViewer); r.code != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d", r.code)
	}
	if err := f.cl.Ping(t.Context()); err != nil {
		t.Errorf("the client after Close: %v", err)
	}
}
