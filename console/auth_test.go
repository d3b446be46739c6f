package console_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/console"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/schema"
)

const (
	operatorSecret = "op-3f9a1c77e2b04d5e9f10aa5c"
	viewerSecret   = "view-8b21d0e4c95f4a7b8e66d3f2"
)

// fixture is a console on a real embedded stack, served over HTTP.
type fixture struct {
	stack *devstack.Stack
	cl    *kgo.Client
	reg   *schema.Registry
	h     *console.Handler
	srv   *httptest.Server
	log   *testkit.Buffer
	// seen collects every response body, for the no-token-leak check.
	mu   sync.Mutex
	seen []string
}

func newFixture(t *testing.T, edit ...func(*console.Config)) *fixture {
	t.Helper()
	f := &fixture{stack: evbustest.Start(t), log: &testkit.Buffer{}}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.stack.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f.cl = cl
	if f.reg, err = schema.New(f.stack.RegistryURL()); err != nil {
		t.Fatal(err)
	}
	cfg := console.Config{
		Client: cl, Registry: f.reg,
		Tokens: []console.Token{{Role: console.Operator, Secret: operatorSecret, Name: "alice"}, {Role: console.Viewer, Secret: viewerSecret}},
		Logger: slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, e := range edit {
		e(&cfg)
	}
	if f.h, err = console.New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.h.Close)
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { f.noSecretLeaked(t) })
	return f
}

// noSecretLeaked fails t when a token shows in a response or the log.
func (f *fixture) noSecretLeaked(t *testing.T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, secret := range []string{operatorSecret, viewerSecret} {
		for _, body := range f.seen {
			if strings.Contains(body, secret) {
				t.Errorf("a response contains a token:\n%s", body)
			}
		}
		if strings.Contains(f.log.String(), secret) {
			t.Errorf("the log contains a token:\n%s", f.log.String())
		}
	}
}

type reply struct {
	code   int
	header http.Header
	body   string
}

// do sends a request with the client c (nil: no cookie jar, no redirects
// followed) and records the answer.
func (f *fixture) do(t *testing.T, c *http.Client, method, path string, form url.Values, hdr map[string]string) reply {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = noRedirect(nil)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	f.mu.Lock()
	f.seen = append(f.seen, string(b))
	for k, vs := range resp.Header {
		f.seen = append(f.seen, k+": "+strings.Join(vs, ","))
	}
	f.mu.Unlock()
	checkSecurityHeaders(t, method+" "+path, resp)
	// Everything a page uses is the console's own: no external URL, no
	// inline style or script (the CSP would block them).
	for _, bad := range []string{`="http://`, `="https://`, `="//`, "<style", " style=", "<script>", " on" + "click="} {
		if strings.Contains(string(b), bad) {
			t.Errorf("%s %s: the page contains %q", method, path, bad)
		}
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func checkSecurityHeaders(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	}
	if !strings.Contains(what, "/static/") {
		want["Cache-Control"] = "no-store"
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

var bearerOp = map[string]string{"Authorization": "Bearer " + operatorSecret}
var bearerViewer = map[string]string{"Authorization": "Bearer " + viewerSecret}
var browser = map[string]string{"Accept": "text/html,application/xhtml+xml"}

// signIn signs in with secret through the login form and returns a
// client holding the session cookie, and the session's CSRF token.
func (f *fixture) signIn(t *testing.T, secret string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	r := f.do(t, c, "POST", "/login", url.Values{"token": {secret}, "next": {"/outbox"}}, nil)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/outbox" {
		t.Fatalf("sign-in: %d, Location %q, body %s", r.code, r.header.Get("Location"), r.body)
	}
	page := f.do(t, c, "GET", "/", nil, browser)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.body)
	if page.code != 200 || m == nil {
		t.Fatalf("after sign-in, GET /: %d, no csrf field:\n%s", page.code, page.body)
	}
	return c, m[1]
}

// TestNewRefuses: New names what is missing or wrong, and never the token.
func TestNewRefuses(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	reg, err := schema.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	ok := []console.Token{{Role: console.Operator, Secret: operatorSecret}}
	for _, c := range []struct {
		name string
		cfg  console.Config
		want []string
	}{
		{"no credential", console.Config{Client: cl, Registry: reg}, []string{"no credential", "EVBUS_CONSOLE_OPERATOR_TOKEN", "EVBUS_CONSOLE_VIEWER_TOKEN", "tokens file"}},
		{"nil client", console.Config{Registry: reg, Tokens: ok}, []string{"Config.Client"}},
		{"nil registry", console.Config{Client: cl, Tokens: ok}, []string{"Config.Registry"}},
		{"same secret twice", console.Config{Client: cl, Registry: reg, Tokens: append(ok, console.Token{Role: console.Viewer, Secret: operatorSecret})}, []string{"configured twice"}},
		{"no role", console.Config{Client: cl, Registry: reg, Tokens: []console.Token{{Secret: operatorSecret}}}, []string{"role"}},
		{"empty secret", console.Config{Client: cl, Registry: reg, Tokens: []console.Token{{Role: console.Viewer, Secret: " "}}}, []string{"empty secret"}},
		{"short token", console.Config{Client: cl, Registry: reg, Tokens: []console.Token{{Role: console.Viewer, Secret: "hunter2-hunter2"}}}, []string{"15 characters", "at least 16"}},
		{"bad prefix", console.Config{Client: cl, Registry: reg, Tokens: ok, Prefix: "admin/"}, []string{"Config.Prefix"}},
	} {
		_, err := console.New(c.cfg)
		if err == nil {
			t.Errorf("%s: New accepted it", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
		for _, tok := range c.cfg.Tokens {
			if strings.TrimSpace(tok.Secret) != "" && strings.Contains(err.Error(), tok.Secret) {
				t.Errorf("%s: error %q contains the token", c.name, err)
			}
		}
	}
}

func TestTokensFromEnvAndFile(t *testing.T) {
	env := map[string]string{console.OperatorTokenEnv: " a1 , a2", console.ViewerTokenEnv: "v1"}
	ts := console.TokensFromEnv(func(k string) string { return env[k] })
	if len(ts) != 3 || ts[0].Role != console.Operator || ts[0].Secret != "a1" || ts[1].Secret != "a2" || ts[2].Role != console.Viewer || ts[2].Secret != "v1" {
		t.Errorf("TokensFromEnv = %v", ts)
	}
	if got := console.TokensFromEnv(func(string) string { return "" }); len(got) != 0 {
		t.Errorf("no variables set: %d tokens", len(got))
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	content := "# the console's tokens\noperator " + operatorSecret + " alice\n\nviewer " + viewerSecret + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := console.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Role != console.Operator || ts[0].Name != "alice" || ts[0].Secret != operatorSecret || ts[1].Role != console.Viewer || ts[1].Secret != viewerSecret {
		t.Errorf("LoadTokens = %v", ts)
	}
	// A token formats without its secret, whatever the verb.
	for _, s := range []string{ts[0].String(), ts[0].GoString(), sprint(ts[0]), sprint(ts)} {
		if strings.Contains(s, operatorSecret) {
			t.Errorf("a Token formats with its secret: %s", s)
		}
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := console.LoadTokens(path); err == nil || !strings.Contains(err.Error(), "world-readable") {
		t.Errorf("world-readable tokens file: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("admin "+operatorSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := console.LoadTokens(bad); err == nil || !strings.Contains(err.Error(), "line 1") || strings.Contains(err.Error(), operatorSecret) {
		t.Errorf("bad role: %v", err)
	}
}

// TestAnonymousGets401: every page and action answers 401 without a
// credential, or with a wrong one; a browser gets the login page.
func TestAnonymousGets401(t *testing.T) {
	f := newFixture(t)
	paths := []string{"/", "/groups/billing", "/groups/billing/fingerprints/0123456789ab", "/groups/billing/letter?id=orders.billing.dlt/0/1",
		"/groups/billing/lag", "/outbox", "/nowhere"}
	for _, p := range paths {
		for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + operatorSecret}, {"Cookie": console.CookieName + "=forged"}} {
			if r := f.do(t, nil, "GET", p, nil, hdr); r.code != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s with %v: %d, WWW-Authenticate %q", p, hdr, r.code, r.header.Get("WWW-Authenticate"))
			}
		}
		r := f.do(t, nil, "GET", p, nil, browser)
		if r.code != http.StatusUnauthorized || !strings.Contains(r.body, `<form id="login"`) || !strings.Contains(r.body, `id="token" type="password"`) ||
			!strings.Contains(r.body, `<button id="signin"`) || !strings.Contains(r.body, `name="next" value="`+templateEscape(p)+`"`) {
			t.Errorf("browser GET %s: %d, want the login page with next=%s:\n%s", p, r.code, p, r.body)
		}
	}
	for _, p := range []string{"/groups/billing/actions/replay", "/groups/billing/actions/reveal", "/logout"} {
		if r := f.do(t, nil, "POST", p, url.Values{"id": {"x"}}, nil); r.code != http.StatusUnauthorized {
			t.Errorf("anonymous POST %s: %d", p, r.code)
		}
	}
	// The login page and the assets need no sign-in.
	if r := f.do(t, nil, "GET", "/login", nil, browser); r.code != 200 || !strings.Contains(r.body, `<form id="login"`) {
		t.Errorf("GET /login: %d", r.code)
	}
	for _, a := range []string{"/static/console.css", "/static/console.js"} {
		if r := f.do(t, nil, "GET", a, nil, nil); r.code != 200 || len(r.body) < 100 {
			t.Errorf("GET %s: %d", a, r.code)
		}
	}
}

func templateEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// TestViewerReads: a viewer, by bearer token or session, reads every page.
func TestViewerReads(t *testing.T) {
	f := newFixture(t)
	c, _ := f.signIn(t, viewerSecret)
	for _, p := range []string{"/", "/groups/billing/lag", "/outbox"} {
		if r := f.do(t, nil, "GET", p, nil, bearerViewer); r.code != 200 {
			t.Errorf("viewer bearer GET %s: %d %s", p, r.code, r.body)
		}
		if r := f.do(t, c, "GET", p, nil, browser); r.code != 200 || !strings.Contains(r.body, "viewer") {
			t.Errorf("viewer session GET %s: %d %s", p, r.code, r.body)
		}
	}
}

// TestLogin: the cookie's flags; a wrong token is refused with nothing
// said about why; next is followed only within the console.
func TestLogin(t *testing.T) {
	f := newFixture(t)
	r := f.do(t, nil, "POST", "/login", url.Values{"token": {operatorSecret}, "next": {"/groups/billing/lag"}}, nil)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/groups/billing/lag" {
		t.Fatalf("sign-in: %d, Location %q", r.code, r.header.Get("Location"))
	}
	cookies := (&http.Response{Header: r.header}).Cookies()
	if len(cookies) != 1 {
		t.Fatalf("sign-in set %d cookies", len(cookies))
	}
	ck := cookies[0]
	if ck.Name != console.CookieName || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure || ck.MaxAge <= 0 ||
		len(ck.Value) < 40 || strings.Contains(ck.Value, operatorSecret) {
		t.Errorf("session cookie: %+v", ck)
	}
	// A second sign-in gets another session id.
	r2 := f.do(t, nil, "POST", "/login", url.Values{"token": {operatorSecret}}, nil)
	if c2 := (&http.Response{Header: r2.header}).Cookies(); len(c2) != 1 || c2[0].Value == ck.Value || r2.header.Get("Location") != "/" {
		t.Errorf("second sign-in: cookies %v, Location %q", c2, r2.header.Get("Location"))
	}

	wrong := f.do(t, nil, "POST", "/login", url.Values{"token": {operatorSecret + "x"}}, browser)
	if wrong.code != http.StatusUnauthorized || len(wrong.header.Values("Set-Cookie")) != 0 ||
		!strings.Contains(wrong.body, "The token was not accepted.") || strings.Contains(wrong.body, operatorSecret) {
		t.Errorf("wrong token: %d, cookies %v:\n%s", wrong.code, wrong.header.Values("Set-Cookie"), wrong.body)
	}
	// Nothing tells a near miss from a far one.
	if far := f.do(t, nil, "POST", "/login", url.Values{"token": {"x"}}, browser); far.body != wrong.body {
		t.Errorf("the answers to two wrong tokens differ:\n%s\n----\n%s", wrong.body, far.body)
	}
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", "/%0d%0aSet-Cookie:x", "javascript:alert(1)"} {
		r := f.do(t, nil, "POST", "/login", url.Values{"token": {viewerSecret}, "next": {next}}, nil)
		loc := r.header.Get("Location")
		if r.code != http.StatusSeeOther || !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.Contains(loc, "evil") || strings.ContainsAny(loc, "\r\n") {
			t.Errorf("next %q: %d, Location %q", next, r.code, loc)
		}
	}
	// Under TLS the cookie is Secure.
	tlsSrv := httptest.NewTLSServer(f.h)
	defer tlsSrv.Close()
	resp, err := tlsSrv.Client().PostForm(tlsSrv.URL+"/login", url.Values{"token": {operatorSecret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Request.Response; cs == nil {
		t.Fatal("no redirect after sign-in over TLS")
	} else if c := cs.Cookies(); len(c) != 1 || !c[0].Secure {
		t.Errorf("cookie over TLS: %+v", c)
	}
}

// TestSessionLogout: a signed-out session's cookie no longer signs in;
// logout needs the CSRF token and the same origin.
func TestSessionLogout(t *testing.T) {
	f := newFixture(t)
	c, csrf := f.signIn(t, operatorSecret)
	if r := f.do(t, c, "POST", "/logout", url.Values{}, nil); r.code != http.StatusForbidden {
		t.Errorf("logout without CSRF token: %d", r.code)
	}
	if r := f.do(t, c, "POST", "/logout", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); r.code != http.StatusForbidden {
		t.Errorf("cross-site logout: %d", r.code)
	}
	if r := f.do(t, c, "POST", "/logout", url.Values{"csrf": {csrf}}, nil); r.code != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Errorf("logout: %d %q", r.code, r.header.Get("Location"))
	}
	if r := f.do(t, c, "GET", "/", nil, nil); r.code != http.StatusUnauthorized {
		t.Errorf("after logout: %d", r.code)
	}
}

// TestLoginCrossSite: a sign-in posted from another site is refused.
func TestLoginCrossSite(t *testing.T) {
	f := newFixture(t)
	for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}} {
		if r := f.do(t, nil, "POST", "/login", url.Values{"token": {operatorSecret}}, hdr); r.code != http.StatusForbidden || len(r.header.Values("Set-Cookie")) != 0 {
			t.Errorf("cross-site sign-in %v: %d", hdr, r.code)
		}
	}
	if r := f.do(t, nil, "POST", "/login", url.Values{"token": {operatorSecret}}, map[string]string{"Sec-Fetch-Site": "same-origin"}); r.code != http.StatusSeeOther {
		t.Errorf("same-origin sign-in: %d", r.code)
	}
}

// TestPrefix: mounted under a path, links, redirects and the cookie carry it.
func TestPrefix(t *testing.T) {
	f := newFixture(t, func(c *console.Config) { c.Prefix = "/admin/evbus" })
	r := f.do(t, nil, "POST", "/admin/evbus/login", url.Values{"token": {viewerSecret}, "next": {"/outbox"}}, nil)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/admin/evbus/outbox" {
		t.Fatalf("sign-in under a prefix: %d %q", r.code, r.header.Get("Location"))
	}
	if c := (&http.Response{Header: r.header}).Cookies(); len(c) != 1 || c[0].Path != "/admin/evbus/" {
		t.Errorf("cookie path: %+v", c)
	}
	if r := f.do(t, nil, "GET", "/admin/evbus/", nil, bearerViewer); r.code != 200 || !strings.Contains(r.body, `href="/admin/evbus/static/console.css"`) {
		t.Errorf("page under a prefix: %d\n%s", r.code, r.body)
	}
	if r := f.do(t, nil, "GET", "/outbox", nil, bearerViewer); r.code != http.StatusNotFound {
		t.Errorf("outside the prefix: %d", r.code)
	}
	// A group's name may hold a slash; its links escape it (%2F), and the
	// prefix's stripping keeps it escaped.
	if r := f.do(t, nil, "GET", "/admin/evbus/groups/team%2Fbilling/lag", nil, bearerViewer); r.code != 200 || !strings.Contains(r.body, "Lag of team/billing") {
		t.Errorf("a group with a slash under a prefix: %d\n%s", r.code, r.body)
	}
}

func sprint(v any) string { return strings.Join([]string{fmtV(v), fmtPlusV(v), fmtSharpV(v)}, " ") }

// TestSessionExpires: past Config.SessionTTL a session signs in no more.
func TestSessionExpires(t *testing.T) {
	f := newFixture(t, func(c *console.Config) { c.SessionTTL = time.Nanosecond })
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	if r := f.do(t, c, "POST", "/login", url.Values{"token": {viewerSecret}}, nil); r.code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", r.code)
	}
	if u, _ := url.Parse(f.srv.URL); len(jar.Cookies(u)) != 1 {
		t.Fatal("no session cookie")
	}
	if r := f.do(t, c, "GET", "/", nil, nil); r.code != http.StatusUnauthorized {
		t.Errorf("a session past its TTL: %d", r.code)
	}
}
