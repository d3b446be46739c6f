package console_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/console"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/wire"
)

// The browser tests drive the console in a headless Chromium: the pages,
// their forms and links, their script and their security headers, as an
// operator's browser meets them.

func TestMain(m *testing.M) { testkit.RunWithBrowser(m) }

// Order is the event of the browser tests' stack.
type Order struct {
	ID    string `avro:"id"`
	SKU   string `avro:"sku"`
	Cents int64  `avro:"cents"`
}

var orderPlaced = bus.Event[Order]("orders", func(o *Order) string { return o.ID }, bus.Namespace("com.example.shop"))

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
	consumer.Handle(cons, orderPlaced, func(ctx context.Context, o *Order, _ bus.Meta) error {
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

	pub, err := bus.NewPublisher(ctx, c.Client, c.Registry, bus.Source("/shop"), bus.Types(orderPlaced))
	if err != nil {
		t.Fatal(err)
	}
	var orders []any
	for i := range declined {
		orders = append(orders, &Order{ID: fmt.Sprintf("o-%d", i), Cents: -int64(i + 1)})
	}
	for i := range unknownSKU {
		orders = append(orders, &Order{ID: fmt.Sprintf("o-%d", declined+i), SKU: fmt.Sprintf("SKU-%d", i), Cents: 100})
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

// at is the path and query of the tab's page.
func at(t *testing.T, tab *testkit.Tab) string {
	t.Helper()
	u, err := url.Parse(testkit.Run(tab, chromedp.Location()))
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

// text is the text of the element sel selects, "" when there is none.
func text(tab *testkit.Tab, sel string) string {
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
		if got := text(tab, "main"); strings.Contains(got, deadGroup) {
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
			if got := at(t, tab); got != lag {
				t.Errorf("after signing in from %s the tab is at %s", lag, got)
			}
			tab.Do(chromedp.WaitVisible(chromedp.CSS("table#lag")))
			if who := text(tab, "header .who"); !strings.Contains(who, tc.role) || !strings.Contains(who, tc.name) {
				t.Errorf("the header says %q, want the role %s and the name %s", who, tc.role, tc.name)
			}
			// The session cookie holds no token, and scripts cannot read it.
			if cookies := testkit.Run(tab, chromedp.Evaluate[string](`document.cookie`)); cookies != "" {
				t.Errorf("the page's script reads cookies %q: the session cookie must be HttpOnly", cookies)
			}
			// The groups page lists the group with its dead letters.
			tab.Load(chromedp.Click(chromedp.CSS("a.brand")))
			row := fmt.Sprintf(`table#groups tr[data-group=%q]`, deadGroup)
			if got := text(tab, row+" td.num"); got != fmt.Sprint(declined+unknownSKU) {
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
