package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
)

// Config is what New needs. Client, Registry and Tokens are required.
type Config struct {
	// Client reaches the Kafka cluster. It must not be transactional; the
	// console's readers are clients of its connection options, and it
	// writes the ledger with it. The console does not close it.
	Client *kgo.Client
	// Registry decodes the values of dead letters.
	Registry *schema.Registry
	// Tokens are the credentials that sign in (TokensFromEnv, LoadTokens).
	// Without one New fails: the console never runs open.
	Tokens []Token
	// NeverShow lists field paths never displayed, even to an operator who
	// reveals a value: "card.number" is the field number of the record
	// field card; array elements add no step ("lines.sku" is the sku of
	// every line), a map's keys do.
	NeverShow []string
	// Outbox, when its Status is set, gives the outbox page its source.
	Outbox OutboxSource
	// Logger receives sign-ins, refusals and actions (never a token);
	// default: slog.Default().
	Logger *slog.Logger
	// Prefix is the path the handler is mounted under ("/admin/evbus"),
	// without a trailing slash; its links and cookie carry it. The handler
	// strips it itself: mount it as mux.Handle(prefix+"/", h).
	Prefix string
	// SessionTTL is how long a sign-in lasts; default 12h.
	SessionTTL time.Duration
	// SecureCookie marks the session cookie Secure even when the request
	// did not come over TLS, for a console behind a TLS-terminating proxy.
	// A request over TLS always gets a Secure cookie.
	SecureCookie bool
}

// OutboxSource is where the outbox page reads an outbox's status.
type OutboxSource struct {
	// Table names the outbox on the page (e.g. "evbus_outbox").
	Table string
	// Status reads it, e.g. (*outbox.Outbox).Status.
	Status func(context.Context) (outbox.Status, error)
	// HolderUnknown: the database cannot tell whether a relay still holds
	// its shard (SQLite); the page says "unknown" instead of Active.
	HolderUnknown bool
}

// defaultSessionTTL is Config.SessionTTL's default.
const defaultSessionTTL = 12 * time.Hour

// Handler is the console: an http.Handler. Close it when done.
type Handler struct {
	cl           *kgo.Client
	adm          *kadm.Client
	reg          *schema.Registry
	tokens       *tokenSet
	sessions     *sessions
	crossOrigin  *http.CrossOriginProtection
	neverShow    map[string]bool
	outbox       OutboxSource
	logger       *slog.Logger
	prefix       string
	secureCookie bool
	mux          *http.ServeMux
	pages        map[string]*template.Template
	codec        *codec.Codec
	managers     managers
	now          func() time.Time
}

// New checks cfg and returns the console's handler. Errors name the field
// at fault and never contain a token.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("console: nil Config.Client: pass a *kgo.Client on the cluster")
	case cfg.Registry == nil:
		return nil, errors.New("console: nil Config.Registry: pass a *schema.Registry (schema.New), to decode dead letters' values")
	case cfg.Prefix != "" && (!strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/")):
		return nil, fmt.Errorf("console: Config.Prefix %q: want a path starting with / and without a trailing /, e.g. /admin/evbus", cfg.Prefix)
	case cfg.SessionTTL < 0:
		return nil, fmt.Errorf("console: negative Config.SessionTTL %v", cfg.SessionTTL)
	}
	ts, err := newTokenSet(cfg.Tokens)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cl: cfg.Client, adm: kadm.NewClient(cfg.Client), reg: cfg.Registry, tokens: ts,
		crossOrigin: http.NewCrossOriginProtection(), neverShow: make(map[string]bool),
		outbox: cfg.Outbox, logger: cfg.Logger, prefix: cfg.Prefix, secureCookie: cfg.SecureCookie,
		now: time.Now, managers: managers{byName: make(map[string]*managerSlot)},
	}
	if h.codec, err = codec.New(cfg.Registry); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	for _, p := range cfg.NeverShow {
		if p = strings.TrimSpace(p); p == "" {
			return nil, errors.New("console: Config.NeverShow has an empty field path")
		}
		h.neverShow[p] = true
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	ttl := cfg.SessionTTL
	if ttl == 0 {
		ttl = defaultSessionTTL
	}
	h.sessions = &sessions{ttl: ttl, now: func() time.Time { return h.now() }, byID: make(map[[32]byte]*session)}
	if h.pages, err = parsePages(h); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

// Close releases what the handler holds: the reader of each group it
// showed (a deadletter.Manager per group, kept from the group's first page
// on). The Client given in Config stays open. Pages of a group fail after
// Close.
func (h *Handler) Close() { h.managers.closeAll() }

//go:embed static
var static embed.FS

//go:embed templates
var templates embed.FS

func (h *Handler) routes() {
	m := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	m.HandleFunc("GET /login", h.loginForm)
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("POST /logout", h.requireUser(h.logout))
	m.HandleFunc("GET /{$}", h.requireUser(h.groupsPage))
	m.HandleFunc("GET /groups/{group}", h.requireUser(h.groupPage))
	m.HandleFunc("GET /groups/{group}/fingerprints/{fp}", h.requireUser(h.fingerprintPage))
	m.HandleFunc("GET /groups/{group}/letter", h.requireUser(h.letterPage))
	m.HandleFunc("GET /groups/{group}/lag", h.requireUser(h.lagPage))
	m.HandleFunc("POST /groups/{group}/actions/{action}", h.requireOperator(h.action))
	m.HandleFunc("GET /outbox", h.requireUser(h.outboxPage))
	m.HandleFunc("/", h.requireUser(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "no such page: "+r.URL.Path)
	}))
	h.mux = m
}

// The headers of every response.
const (
	ContentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// ServeHTTP serves the console, every response with its security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if h.prefix != "" {
		rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
		if !ok || rest != "" && rest[0] != '/' {
			hd.Set("Cache-Control", "no-store")
			http.NotFound(w, r)
			return
		}
		if rest == "" {
			rest = "/"
		}
		r2 := *r
		u := *r.URL
		// The escaped path loses the prefix too: a group named "a/b" is
		// one segment, a%2Fb, to the mux.
		rawRest, ok := strings.CutPrefix(r.URL.RawPath, h.prefix)
		if !ok || rest == "/" {
			rawRest = ""
		}
		u.Path, u.RawPath = rest, rawRest
		r2.URL = &u
		r = &r2
	}
	if strings.HasPrefix(r.URL.Path, "/static/") {
		hd.Set("Cache-Control", "public, max-age=3600")
	} else {
		hd.Set("Cache-Control", "no-store")
	}
	h.mux.ServeHTTP(w, r)
}

// path is p, a path of the console, as the browser sees it.
func (h *Handler) path(p string) string { return h.prefix + p }

func (h *Handler) cookiePath() string {
	if h.prefix == "" {
		return "/"
	}
	return h.prefix + "/"
}

// page is what every page's layout needs besides its own data.
type page struct {
	Title  string
	User   *user
	Signed bool   // a user is signed in
	Role   string // their role and name, for the header
	Name   string
	CSRF   string
	Flash  string
	Prefix string
	Data   any
}

func parsePages(h *Handler) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"path":            h.path,
		"utc":             func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"dur":             age,
		"letterPath":      func(group, id string) string { return h.path(letterPath(group, id)) },
		"fingerprintPath": func(group, fp string) string { return h.path(fingerprintPath(group, fp)) },
		"groupPath":       func(group string) string { return h.path(groupPath(group)) },
		"trim":            trimError,
		"add":             func(a, b int) int { return a + b },
		"states":          stateCounts,
		"actions":         func() []actionForm { return actionForms },
		"keyText":         func(k []byte) string { return trimError(headerText(k)) },
	}
	out := make(map[string]*template.Template)
	names, err := fs.Glob(templates, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templates, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return out, nil
}

// render writes the page name with data, in the layout.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	p := page{Title: name, User: userOf(r.Context()), Prefix: h.prefix, Data: data}
	if p.User != nil {
		p.Signed, p.Role, p.Name = true, p.User.role().String(), p.User.token.name()
	}
	if p.User != nil && p.User.session != nil {
		p.CSRF = p.User.session.csrf
		p.Flash = p.User.session.takeFlash()
	}
	var buf bytes.Buffer
	if err := h.pages[name].Execute(&buf, p); err != nil {
		h.logger.Error("console: page", "page", name, "err", err)
		http.Error(w, "the page could not be written; see the console's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type errorPage struct{ Title, Message string }

// fail answers with an error page (or text for a script).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if wantsHTML(r) {
		h.render(w, r, status, "error", errorPage{Title: http.StatusText(status), Message: msg})
		return
	}
	http.Error(w, msg, status)
}

// age is d rounded for a reader: milliseconds under a second, else
// seconds.
func age(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// ago says how long before now t was, briefly: "3m12s ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		d = d.Round(time.Second)
	case d < 24*time.Hour:
		d = d.Round(time.Minute)
	default:
		d = d.Round(time.Hour)
	}
	return d.String() + " ago"
}
