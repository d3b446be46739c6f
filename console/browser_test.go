package console_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	_ "image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/console"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/wire"
)

// The browser tests drive the console in a headless Chromium: the pages,
// their forms and links, their script and their security headers, as an
// operator's browser meets them.

func TestMain(m *testing.M) { testkit.RunWithBrowser(m) }

// OrderPlaced is the event of the browser tests' stack.
type OrderPlaced struct {
	ID    string `avro:"id"`
	SKU   string `avro:"sku"`
	Cents int64  `avro:"cents"`
}

var orderPlacedEvent = bus.Event[OrderPlaced]("orders", func(o *OrderPlaced) string { return o.ID }, bus.Namespace("com.example.shop"))

const (
	browserOperator = "browser-operator-5d1e0c9a7b3f4e21"
	browserViewer   = "browser-viewer-0a6f2b8d4c1e9f37"
	deadGroup       = "billing"
	declined        = 3 // dead letters "card declined"
	unknownSKU      = 2 // dead letters "unknown sku"
)

// site is a console on the embedded stack, whose billing group has
// dead-lettered orders of two causes; its consumer keeps running and,
// the causes fixed, handles what is replayed to it.
type site struct {
	url   string
	cl    *kgo.Client
	fixed *atomic.Bool
}

func startSite(t *testing.T) *site {
	t.Helper()
	stack := evbustest.Start(t)
	c := testkit.Connect(t, stack)
	ctx := t.Context()
	if err := bus.CreateTopics(ctx, c.Admin, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{deadGroup}}); err != nil {
		t.Fatal(err)
	}
	fixed := new(atomic.Bool)
	cons, err := consumer.New(deadGroup, c.Registry,
		consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...)),
		consumer.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	consumer.Handle(cons, orderPlacedEvent, func(ctx context.Context, o *OrderPlaced, _ bus.Meta) error {
		switch {
		case fixed.Load():
			return nil
		case o.Cents < 0:
			return consumer.Permanent(fmt.Errorf("order %s: card declined (code %d)", o.ID, 4000-o.Cents))
		case o.SKU != "":
			return consumer.Permanent(fmt.Errorf("unknown sku %q", o.SKU))
		}
		return nil
	})
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- cons.Run(runCtx) }()
	t.Cleanup(func() {
		if err := cons.Close(context.Background()); err != nil {
			t.Error(err)
		}
		stop()
		if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	})

	pub, err := bus.NewPublisher(ctx, c.Client, c.Registry, bus.Source("/shop"), bus.Types(orderPlacedEvent))
	if err != nil {
		t.Fatal(err)
	}
	var orders []any
	for i := range declined {
		orders = append(orders, &OrderPlaced{ID: fmt.Sprintf("o-%d", i), Cents: -int64(i + 1)})
	}
	for i := range unknownSKU {
		orders = append(orders, &OrderPlaced{ID: fmt.Sprintf("o-%d", declined+i), SKU: fmt.Sprintf("SKU-%d", i), Cents: 100})
	}
	if err := pub.Publish(ctx, orders...); err != nil {
		t.Fatal(err)
	}
	testkit.ReadN(t, stack.Brokers(), wire.DeadLetterTopic("orders", deadGroup), declined+unknownSKU)
	fixed.Store(true)

	h, err := console.New(console.Config{
		Client:   c.Client,
		Registry: c.Registry,
		Tokens: []console.Token{
			{Role: console.Operator, Secret: browserOperator, Name: "olga"},
			{Role: console.Viewer, Secret: browserViewer, Name: "victor"},
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); h.Close() })
	return &site{url: srv.URL, cl: c.Client, fixed: fixed}
}

// signIn signs tab in through the login form, from the page at path, and
// returns the status of the page the form leads to.
func (s *site) signIn(t *testing.T, tab *testkit.Tab, path, token string) int64 {
	t.Helper()
	if got := testkit.Run(tab, chromedp.NavigateResponse(s.url+path)).Status; got != http.StatusUnauthorized {
		t.Fatalf("an anonymous visit to %s: status %d, want 401", path, got)
	}
	tab.Do(chromedp.WaitVisible(chromedp.CSS("form#login")), chromedp.SendKeys(chromedp.ID("token"), token))
	return tab.Load(chromedp.Click(chromedp.ID("signin")))
}

// tabPath is the path and query of the tab's page.
func tabPath(t *testing.T, tab *testkit.Tab) string {
	t.Helper()
	u, err := url.Parse(testkit.Run(tab, chromedp.Location()))
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

// tabText is the text of the element sel selects, "" when there is none.
func tabText(tab *testkit.Tab, sel string) string {
	return testkit.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel)))
}

func TestBrowserAnonymousVisitGetsTheLogin(t *testing.T) {
	s := startSite(t)
	tab := testkit.NewTab(t)
	for _, path := range []string{"/", "/groups/" + deadGroup + "/lag"} {
		if got := testkit.Run(tab, chromedp.NavigateResponse(s.url+path)).Status; got != http.StatusUnauthorized {
			t.Errorf("an anonymous visit to %s: status %d, want 401", path, got)
		}
		if n := testkit.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("form#login input#token[type=password]").length`)); n != 1 {
			t.Errorf("an anonymous visit to %s does not show the login form", path)
		}
		if got := tabText(tab, "main"); strings.Contains(got, deadGroup) {
			t.Errorf("the login page at %s shows the cluster's data: %q", path, got)
		}
	}
	// A wrong token is refused and stays on the login form.
	tab.Do(chromedp.SendKeys(chromedp.ID("token"), "not-a-token"))
	if got := tab.Load(chromedp.Click(chromedp.ID("signin"))); got != http.StatusUnauthorized {
		t.Errorf("signing in with a wrong token: status %d, want 401", got)
	}
	if n := testkit.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("form#login").length`)); n != 1 {
		t.Errorf("after a wrong token the login form is gone")
	}
}

func TestBrowserSignIn(t *testing.T) {
	s := startSite(t)
	for _, tc := range []struct{ role, token, name string }{
		{"viewer", browserViewer, "victor"},
		{"operator", browserOperator, "olga"},
	} {
		t.Run(tc.role, func(t *testing.T) {
			tab := testkit.NewTab(t)
			// From a deep link: the form brings the user back to it.
			lag := "/groups/" + deadGroup + "/lag"
			if got := s.signIn(t, tab, lag, tc.token); got != http.StatusOK {
				t.Fatalf("signing in as %s: status %d, want 200", tc.role, got)
			}
			if got := tabPath(t, tab); got != lag {
				t.Errorf("after signing in from %s the tab is at %s", lag, got)
			}
			tab.Do(chromedp.WaitVisible(chromedp.CSS("table#lag")))
			if who := tabText(tab, "header .who"); !strings.Contains(who, tc.role) || !strings.Contains(who, tc.name) {
				t.Errorf("the header says %q, want the role %s and the name %s", who, tc.role, tc.name)
			}
			// The session cookie holds no token, and scripts cannot read it.
			if cookies := testkit.Run(tab, chromedp.Evaluate[string](`document.cookie`)); cookies != "" {
				t.Errorf("the page's script reads cookies %q: the session cookie must be HttpOnly", cookies)
			}
			// The groups page lists the group with its dead letters.
			tab.Load(chromedp.Click(chromedp.CSS("a.brand")))
			row := fmt.Sprintf(`table#groups tr[data-group=%q]`, deadGroup)
			if got := tabText(tab, row+" td.num"); got != fmt.Sprint(declined+unknownSKU) {
				t.Errorf("the groups page shows %q dead letters for %s, want %d", got, deadGroup, declined+unknownSKU)
			}
			// Signing out ends the session.
			tab.Load(chromedp.Click(chromedp.CSS("form#logout button")))
			if got := testkit.Run(tab, chromedp.NavigateResponse(s.url+"/")).Status; got != http.StatusUnauthorized {
				t.Errorf("after signing out: status %d, want 401", got)
			}
		})
	}
}

// fitsWidth fails t when the tab's page is wider than the laptop screen
// the tab has: a table or a long id that forces a sideways scroll.
func fitsWidth(t *testing.T, tab *testkit.Tab) {
	t.Helper()
	if w := testkit.Run(tab, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > testkit.ViewportWidth {
		t.Errorf("%s is %dpx wide on a %dpx screen", tabPath(t, tab), w, testkit.ViewportWidth)
	}
}

// tabTexts is the text of every element sel selects, in order.
func tabTexts(tab *testkit.Tab, sel string) []string {
	return testkit.Run(tab, chromedp.Evaluate[[]string](fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q), e => e.innerText.trim())`, sel)))
}

// tabAttrs is the attribute name of every element sel selects, in order.
func tabAttrs(tab *testkit.Tab, sel, name string) []string {
	return testkit.Run(tab, chromedp.Evaluate[[]string](fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q), e => e.getAttribute(%q))`, sel, name)))
}

// causeFingerprint is the id of the group page's fingerprint whose row
// mentions cause.
func causeFingerprint(t *testing.T, tab *testkit.Tab, cause string) string {
	t.Helper()
	ids := tabAttrs(tab, "table#fingerprints tbody tr", "data-fingerprint")
	rows := tabTexts(tab, "table#fingerprints tbody tr")
	for i, row := range rows {
		if strings.Contains(row, cause) {
			return ids[i]
		}
	}
	t.Fatalf("no fingerprint row mentions %q: %q", cause, rows)
	return ""
}

// letters returns the group's dead letters as the Manager sees them.
func (s *site) letters(t *testing.T) []deadletter.Letter {
	t.Helper()
	m, err := deadletter.NewManager(t.Context(), s.cl, deadGroup)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ls, err := m.List(t.Context(), deadletter.Selection{All: true})
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestBrowserNavigation(t *testing.T) {
	s := startSite(t)
	tab := testkit.NewTab(t)
	s.signIn(t, tab, "/", browserViewer)

	// Through links: the group, a fingerprint, a dead letter.
	group := "/groups/" + deadGroup
	if got := tab.Load(chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-group=%q] a[href$=%q]`, deadGroup, group)))); got != http.StatusOK {
		t.Fatalf("opening the group: status %d", got)
	}
	if got := tabPath(t, tab); got != group {
		t.Fatalf("the group's link leads to %s, want %s", got, group)
	}
	if rows := tabTexts(tab, "table#fingerprints tbody tr"); len(rows) != 2 {
		t.Fatalf("the group page shows %d fingerprints, want 2: %q", len(rows), rows)
	}
	fitsWidth(t, tab)
	fp := causeFingerprint(t, tab, "card declined")
	if row := tabText(tab, fmt.Sprintf(`tr[data-fingerprint=%q]`, fp)); !strings.Contains(row, fmt.Sprint(declined)) || !strings.Contains(row, "open") {
		t.Errorf("the fingerprint row %q does not show its count %d and its open state", row, declined)
	}
	fpPage := group + "/fingerprints/" + fp
	tab.Load(chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-fingerprint=%q] a[href$=%q]`, fp, fpPage))))
	if got := tabPath(t, tab); got != fpPage {
		t.Fatalf("the fingerprint's link leads to %s, want %s", got, fpPage)
	}
	ids := tabAttrs(tab, "table#letters tbody tr", "data-id")
	if states := tabTexts(tab, "table#letters tbody tr td.state"); len(ids) != declined || len(states) != declined || states[0] != "open" {
		t.Fatalf("the fingerprint page lists ids %q, states %q; want %d open", ids, states, declined)
	}
	fitsWidth(t, tab)
	letter := group + "/letter?id=" + url.QueryEscape(ids[0])
	tab.Load(chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-id=%q] a`, ids[0]))))
	if got, _ := url.QueryUnescape(tabPath(t, tab)); got != group+"/letter?id="+ids[0] {
		t.Fatalf("the dead letter's link leads to %s, want %s", got, letter)
	}
	fitsWidth(t, tab)
	if h := tabText(tab, "#headers"); !strings.Contains(h, wire.HeaderType) || !strings.Contains(h, "com.example.shop.OrderPlaced") {
		t.Errorf("#headers does not show the event type: %q", h)
	}
	v := tabText(tab, "#value")
	for _, field := range []string{"id", "sku", "cents"} {
		if !strings.Contains(v, field) {
			t.Errorf("#value does not name the field %s: %q", field, v)
		}
	}
	if !strings.Contains(v, "••••") || strings.Contains(v, "o-0") || strings.Contains(v, "o-1") {
		t.Errorf("#value shows a value unmasked: %q", v)
	}
	if n := testkit.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("#history").length`)); n != 1 {
		t.Errorf("the dead letter page has no #history")
	}

	// The back button returns to the fingerprint, then to the group.
	tab.Do(chromedp.NavigateBack())
	if got := tabPath(t, tab); got != fpPage || len(tabTexts(tab, "table#letters tbody tr")) != declined {
		t.Errorf("back from the dead letter: at %s", got)
	}
	tab.Do(chromedp.NavigateBack())
	if got := tabPath(t, tab); got != group || len(tabTexts(tab, "table#fingerprints tbody tr")) != 2 {
		t.Errorf("back from the fingerprint: at %s", got)
	}

	// Deep links: a new browser signs in at the dead letter's address and
	// lands there; a fingerprint's address opens it directly.
	deep := testkit.NewTab(t)
	s.signIn(t, deep, letter, browserViewer)
	if got, _ := url.QueryUnescape(tabPath(t, deep)); got != group+"/letter?id="+ids[0] || tabText(deep, "#value") == "" {
		t.Errorf("signing in from the dead letter's link lands at %s", got)
	}
	if got := testkit.Run(deep, chromedp.NavigateResponse(s.url+fpPage)).Status; got != http.StatusOK || len(tabTexts(deep, "table#letters tbody tr")) != declined {
		t.Errorf("the fingerprint's link, opened directly: status %d", got)
	}
}

func TestBrowserKeyboard(t *testing.T) {
	s := startSite(t)
	tab := testkit.NewTab(t)
	s.signIn(t, tab, "/groups/"+deadGroup, browserViewer)
	rows := tabAttrs(tab, "table#fingerprints tbody tr", "data-fingerprint")
	if len(rows) != 2 {
		t.Fatalf("the group page shows %d fingerprints, want 2", len(rows))
	}
	current := func() []string {
		return tabAttrs(tab, "table#fingerprints tbody tr.current", "data-fingerprint")
	}
	for _, step := range []struct {
		key  string
		want string
	}{{"j", rows[0]}, {"j", rows[1]}, {"j", rows[1]}, {"k", rows[0]}} {
		tab.Do(chromedp.KeyEvent(step.key))
		if got := current(); len(got) != 1 || got[0] != step.want {
			t.Fatalf("after %s the current rows are %q, want %s", step.key, got, step.want)
		}
	}
	if got := tab.Load(chromedp.KeyEvent(kb.Enter)); got != http.StatusOK {
		t.Fatalf("Enter on a row: status %d", got)
	}
	if got, want := tabPath(t, tab), "/groups/"+deadGroup+"/fingerprints/"+rows[0]; got != want {
		t.Errorf("Enter on the first row opened %s, want %s", got, want)
	}
	// The same keys move in the dead letters' table.
	tab.Do(chromedp.KeyEvent("j"))
	if got := tabAttrs(tab, "table#letters tbody tr.current", "data-id"); len(got) != 1 {
		t.Errorf("j on the fingerprint page selects %q, want one row", got)
	}

	// Without the script's keys, Tab reaches the second fingerprint's link
	// and Enter follows it.
	tab.Do(chromedp.NavigateBack())
	second := fmt.Sprintf(`table#fingerprints tr[data-fingerprint=%q] a`, rows[1])
	focused := func() bool {
		return testkit.Run(tab, chromedp.Evaluate[bool](fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, second)))
	}
	for range 30 {
		if focused() {
			break
		}
		tab.Do(chromedp.KeyEvent(kb.Tab))
	}
	if !focused() {
		t.Fatalf("30 presses of Tab never focus the second fingerprint's link")
	}
	tab.Load(chromedp.KeyEvent(kb.Enter))
	if got, want := tabPath(t, tab), "/groups/"+deadGroup+"/fingerprints/"+rows[1]; got != want {
		t.Errorf("Enter on the focused link opened %s, want %s", got, want)
	}
}

func TestBrowserViewerCannotReplay(t *testing.T) {
	s := startSite(t)
	tab := testkit.NewTab(t)
	s.signIn(t, tab, "/groups/"+deadGroup, browserViewer)
	fp := causeFingerprint(t, tab, "card declined")
	tab.Do(chromedp.Navigate(s.url + "/groups/" + deadGroup + "/fingerprints/" + fp))
	const button = `form#replay-fingerprint button[type=submit]`
	if disabled := testkit.Run(tab, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).disabled`, button))); !disabled {
		t.Errorf("a viewer's replay button is enabled")
	}
	// A viewer who enables the button anyway is refused by the server.
	tab.Do(
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).disabled = false`, button)),
		chromedp.SendKeys(chromedp.CSS(`form#replay-fingerprint textarea[name=reason]`), "let me"),
	)
	if got := tab.Load(chromedp.Click(chromedp.CSS(button))); got != http.StatusForbidden {
		t.Errorf("a viewer's replay: status %d, want 403", got)
	}
	if page := tabText(tab, "main"); !strings.Contains(strings.ToLower(page), "operator") {
		t.Errorf("the refusal page does not say an operator is needed: %q", page)
	}
	for _, l := range s.letters(t) {
		if l.State != wire.LedgerOpen || l.Ledger.Seq != 0 || l.Sent != 0 {
			t.Errorf("after a viewer's refused replay, %s is %s with ledger seq %d and %d replays sent: want open, untouched",
				l.ID, l.State, l.Ledger.Seq, l.Sent)
		}
	}
}

// updateScreenshot rewrites the README's picture:
//
//	go test ./console -run BrowserOperatorReplaysAFingerprint -update-screenshot
var updateScreenshot = flag.Bool("update-screenshot", false, "write docs/console.png, the README's picture, from TestBrowserOperatorReplaysAFingerprint")

// TestBrowserOperatorReplaysAFingerprint: an operator replays a cause's
// dead letters from its page; the group's consumer, its bug fixed, handles
// the replays and the page shows them resolved. The other cause's stay
// open. The page is the README's screenshot.
func TestBrowserOperatorReplaysAFingerprint(t *testing.T) {
	s := startSite(t)
	tab := testkit.NewTab(t)
	s.signIn(t, tab, "/groups/"+deadGroup, browserOperator)
	fp := causeFingerprint(t, tab, "card declined")
	other := causeFingerprint(t, tab, "unknown sku")
	page := "/groups/" + deadGroup + "/fingerprints/" + fp
	tab.Do(chromedp.Navigate(s.url + page))
	tab.Do(chromedp.SendKeys(chromedp.CSS(`form#replay-fingerprint textarea[name=reason]`), "the card processor's outage is over"))
	if got := tab.Load(chromedp.Click(chromedp.CSS(`form#replay-fingerprint button[type=submit]`))); got != http.StatusOK {
		t.Fatalf("replaying the fingerprint: status %d, want 200 after the redirect back", got)
	}
	if got := tabPath(t, tab); got != page {
		t.Errorf("after the replay the tab is at %s, want back at %s", got, page)
	}
	if flash := tabText(tab, "#flash"); flash == "" {
		t.Errorf("the page after the replay has no #flash message")
	}

	// The consumer handles the replays and records them: reload until
	// every state cell says resolved.
	testkit.WaitForState(t, "the replayed dead letters to show resolved", func() (bool, string) {
		tab.Do(chromedp.Reload())
		states := tabTexts(tab, "table#letters tbody td.state")
		return len(states) == declined && !slices.ContainsFunc(states, func(s string) bool { return s != string(wire.LedgerResolved) }),
			fmt.Sprint(states)
	})
	for _, l := range s.letters(t) {
		want := wire.LedgerResolved
		if l.Fingerprint.ID == other {
			want = wire.LedgerOpen
		}
		if l.State != want {
			t.Errorf("%s (fingerprint %s) is %s, want %s", l.ID, l.Fingerprint.ID, l.State, want)
		}
	}

	png := testkit.Run(tab, chromedp.CaptureScreenshot())
	img, format, err := image.DecodeConfig(bytes.NewReader(png))
	if err != nil || format != "png" || img.Width != testkit.ViewportWidth || img.Height != testkit.ViewportHeight {
		t.Fatalf("screenshot: %v, %dx%d; want a %dx%d PNG", err, img.Width, img.Height, testkit.ViewportWidth, testkit.ViewportHeight)
	}
	if *updateScreenshot {
		if err := os.WriteFile(filepath.Join("..", "docs", "console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
