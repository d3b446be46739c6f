package testkit_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/evbus/evbus/internal/testkit"
)

func TestMain(m *testing.M) { testkit.RunWithBrowser(m) }

// csp is the policy of the test pages: scripts from the page's own origin
// only, as the console serves its pages.
const csp = "default-src 'none'; script-src 'self'"

// page serves html at / and js at /app.js under csp.
func page(t *testing.T, html, js string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, html)
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		io.WriteString(w, js)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestTabRunsThePageScript(t *testing.T) {
	srv := page(t, `<!doctype html><title>t</title><p id="out">not run</p><script src="/app.js"></script>`,
		`document.getElementById("out").textContent = "ran " + (6 * 7);`)
	tab := testkit.NewTab(t)
	tab.Do(chromedp.Navigate(srv.URL))
	if got := testkit.Run(tab, chromedp.Text(chromedp.ID("out"))); got != "ran 42" {
		t.Errorf("#out reads %q after the page's script, want %q", got, "ran 42")
	}
	size := testkit.Run(tab, chromedp.Evaluate[[]int]("[window.innerWidth, window.innerHeight]"))
	if len(size) != 2 || size[0] != testkit.ViewportWidth || size[1] != testkit.ViewportHeight {
		t.Errorf("viewport %v, want %dx%d", size, testkit.ViewportWidth, testkit.ViewportHeight)
	}
}

func TestTabLoadGivesTheStatusAfterRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<a id="gone" href="/old">old</a><form id="f" method="post" action="/post"><button id="go">go</button></form>`)
	})
	mux.HandleFunc("GET /old", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/missing", http.StatusFound) })
	mux.HandleFunc("POST /post", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/done", http.StatusSeeOther) })
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `<p id="done">done</p>`) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tab := testkit.NewTab(t)
	tab.Do(chromedp.Navigate(srv.URL))
	if got := tab.Load(chromedp.Click(chromedp.ID("gone"))); got != http.StatusNotFound {
		t.Errorf("a link redirected to a missing page: status %d, want 404", got)
	}
	tab.Do(chromedp.NavigateBack())
	if got := testkit.Run(tab, chromedp.Location()); got != srv.URL+"/" {
		t.Errorf("back from the missing page, the tab is at %s, want %s/", got, srv.URL)
	}
	if got := tab.Load(chromedp.Click(chromedp.ID("go"))); got != http.StatusOK {
		t.Errorf("a form redirected (303) to a page: status %d, want 200", got)
	}
	if got := testkit.Run(tab, chromedp.Location()); got != srv.URL+"/done" {
		t.Errorf("after the form, the tab is at %s, want %s/done", got, srv.URL)
	}
}

func TestTabsKeepTheirOwnCookies(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /set", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "alice", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		io.WriteString(w, `<p id="who">set</p>`)
	})
	mux.HandleFunc("GET /who", func(w http.ResponseWriter, r *http.Request) {
		who := "anonymous"
		if c, err := r.Cookie("session"); err == nil {
			who = c.Value
		}
		io.WriteString(w, `<p id="who">`+who+`</p>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	signedIn, other := testkit.NewTab(t), testkit.NewTab(t)
	signedIn.Do(chromedp.Navigate(srv.URL+"/set"), chromedp.Navigate(srv.URL+"/who"))
	other.Do(chromedp.Navigate(srv.URL + "/who"))
	if got := testkit.Run(signedIn, chromedp.Text(chromedp.ID("who"))); got != "alice" {
		t.Errorf("the tab that got the cookie is %q, want alice", got)
	}
	if got := testkit.Run(other, chromedp.Text(chromedp.ID("who"))); got != "anonymous" {
		t.Errorf("another tab is %q, want anonymous: tabs share cookies", got)
	}
}

// cleanups is a failures whose Cleanup functions the test runs itself, to
// see what a Tab reports when its test ends.
type cleanups struct {
	*failures
	fns []func()
}

func (c *cleanups) Cleanup(fn func()) { c.fns = append(c.fns, fn) }

func (c *cleanups) end() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
}

func TestTabReportsABrokenPage(t *testing.T) {
	for name, tc := range map[string]struct{ html, js, want string }{
		"exception": {
			html: `<!doctype html><title>t</title><script src="/app.js"></script>`,
			js:   `null.missing;`,
			want: "exception: Uncaught TypeError",
		},
		"console.error": {
			html: `<!doctype html><title>t</title><script src="/app.js"></script>`,
			js:   `console.error("the table is empty");`,
			want: `console.error: "the table is empty"`,
		},
		"inline script the policy blocks": {
			html: `<!doctype html><title>t</title><script>document.title = "ran"</script>`,
			want: "Content Security Policy",
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := page(t, tc.html, tc.js)
			c := &cleanups{failures: &failures{TB: t}}
			c.run(func(testing.TB) {
				tab := testkit.NewTab(c)
				tab.Do(chromedp.Navigate(srv.URL))
				// The page's messages arrive on their own; reading the
				// title after the load orders the read after them.
				testkit.Run(tab, chromedp.Title())
			})
			c.end()
			if len(c.msgs) != 1 || !strings.Contains(c.msgs[0], tc.want) {
				t.Errorf("a tab on a broken page reported %q, want one report with %q", c.msgs, tc.want)
			}
		})
	}
}

func TestFindChromiumSaysHowToInstallIt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := testkit.FindChromium()
	if err == nil || !strings.Contains(err.Error(), "`make test` installs it") {
		t.Fatalf("FindChromium without a browser on PATH: %v; want an error saying make test installs it", err)
	}
}
