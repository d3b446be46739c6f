package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// CookieName is the session cookie the login form sets: a random session
// id, never a token.
const CookieName = "evbus_console"

// user is who sent a request.
type user struct {
	token   Token
	session *session // nil for a bearer request: no ambient credential, no CSRF token needed
}

func (u *user) role() Role { return u.token.Role }

// session is a browser's sign-in. Its fields but expires are written once.
type session struct {
	key     [sha256.Size]byte
	token   Token
	csrf    string
	expires time.Time

	mu    sync.Mutex // guards flash
	flash string
}

// takeFlash returns the message to show once, and forgets it.
func (s *session) takeFlash() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = ""
	return f
}

func (s *session) setFlash(msg string) {
	s.mu.Lock()
	s.flash = msg
	s.mu.Unlock()
}

// sessions are the signed-in browsers, by the SHA-256 of their cookie (so
// a lookup takes no time that depends on a guessed id's bytes).
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex // guards byID
	byID map[[sha256.Size]byte]*session
}

// create signs t in and returns the cookie value of the new session.
func (ss *sessions) create(t Token) (string, *session) {
	id := randomString()
	s := &session{key: sha256.Sum256([]byte(id)), token: t, csrf: randomString(), expires: ss.now().Add(ss.ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for k, old := range ss.byID { // sign-ins are rare: sweeping here keeps the map small
		if now.After(old.expires) {
			delete(ss.byID, k)
		}
	}
	ss.byID[s.key] = s
	return id, s
}

func (ss *sessions) lookup(id string) *session {
	key := sha256.Sum256([]byte(id))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[key]
	if s == nil {
		return nil
	}
	if ss.now().After(s.expires) {
		delete(ss.byID, key)
		return nil
	}
	return s
}

func (ss *sessions) remove(s *session) {
	ss.mu.Lock()
	delete(ss.byID, s.key)
	ss.mu.Unlock()
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

type userKey struct{}

func userOf(ctx context.Context) *user {
	u, _ := ctx.Value(userKey{}).(*user)
	return u
}

// authenticate finds who sent r: a bearer token, else a session cookie.
// A request with an Authorization header that is not a valid bearer token
// is anonymous: the cookie does not rescue it.
func (h *Handler) authenticate(r *http.Request) *user {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, secret, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil
		}
		t, ok := h.tokens.match(strings.TrimSpace(secret))
		if !ok {
			return nil
		}
		return &user{token: t}
	}
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil
	}
	s := h.sessions.lookup(c.Value)
	if s == nil {
		return nil
	}
	return &user{token: s.token, session: s}
}

// requireUser answers 401 to an anonymous request; a browser's navigation
// gets the login page as the 401's body.
func (h *Handler) requireUser(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := h.authenticate(r)
		if u == nil {
			h.unauthorized(w, r)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	}
}

// requireOperator guards an action: a signed-in user (401), a same-origin
// request (403), the operator role (403) and, for a cookie's session, the
// session's CSRF token in the form (403).
func (h *Handler) requireOperator(next http.HandlerFunc) http.HandlerFunc {
	return h.requireUser(func(w http.ResponseWriter, r *http.Request) {
		u := userOf(r.Context())
		if !h.formOK(w, r) {
			return
		}
		if u.role() != Operator {
			h.logger.Warn("console: action refused: viewer role", "user", u.token, "path", r.URL.Path, "remote", r.RemoteAddr)
			h.forbidden(w, r, "this action needs the operator role")
			return
		}
		if !h.csrfOK(u, r) {
			h.forbidden(w, r, "missing or wrong CSRF token: reload the page and try again")
			return
		}
		next(w, r)
	})
}

// formOK bounds r's form and refuses (403) a cross-origin request.
func (h *Handler) formOK(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := h.crossOrigin.Check(r); err != nil {
		h.forbidden(w, r, "cross-origin request refused")
		return false
	}
	return true
}

// csrfOK checks the form's csrf value against the session's; a bearer
// request carries no ambient credential and needs none.
func (h *Handler) csrfOK(u *user, r *http.Request) bool {
	if u.session == nil {
		return true
	}
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(u.session.csrf)) == 1
}

// maxForm bounds a form's body: reasons and ids are short.
const maxForm = 64 << 10

func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="evbus console"`)
	if wantsHTML(r) {
		next := ""
		if r.Method == http.MethodGet {
			next = r.URL.RequestURI()
		}
		h.render(w, r, http.StatusUnauthorized, "login", loginPage{Next: next})
		return
	}
	http.Error(w, "authentication required: send Authorization: Bearer <token>, or sign in at "+h.path("/login"), http.StatusUnauthorized)
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, why string) {
	if wantsHTML(r) {
		h.render(w, r, http.StatusForbidden, "error", errorPage{Title: "Forbidden", Message: why})
		return
	}
	http.Error(w, "forbidden: "+why, http.StatusForbidden)
}

func wantsHTML(r *http.Request) bool { return strings.Contains(r.Header.Get("Accept"), "text/html") }

type loginPage struct {
	Next    string
	Failed  bool
	Message string
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "login", loginPage{Next: r.URL.Query().Get("next")})
}

// login checks the form's token, starts a session and redirects to next
// (a path of the console only) or to the groups page.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.formOK(w, r) {
		return
	}
	next := r.PostFormValue("next")
	t, ok := h.tokens.match(r.PostFormValue("token"))
	if !ok {
		h.logger.Warn("console: sign-in refused: unknown token", "remote", r.RemoteAddr)
		h.render(w, r, http.StatusUnauthorized, "login", loginPage{Next: next, Failed: true})
		return
	}
	id, _ := h.sessions.create(t)
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    id,
		Path:     h.cookiePath(),
		MaxAge:   int(h.sessions.ttl / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil || h.secureCookie,
		SameSite: http.SameSiteStrictMode,
	})
	h.logger.Info("console: signed in", "user", t, "remote", r.RemoteAddr)
	http.Redirect(w, r, h.path(safeNext(next)), http.StatusSeeOther)
}

// logout ends the session; it is an action like another: same origin and
// the session's CSRF token.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	u := userOf(r.Context())
	if !h.formOK(w, r) {
		return
	}
	if !h.csrfOK(u, r) {
		h.forbidden(w, r, "missing or wrong CSRF token: reload the page and try again")
		return
	}
	if u.session != nil {
		h.sessions.remove(u.session)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: h.cookiePath(), MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil || h.secureCookie, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, h.path("/login"), http.StatusSeeOther)
}

// safeNext returns next when it is a path of this console ("/groups/x"),
// else "/": never another host ("//evil", "https://evil", "/\evil").
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return u.RequestURI()
}
