package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
)

// registry is srfake's schema registry behind a handler that enforces
// compatibility levels and, given a log file, makes every change durable.
//
// srfake keeps the state and answers every request; this handler only adds
// checks in front of it and records what changed behind it. It reads
// srfake's state through srfake's own HTTP API, in process, so the two never
// disagree about what is registered.
type registry struct {
	fake *srfake.Registry
	auth string // the Authorization header srfake expects, sent on our own calls
	mux  *http.ServeMux
	log  *slog.Logger

	// mu serialises changes: a compatibility check and the registration it
	// admits are one step, and the log's order is the order of the changes.
	mu      sync.Mutex
	file    *os.File // the change log; nil keeps the registry in memory
	path    string
	newline bool  // the file does not end with a newline yet
	broken  error // a failed append: later changes are refused, see persist
}

// logEntry is one line of the change log. A registration keeps its id and
// version so replay restores them exactly; every other change (config,
// mode, delete) is the request that made it, replayed as is.
type logEntry struct {
	Op      string          `json:"op"` // "register" or "request"
	Subject string          `json:"subject,omitempty"`
	Version int             `json:"version,omitempty"`
	ID      int             `json:"id,omitempty"`
	Schema  *sr.Schema      `json:"schema,omitempty"`
	Method  string          `json:"method,omitempty"`
	Path    string          `json:"path,omitempty"` // with its query
	Body    json.RawMessage `json:"body,omitempty"`
}

func newRegistry(ctx context.Context, logPath, auth string, log *slog.Logger) (*registry, error) {
	var opts []srfake.Option
	if auth != "" {
		opts = append(opts, srfake.WithAuth(auth))
	}
	g := &registry{fake: srfake.NewRegistry(opts...), auth: auth, log: log, path: logPath}

	g.mux = http.NewServeMux()
	g.mux.HandleFunc("POST /subjects/{subject}/versions", g.register)
	g.mux.HandleFunc("POST /compatibility/subjects/{subject}/versions/{version}", g.checkCompatibility)
	g.mux.HandleFunc("POST /compatibility/subjects/{subject}/versions", g.checkCompatibility)
	// Every PUT and DELETE changes state (config, mode, deletes).
	g.mux.HandleFunc("GET /schemas/ids/{id}", g.schemaByID)
	g.mux.HandleFunc("GET /schemas/ids/{id}/schema", g.schemaByID)
	g.mux.HandleFunc("PUT /", g.change)
	g.mux.HandleFunc("DELETE /", g.change)
	// srfake strips a /contexts/{context} prefix and serves the rest, which
	// would let a registration past the checks above and out of the log.
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		g.mux.HandleFunc(m+" /contexts/{context}/{rest...}", func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotImplemented, http.StatusNotImplemented,
				"schema contexts are read-only in the evbus dev registry; use the path without /contexts/{context}")
		})
	}
	g.mux.Handle("/", g.fake.Handler())

	if logPath == "" {
		return g, nil
	}
	f, err := os.OpenFile(logPath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devstack: registry log: %w; choose a writable data dir", err)
	}
	g.file = f
	if err := g.replay(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return g, nil
}

func (g *registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Unauthorised requests get srfake's own 401/403 before any check here
	// can tell them something.
	if g.auth != "" && r.Header.Get("Authorization") != g.auth {
		g.fake.Handler().ServeHTTP(w, r)
		return
	}
	g.mux.ServeHTTP(w, r)
}

// register checks a new schema against the subject's level before srfake
// registers it, and logs the registration srfake made.
func (g *registry) register(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var s sr.Schema
	if json.Unmarshal(body, &s) != nil {
		g.fake.Handler().ServeHTTP(w, withBody(r, body)) // srfake names what is wrong
		return
	}
	subject := r.PathValue("subject")

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused(w) {
		return
	}
	// Registering what the subject already has is a no-op: no check, no log.
	if ss, err := g.lookup(subject, body); err == nil {
		writeJSON(w, http.StatusOK, registered(ss))
		return
	}
	if s.Type == sr.TypeAvro {
		verdict, err := g.check(s, subject, "")
		if err != nil {
			relayError(w, err)
			return
		}
		if verdict != nil {
			writeError(w, http.StatusConflict, http.StatusConflict, fmt.Sprintf(
				"Schema being registered is incompatible with an earlier schema for subject %q, details: [%v]", subject, verdict))
			return
		}
	}

	rec := httptest.NewRecorder()
	g.fake.Handler().ServeHTTP(rec, withBody(r, body))
	if rec.Code == http.StatusOK {
		ss, err := g.lookup(subject, body)
		if err == nil {
			err = g.persist(logEntry{Op: "register", Subject: subject, Version: ss.Version, ID: ss.ID, Schema: &s})
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, 50001, err.Error())
			return
		}
		g.log.Info("schema registered", "subject", subject, "version", ss.Version, "id", ss.ID)
		writeJSON(w, http.StatusOK, registered(ss))
		return
	}
	relay(w, rec)
}

// registered is the answer to a registration, as Schema Registry 8 gives
// it: the schema's id and its guid (derived from the schema's content by
// srfake, so it is the same after a restart). Serializers in header mode
// write the guid.
func registered(ss sr.SubjectSchema) map[string]any {
	return map[string]any{"id": ss.ID, "guid": ss.GUID}
}

// schemaByID answers GET /schemas/ids/{id}[/schema] as Confluent Schema
// Registry does: a subject named in the query that is in the default
// context does not narrow the lookup (srfake answers 404 when the schema
// is registered under another subject, so a deserializer that names
// <topic>-value could not read records whose schema is under
// <topic>-<record name>).
func (g *registry) schemaByID(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if s := q.Get("subject"); s != "" && !strings.HasPrefix(s, ":.") {
		q.Del("subject")
		r = r.Clone(r.Context())
		r.URL.RawQuery = q.Encode()
	}
	g.fake.Handler().ServeHTTP(w, r)
}

// check parses s and runs the subject's effective level against it: against
// version alone when given (the compatibility endpoint's
// /versions/{version}), else against the versions the level names. verdict
// is the level's answer, nil when s is compatible; err answers the request
// instead (s does not parse, the version does not exist).
func (g *registry) check(s sr.Schema, subject, version string) (verdict, err error) {
	next, err := g.parse(s)
	if err != nil {
		return nil, &answerError{Status: http.StatusUnprocessableEntity, Code: 42201, Message: "Invalid schema: " + err.Error()}
	}
	level, existing, err := g.subjectState(subject, version)
	if err != nil {
		return nil, err
	}
	return schema.CheckLevel(level, next, existing), nil
}

// checkCompatibility answers POST /compatibility/subjects/{subject}/versions[/{version}]
// for Avro schemas; srfake answers "compatible" for the others.
func (g *registry) checkCompatibility(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var s sr.Schema
	if json.Unmarshal(body, &s) != nil || s.Type != sr.TypeAvro {
		g.fake.Handler().ServeHTTP(w, withBody(r, body))
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	verdict, err := g.check(s, r.PathValue("subject"), r.PathValue("version"))
	if err != nil {
		relayError(w, err)
		return
	}
	res := sr.CheckCompatibilityResult{Is: true, Messages: []string{}}
	if verdict != nil {
		res = sr.CheckCompatibilityResult{Is: false, Messages: []string{verdict.Error()}}
	}
	writeJSON(w, http.StatusOK, res)
}

// change passes a PUT or DELETE to srfake and logs it when it succeeded.
func (g *registry) change(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused(w) {
		return
	}
	rec := httptest.NewRecorder()
	g.fake.Handler().ServeHTTP(rec, withBody(r, body))
	if rec.Code/100 == 2 {
		e := logEntry{Op: "request", Method: r.Method, Path: r.URL.RequestURI()}
		if json.Valid(body) {
			e.Body = body
		}
		if err := g.persist(e); err != nil {
			writeError(w, http.StatusInternalServerError, 50001, err.Error())
			return
		}
	}
	relay(w, rec)
}

// parse parses an Avro schema with its references, resolved through the
// registry's own state.
func (g *registry) parse(s sr.Schema) (*codec.Schema, error) {
	refs := make([]*codec.Schema, 0, len(s.References))
	for _, ref := range s.References {
		var ss sr.SubjectSchema
		if err := g.call(http.MethodGet, versionPath(ref.Subject, strconv.Itoa(ref.Version)), nil, &ss); err != nil {
			return nil, fmt.Errorf("reference %q (subject %q version %d): %w", ref.Name, ref.Subject, ref.Version, err)
		}
		parsed, err := g.parse(ss.Schema)
		if err != nil {
			return nil, fmt.Errorf("reference %q (subject %q version %d): %w", ref.Name, ref.Subject, ref.Version, err)
		}
		refs = append(refs, parsed)
	}
	return codec.Parse(s.Schema, refs...)
}

// subjectState returns the subject's effective level and the Avro schemas a
// new one is checked against, oldest first: version alone when given,
// else every live version.
func (g *registry) subjectState(subject, version string) (schema.Level, []*codec.Schema, error) {
	var cfg struct {
		Level string `json:"compatibilityLevel"`
	}
	if err := g.call(http.MethodGet, "/config/"+url.PathEscape(subject)+"?defaultToGlobal=true", nil, &cfg); err != nil {
		return "", nil, err
	}
	level, err := schema.ParseLevel(cfg.Level)
	if err != nil {
		return "", nil, err
	}

	versions := []string{version}
	if version == "" {
		var live []int
		err := g.call(http.MethodGet, "/subjects/"+url.PathEscape(subject)+"/versions", nil, &live)
		if ae := (*answerError)(nil); errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return level, nil, nil // a new subject: nothing to be compatible with
		}
		if err != nil {
			return "", nil, err
		}
		versions = nil
		for _, v := range live {
			versions = append(versions, strconv.Itoa(v))
		}
	}
	var existing []*codec.Schema
	for _, v := range versions {
		var ss sr.SubjectSchema
		if err := g.call(http.MethodGet, versionPath(subject, v), nil, &ss); err != nil {
			return "", nil, err
		}
		if ss.Type != sr.TypeAvro {
			continue
		}
		parsed, err := g.parse(ss.Schema)
		if err != nil {
			return "", nil, fmt.Errorf("subject %q version %d does not parse: %w", subject, ss.Version, err)
		}
		existing = append(existing, parsed)
	}
	return level, existing, nil
}

// lookup asks srfake whether subject already has the schema in body.
func (g *registry) lookup(subject string, body []byte) (sr.SubjectSchema, error) {
	var ss sr.SubjectSchema
	err := g.call(http.MethodPost, "/subjects/"+url.PathEscape(subject), body, &ss)
	return ss, err
}

// call sends one request to srfake in process and decodes a 2xx answer into
// out; any other answer is an *answerError.
func (g *registry) call(method, path string, body []byte, out any) error {
	r, err := http.NewRequest(method, path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if g.auth != "" {
		r.Header.Set("Authorization", g.auth)
	}
	rec := httptest.NewRecorder()
	g.fake.Handler().ServeHTTP(rec, r)
	if rec.Code/100 != 2 {
		ae := &answerError{Status: rec.Code}
		if json.Unmarshal(rec.Body.Bytes(), ae) != nil || ae.Message == "" {
			ae.Message = rec.Body.String()
		}
		return ae
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(rec.Body.Bytes(), out)
}

// answerError is an error answer from srfake.
type answerError struct {
	Status  int    `json:"-"`
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func (e *answerError) Error() string { return e.Message }

// persist appends e to the log and syncs it, before the change is answered.
// A change that cannot be saved has still been made in memory, so the
// registry stops taking changes: what it answers must match what a restart
// will find.
func (g *registry) persist(e logEntry) error {
	if g.file == nil {
		return nil
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if g.newline {
		line = append([]byte("\n"), line...)
	}
	line = append(line, '\n')
	if _, err = g.file.Write(line); err == nil {
		err = g.file.Sync()
	}
	if err != nil {
		g.broken = fmt.Errorf("evbus dev registry: cannot save changes to %s: %v; the registry refuses changes until it is restarted with a writable data dir", g.path, err)
		g.log.Error(g.broken.Error())
		return g.broken
	}
	g.newline = false
	return nil
}

// replay applies the log to the empty srfake registry.
func (g *registry) replay(ctx context.Context) error {
	data, err := io.ReadAll(g.file)
	if err != nil {
		return fmt.Errorf("devstack: reading %s: %w", g.path, err)
	}
	g.newline = len(data) > 0 && data[len(data)-1] != '\n'
	seen := make(map[int]bool) // schema ids registered so far
	for n, line := range bytes.Split(data, []byte("\n")) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := g.apply(line, seen); err != nil {
			return fmt.Errorf("devstack: %s line %d: %w; the registry log is damaged: repair or remove that line (removing the file forgets every schema)", g.path, n+1, err)
		}
	}
	return nil
}

func (g *registry) apply(line []byte, seen map[int]bool) (err error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var e logEntry
	if err := dec.Decode(&e); err != nil {
		return fmt.Errorf("not a log entry: %w", err)
	}
	switch e.Op {
	case "register":
		if e.Subject == "" || e.Version < 1 || e.ID < 1 || e.Schema == nil {
			return errors.New("a register entry needs subject, version, id and schema")
		}
		if seen[e.ID] {
			// The id is already taken (the schema is in another subject,
			// or was registered here before a delete): srfake reuses it,
			// so registering again must land on the same id and version.
			id, version, err := g.fake.RegisterSchema(e.Subject, *e.Schema)
			if err == nil && (id != e.ID || version != e.Version) {
				err = fmt.Errorf("replay gave id %d version %d, the log says id %d version %d", id, version, e.ID, e.Version)
			}
			return err
		}
		seen[e.ID] = true
		// SeedSchema panics on what it cannot seed; a damaged log must be
		// an error instead.
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%v", p)
			}
		}()
		g.fake.SeedSchema(e.Subject, e.Version, e.ID, *e.Schema)
		return nil
	case "request":
		if e.Method != http.MethodPut && e.Method != http.MethodDelete {
			return fmt.Errorf("a request entry must be a PUT or DELETE, not %q", e.Method)
		}
		return g.call(e.Method, e.Path, e.Body, nil)
	default:
		return fmt.Errorf("unknown op %q", e.Op)
	}
}

// close closes the log. Changes that still arrive (a request that outlived
// the server's shutdown) are refused: they could no longer be saved.
func (g *registry) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.broken = errors.New("evbus dev registry: closed")
	if g.file == nil {
		return nil
	}
	if err := g.file.Close(); err != nil {
		return fmt.Errorf("devstack: closing %s: %w", g.path, err)
	}
	return nil
}

// refused answers a change the registry can no longer save; the caller
// holds mu.
func (g *registry) refused(w http.ResponseWriter) bool {
	if g.broken != nil {
		writeError(w, http.StatusInternalServerError, 50001, g.broken.Error())
	}
	return g.broken != nil
}

// readBody reads a request body of at most 1 MiB, as srfake allows.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge, err.Error())
	}
	return body, err == nil
}

func versionPath(subject, version string) string {
	return "/subjects/" + url.PathEscape(subject) + "/versions/" + url.PathEscape(version)
}

// withBody returns r with body to read again.
func withBody(r *http.Request, body []byte) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	return r2
}

func relay(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes()) //nolint:errcheck // the client went away
}

func relayError(w http.ResponseWriter, err error) {
	var ae *answerError
	if errors.As(err, &ae) {
		writeError(w, ae.Status, ae.Code, ae.Message)
		return
	}
	writeError(w, http.StatusInternalServerError, 50001, err.Error())
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"error_code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}
