package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/console"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// state reads the ledger state of a dead letter with a Manager of its own.
func (f *fixture) states(t *testing.T, ids ...string) []wire.LedgerState {
	t.Helper()
	m, err := deadletter.NewManager(t.Context(), f.cl, "billing")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var out []wire.LedgerState
	for _, id := range ids {
		l, err := m.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.State)
	}
	return out
}

func allStates(ss []wire.LedgerState, want wire.LedgerState) bool {
	return !slices.ContainsFunc(ss, func(s wire.LedgerState) bool { return s != want })
}

// TestActionAuthorization: an action needs the operator role (a viewer
// gets 403 with a bearer token or a session), from a session the
// session's CSRF token (403 without, or with another), and the same
// origin (403 cross-site, whatever the token); a bearer request needs no
// CSRF token. A refused action records nothing.
func TestActionAuthorization(t *testing.T) {
	f := newFixture(t)
	f.createPayments(t)
	ids := f.deadLetters(t, 2, func(int) string { return "card declined" })
	viewer, viewerCSRF := f.signIn(t, viewerSecret)
	op, csrf := f.signIn(t, operatorSecret)
	_, otherCSRF := f.signIn(t, operatorSecret)
	form := func(csrf string) url.Values {
		return url.Values{"id": {ids[0]}, "reason": {"the card service is fixed"}, "csrf": {csrf}}
	}
	for _, action := range []string{"replay", "discard", "park", "reveal"} {
		p := "/groups/billing/actions/" + action
		for name, c := range map[string]struct {
			client *http.Client
			form   url.Values
			hdr    map[string]string
			want   int
		}{
			"viewer bearer":              {nil, form(""), bearerViewer, http.StatusForbidden},
			"viewer session":             {viewer, form(viewerCSRF), nil, http.StatusForbidden},
			"operator, no CSRF token":    {op, form(""), nil, http.StatusForbidden},
			"operator, another's token":  {op, form(otherCSRF), nil, http.StatusForbidden},
			"operator, wrong CSRF token": {op, form(csrf + "x"), nil, http.StatusForbidden},
			"operator, cross-site":       {op, form(csrf), map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
			"operator, other origin":     {op, form(csrf), map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
			"bearer, cross-site":         {nil, form(""), map[string]string{"Authorization": "Bearer " + operatorSecret, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
			"anonymous":                  {nil, form(csrf), nil, http.StatusUnauthorized},
		} {
			if r := f.do(t, c.client, "POST", p, c.form, c.hdr); r.code != c.want {
				t.Errorf("%s %s: %d, want %d: %s", name, action, r.code, c.want, r.body)
			}
		}
	}
	if ss := f.states(t, ids...); !allStates(ss, wire.LedgerOpen) {
		t.Fatalf("refused actions changed states: %v", ss)
	}
	// A viewer sees the letter's forms, their buttons disabled; an
	// operator the same forms enabled, with the session's CSRF token.
	letter := "/groups/billing/letter?id=" + url.QueryEscape(ids[0])
	vp, opPage := f.do(t, viewer, "GET", letter, nil, browser), f.do(t, op, "GET", letter, nil, browser)
	for _, form := range []string{"replay", "discard", "park", "reveal"} {
		open := `<form id="` + form + `" method="post" action="/groups/billing/actions/` + form + `">`
		if v := between(vp.body, open, "</form>"); !strings.Contains(v, `<button type="submit" disabled>`) || !strings.Contains(v, `name="id" value="`+ids[0]+`"`) {
			t.Errorf("viewer's %s form: %s", form, v)
		}
		if o := between(opPage.body, open, "</form>"); !strings.Contains(o, `<button type="submit">`) || !strings.Contains(o, `name="csrf" value="`+csrf+`"`) || !strings.Contains(o, `<textarea`) {
			t.Errorf("operator's %s form: %s", form, o)
		}
	}
	if !strings.Contains(vp.body, `id="viewer-note"`) || strings.Contains(opPage.body, `id="viewer-note"`) {
		t.Error("the viewer's note is missing, or shown to the operator")
	}
	// Same origin, right token: done.
	if r := f.do(t, op, "POST", "/groups/billing/actions/park", form(csrf), map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": f.srv.URL}); r.code != http.StatusSeeOther {
		t.Errorf("operator session park: %d %s", r.code, r.body)
	}
	// A bearer request needs no CSRF token.
	if r := f.do(t, nil, "POST", "/groups/billing/actions/park", url.Values{"id": {ids[1]}, "reason": {"hold"}}, bearerOp); r.code != http.StatusSeeOther {
		t.Errorf("operator bearer park: %d %s", r.code, r.body)
	}
	if ss := f.states(t, ids...); !allStates(ss, wire.LedgerParked) {
		t.Errorf("after the operator's parks: %v", ss)
	}
}

// TestReplayFingerprint: an operator replays a fingerprint from its page:
// back on the page with the outcome, its dead letters replaying and one
// replay record each in the replay topic.
func TestReplayFingerprint(t *testing.T) {
	f := newFixture(t)
	f.createPayments(t)
	ids := f.deadLetters(t, 3, func(i int) string { return "card c-" + string(rune('0'+i)) + " declined" })
	fp := fingerprintOf(t, f, ids[0])
	op, csrf := f.signIn(t, operatorSecret)
	page := f.do(t, op, "GET", "/groups/billing/fingerprints/"+fp, nil, browser)
	form := between(page.body, `<form id="replay-fingerprint" method="post" action="/groups/billing/actions/replay">`, "</form>")
	if !strings.Contains(form, `name="fingerprint" value="`+fp+`"`) || !strings.Contains(form, `name="csrf" value="`+csrf+`"`) ||
		!strings.Contains(form, `<textarea`) || !strings.Contains(form, `<button type="submit">`) {
		t.Fatalf("no replay-fingerprint form for the operator:\n%s", page.body)
	}
	r := f.do(t, op, "POST", "/groups/billing/actions/replay", url.Values{"fingerprint": {fp}, "csrf": {csrf}, "reason": {"fixed"}}, browser)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/groups/billing/fingerprints/"+fp {
		t.Fatalf("replay: %d, Location %q: %s", r.code, r.header.Get("Location"), r.body)
	}
	page = f.do(t, op, "GET", r.header.Get("Location"), nil, browser)
	if flash := between(page.body, `<p id="flash" class="flash" role="status">`, "</p>"); flash != "replayed: 3 dead letters" {
		t.Errorf("flash %q", flash)
	}
	for _, id := range ids {
		if row := between(page.body, `<tr data-id="`+id+`">`, "</tr>"); !strings.Contains(row, `<td class="state">replaying</td>`) {
			t.Errorf("after the replay, %s: %s", id, row)
		}
	}
	// The flash shows once.
	if again := f.do(t, op, "GET", r.header.Get("Location"), nil, browser); strings.Contains(again.body, `id="flash"`) {
		t.Error("the flash shows twice")
	}
	ends, err := kadm.NewClient(f.cl).ListEndOffsets(context.Background(), wire.ReplayTopic("payments", "billing"))
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := ends.Lookup(wire.ReplayTopic("payments", "billing"), 0); !ok || o.Offset != 3 {
		t.Errorf("replay topic end offset %+v, want 3 records", o)
	}
	// A viewer sees the forms disabled.
	viewer, _ := f.signIn(t, viewerSecret)
	vp := f.do(t, viewer, "GET", "/groups/billing/fingerprints/"+fp, nil, browser)
	if !strings.Contains(vp.body, `id="viewer-note"`) || !strings.Contains(between(vp.body, `<form id="replay-fingerprint"`, "</form>"), `<button type="submit" disabled>`) {
		t.Errorf("viewer's fingerprint page:\n%s", vp.body)
	}
}

func fingerprintOf(t *testing.T, f *fixture, id string) string {
	t.Helper()
	m, err := deadletter.NewManager(t.Context(), f.cl, "billing")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := m.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return l.Fingerprint.ID
}

// TestLetterActions: discard and park need a reason; done, the letter's
// history shows who did what and why.
func TestLetterActions(t *testing.T) {
	f := newFixture(t)
	f.createPayments(t)
	ids := f.deadLetters(t, 1, func(int) string { return "card declined" })
	op, csrf := f.signIn(t, operatorSecret)
	letter := "/groups/billing/letter?id=" + url.QueryEscape(ids[0])
	r := f.do(t, op, "POST", "/groups/billing/actions/discard", url.Values{"id": {ids[0]}, "csrf": {csrf}}, browser)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != letter {
		t.Fatalf("discard without a reason: %d %q", r.code, r.header.Get("Location"))
	}
	if page := f.do(t, op, "GET", letter, nil, browser); !strings.Contains(between(page.body, `id="flash"`, "</p>"), "needs a reason") ||
		!strings.Contains(page.body, `id="state">open<`) {
		t.Errorf("discard without a reason:\n%s", page.body)
	}
	if r := f.do(t, nil, "POST", "/groups/billing/actions/discard", url.Values{"id": {ids[0]}}, bearerOp); r.code != http.StatusBadRequest {
		t.Errorf("bearer discard without a reason: %d", r.code)
	}
	r = f.do(t, op, "POST", "/groups/billing/actions/discard", url.Values{"id": {ids[0]}, "csrf": {csrf}, "reason": {"customer refunded by hand"}}, browser)
	page := f.do(t, op, "GET", r.header.Get("Location"), nil, browser)
	hist := between(page.body, `<table id="history">`, "</table>")
	if !strings.Contains(page.body, `id="state">discarded<`) || !strings.Contains(hist, "discard") || !strings.Contains(hist, "alice (console)") ||
		!strings.Contains(hist, "customer refunded by hand") {
		t.Errorf("after the discard:\n%s", page.body)
	}
	for _, bad := range []url.Values{{"csrf": {csrf}, "reason": {"x"}}, {"csrf": {csrf}, "id": {ids[0]}, "fingerprint": {"0123456789ab"}}} {
		if r := f.do(t, nil, "POST", "/groups/billing/actions/park", bad, bearerOp); r.code != http.StatusBadRequest {
			t.Errorf("park %v: %d", bad, r.code)
		}
	}
	// The way back from a bad form escapes the group's name: team/billing
	// is one segment.
	if r := f.do(t, op, "POST", "/groups/team%2Fbilling/actions/park", url.Values{"csrf": {csrf}, "reason": {"x"}}, browser); r.code != http.StatusSeeOther ||
		r.header.Get("Location") != "/groups/team%2Fbilling" {
		t.Errorf("bad form of group team/billing: %d %q", r.code, r.header.Get("Location"))
	}
	if r := f.do(t, nil, "POST", "/groups/billing/actions/explode", url.Values{"id": {ids[0]}, "reason": {"x"}}, bearerOp); r.code != http.StatusNotFound {
		t.Errorf("unknown action: %d", r.code)
	}
	// An unknown action is refused before anything else is read of the
	// request or of Kafka: no reason asked for, no group's Manager made.
	if r := f.do(t, nil, "POST", "/groups/no-such-group/actions/explode", url.Values{"id": {ids[0]}}, bearerOp); r.code != http.StatusNotFound ||
		!strings.Contains(r.body, `no action "explode"`) {
		t.Errorf("unknown action without a reason: %d %s", r.code, r.body)
	}
	if r := f.do(t, nil, "POST", "/groups/billing/actions/park", url.Values{"id": {"payments.billing.dlt/0/99"}, "reason": {"x"}}, bearerOp); r.code != http.StatusNotFound {
		t.Errorf("park of an unknown id: %d %s", r.code, r.body)
	}
}

// TestReveal: a reveal is recorded, then shows the value in that response
// only, NeverShow fields never.
func TestReveal(t *testing.T) {
	f := newFixture(t, func(c *console.Config) { c.NeverShow = []string{"card.number"} })
	f.createPayments(t)
	ids := f.deadLetters(t, 1, func(int) string { return "card declined" })
	op, csrf := f.signIn(t, operatorSecret)
	r := f.do(t, op, "POST", "/groups/billing/actions/reveal", url.Values{"id": {ids[0]}, "csrf": {csrf}, "reason": {"ticket 4411"}}, browser)
	value := between(r.body, `<div id="value">`, "</div>")
	if r.code != 200 || !strings.Contains(value, holderName) || !strings.Contains(value, skuValue) || !strings.Contains(value, "4999") ||
		strings.Contains(r.body, cardNumber) || !strings.Contains(value, "(never shown)") || !strings.Contains(r.body, `id="revealed"`) {
		t.Fatalf("reveal: %d\n%s", r.code, r.body)
	}
	hist := between(r.body, `<table id="history">`, "</table>")
	if !strings.Contains(hist, "reveal") || !strings.Contains(hist, "ticket 4411") || !strings.Contains(hist, "card.holder") || strings.Contains(hist, "card.number") {
		t.Errorf("the reveal is not in the history shown:\n%s", hist)
	}
	m, err := deadletter.NewManager(t.Context(), f.cl, "billing")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := m.Get(t.Context(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	last := l.Ledger.History[len(l.Ledger.History)-1]
	if last.Kind != wire.ActionReveal || last.Actor != "alice (console)" || last.Reason != "ticket 4411" ||
		!slices.Equal(last.Fields, []string{"id", "card.holder", "amount", "lines.sku"}) {
		t.Errorf("ledger entry of the reveal: %+v", last)
	}
	// The next view is masked again.
	page := f.do(t, op, "GET", "/groups/billing/letter?id="+url.QueryEscape(ids[0]), nil, browser)
	if strings.Contains(page.body, holderName) || strings.Contains(page.body, skuValue) {
		t.Errorf("the value shows after the reveal's response:\n%s", page.body)
	}
	if r := f.do(t, op, "POST", "/groups/billing/actions/reveal", url.Values{"id": {ids[0]}, "csrf": {csrf}}, browser); strings.Contains(r.body, holderName) {
		t.Error("a reveal without a reason shows the value")
	}
}

// TestReplayResolves: replayed from the console, the dead letters of a
// fingerprint reach the group's running consumer, which handles them and
// records the outcome: the fingerprint page then shows them resolved.
func TestReplayResolves(t *testing.T) {
	f := newFixture(t)
	f.createPayments(t)
	ids := f.deadLetters(t, 3, func(i int) string { return fmt.Sprintf("card c-%d declined", i) })
	fp := fingerprintOf(t, f, ids[0])
	c, err := consumer.New("billing", f.reg, consumer.Kafka(kgo.SeedBrokers(f.stack.Brokers()...)), consumer.CommitInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	consumer.Handle(c, paymentType, func(context.Context, *paymentTaken, bus.Meta) error {
		handled.Add(1)
		return nil
	})
	errc := make(chan error, 1)
	go func() { errc <- c.Run(context.Background()) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	if r := f.do(t, nil, "POST", "/groups/billing/actions/replay", url.Values{"fingerprint": {fp}, "reason": {"processor fixed"}}, bearerOp); r.code != http.StatusSeeOther {
		t.Fatalf("replay: %d %s", r.code, r.body)
	}
	var states string
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r := f.do(t, nil, "GET", "/groups/billing/fingerprints/"+fp, nil, bearerViewer)
		states = ""
		for _, id := range ids {
			states += cells(between(r.body, `<tr data-id="`+id+`">`, "</tr>")) + "\n"
		}
		if strings.Count(states, "|resolved|") == 3 {
			break
		}
	}
	if strings.Count(states, "|resolved|") != 3 || handled.Load() != 3 {
		t.Errorf("after the replay, %d handled and the rows:\n%s", handled.Load(), states)
	}
}
