package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/internal/redact"
)

// Registry is a client of a Confluent-compatible schema registry. It caches
// schemas by id and the ids of the schemas producers use, and is safe for
// concurrent use. It is the codec.Resolver consumers decode with.
type Registry struct {
	cl  *sr.Client
	cfg config

	mu      sync.RWMutex
	byID    map[int]*codec.Schema
	writers map[writerKey]Writer

	hits, misses atomic.Uint64
}

// CacheStats returns how many lookups (schemas by id or GUID, writer ids)
// the cache answered and how many went to the registry.
func (r *Registry) CacheStats() (hits, misses uint64) { return r.hits.Load(), r.misses.Load() }

// count counts a lookup as a cache hit or miss.
func (r *Registry) count(hit bool) {
	if hit {
		r.hits.Add(1)
	} else {
		r.misses.Add(1)
	}
}

type writerKey struct {
	subject string
	schema  *codec.Schema
}

// Writer is what a producer frames one event type with: the registered
// schema id and the schema it names (the event's own schema, the subject's
// latest version, or a union that has the event as a branch).
type Writer struct {
	ID      int
	Subject string
	Schema  *codec.Schema
}

var _ codec.Resolver = (*Registry)(nil)

// New returns a client of the registry at urls, a comma-separated list of
// http or https URLs tried in order.
func New(urls string, opts ...Option) (*Registry, error) {
	cfg := defaultConfig()
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("schema: New: option %d is nil", i+1)
		}
		o(&cfg)
	}
	tel, err := cfg.tel.Resolve("schema")
	if err != nil {
		return nil, err
	}
	if cfg.timeout <= 0 {
		return nil, fmt.Errorf("schema: Timeout(%v): want a positive duration", cfg.timeout)
	}
	if cfg.level != "" {
		if _, err := ParseLevel(string(cfg.level)); err != nil {
			return nil, err
		}
	}
	var list []string
	for _, raw := range strings.Split(urls, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("schema: registry URL %q: want http://host:port or https://host:port", redact.URL(raw))
		}
		if u.User != nil {
			if cfg.user == "" {
				cfg.user = u.User.Username()
				cfg.pass, _ = u.User.Password()
			}
			u.User = nil
		}
		list = append(list, u.String())
	}
	if len(list) == 0 {
		return nil, errors.New("schema: no registry URL: pass one, e.g. http://127.0.0.1:8081")
	}
	if cfg.user != "" && cfg.bearer != "" {
		return nil, errors.New("schema: basic auth and a bearer token are both set: choose one")
	}
	copts := []sr.ClientOpt{
		sr.URLs(list...),
		sr.HTTPClient(&http.Client{Timeout: cfg.timeout}),
		sr.UserAgent("evbus"),
	}
	if cfg.tls != nil {
		copts = append(copts, sr.DialTLSConfig(cfg.tls))
	}
	if cfg.user != "" {
		copts = append(copts, sr.BasicAuth(cfg.user, cfg.pass))
	}
	if cfg.bearer != "" {
		copts = append(copts, sr.BearerToken(cfg.bearer))
	}
	cl, err := sr.NewClient(copts...)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	r := &Registry{cl: cl, cfg: cfg, byID: make(map[int]*codec.Schema), writers: make(map[writerKey]Writer)}
	// A weak pointer: the metric callback must not keep a registry alive
	// that its program dropped; the callback goes once the registry does.
	wr := weak.Make(r)
	stop, err := tel.ObserveRegistry(func() (uint64, uint64, bool) {
		r := wr.Value()
		if r == nil {
			return 0, 0, false
		}
		h, m := r.CacheStats()
		return h, m, true
	})
	if err != nil {
		return nil, fmt.Errorf("schema: metrics: %w", err)
	}
	runtime.AddCleanup(r, func(stop func()) { stop() }, stop)
	return r, nil
}

// checkArgs names a nil argument of the calls that take a schema.
func checkArgs(fn string, ctx context.Context, s *codec.Schema) error {
	switch {
	case ctx == nil:
		return fmt.Errorf("schema: %s: nil context", fn)
	case s == nil:
		return fmt.Errorf("%w: %s: nil schema", codec.ErrInvalidSchema, fn)
	}
	return nil
}

// Subject returns the subject values of s on topic are registered under.
func (r *Registry) Subject(topic string, s *codec.Schema) (string, error) {
	if s == nil {
		return "", fmt.Errorf("%w: nil schema", codec.ErrInvalidSchema)
	}
	return r.cfg.strategy.Subject(topic, s.FullName())
}

// Writer returns the schema id and schema producers frame values of s on
// topic with, registering s first when the mode is AutoRegister. The answer
// is cached: later calls cost a map lookup.
func (r *Registry) Writer(ctx context.Context, topic string, s *codec.Schema) (Writer, error) {
	if s == nil {
		return Writer{}, fmt.Errorf("%w: nil schema", codec.ErrInvalidSchema)
	}
	subject, err := r.Subject(topic, s)
	if err != nil {
		return Writer{}, err
	}
	k := writerKey{subject: subject, schema: s}
	r.mu.RLock()
	w, ok := r.writers[k]
	r.mu.RUnlock()
	r.count(ok)
	if ok {
		return w, nil
	}
	w = Writer{Subject: subject, Schema: s}
	switch r.cfg.mode {
	case AutoRegister:
		w.ID, err = r.Register(ctx, subject, s)
	case LookupOnly:
		w.ID, err = r.Lookup(ctx, subject, s)
	case UseLatest:
		w, err = r.latestFor(ctx, subject, s)
	default:
		err = fmt.Errorf("schema: unknown register mode %d", r.cfg.mode)
	}
	if err != nil {
		return Writer{}, err
	}
	r.mu.Lock()
	r.writers[k] = w
	r.mu.Unlock()
	return w, nil
}

func (r *Registry) latestFor(ctx context.Context, subject string, s *codec.Schema) (Writer, error) {
	ss, err := r.cl.SchemaByVersion(ctx, subject, -1)
	if err != nil {
		return Writer{}, classify("latest version of "+subject, err, ErrNotRegistered, sr.ErrSubjectNotFound.Code, sr.ErrVersionNotFound.Code)
	}
	latest, err := r.SchemaByID(ctx, ss.ID)
	if err != nil {
		return Writer{}, err
	}
	w := Writer{ID: ss.ID, Subject: subject, Schema: latest}
	if latest.IsUnion() {
		for _, b := range latest.Branches() {
			if b == s.FullName() {
				return w, nil
			}
		}
		return Writer{}, fmt.Errorf("%w: latest version of %s is a union without %s", codec.ErrIncompatible, subject, s.FullName())
	}
	if latest.FullName() != s.FullName() {
		return Writer{}, fmt.Errorf("%w: latest version of %s is %s, not %s", codec.ErrIncompatible, subject, latest.FullName(), s.FullName())
	}
	return w, nil
}

// Register registers s under subject and returns its id. The client-side
// check runs first, so an incompatible change fails with an error that
// names the field even when the registry checks nothing. Schemas s
// references are registered first, each under its full name.
func (r *Registry) Register(ctx context.Context, subject string, s *codec.Schema) (int, error) {
	if err := checkArgs("Register", ctx, s); err != nil {
		return 0, err
	}
	if err := r.Check(ctx, subject, s); err != nil {
		return 0, err
	}
	refs, err := r.references(ctx, s, true)
	if err != nil {
		return 0, err
	}
	id, err := r.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: s.String(), Type: sr.TypeAvro, References: refs}, -1, -1)
	if err != nil {
		return 0, classify("register "+subject, err, ErrNotRegistered, sr.ErrSubjectNotFound.Code)
	}
	r.remember(id, s)
	return id, nil
}

// Lookup returns the id of s if it is registered under subject, or an
// error wrapping ErrNotRegistered.
func (r *Registry) Lookup(ctx context.Context, subject string, s *codec.Schema) (int, error) {
	if err := checkArgs("Lookup", ctx, s); err != nil {
		return 0, err
	}
	refs, err := r.references(ctx, s, false)
	if err != nil {
		return 0, err
	}
	ss, err := r.cl.LookupSchema(ctx, subject, sr.Schema{Schema: s.String(), Type: sr.TypeAvro, References: refs})
	if err != nil {
		return 0, classify(fmt.Sprintf("look up %s in %s", s.FullName(), subject), err, ErrNotRegistered, sr.ErrSubjectNotFound.Code, sr.ErrSchemaNotFound.Code)
	}
	r.remember(ss.ID, s)
	return ss.ID, nil
}

// references registers (or looks up) the schemas s references, each under
// its full name, and returns the registry's reference list for s.
func (r *Registry) references(ctx context.Context, s *codec.Schema, register bool) ([]sr.SchemaReference, error) {
	var refs []sr.SchemaReference
	for _, ref := range s.References() {
		name := ref.FullName()
		if name == "" {
			return nil, fmt.Errorf("%w: a referenced schema must be named (record, enum or fixed)", codec.ErrInvalidSchema)
		}
		var err error
		if register {
			_, err = r.Register(ctx, name, ref)
		} else {
			_, err = r.Lookup(ctx, name, ref)
		}
		if err != nil {
			return nil, fmt.Errorf("reference %s: %w", name, err)
		}
		nested, err := r.references(ctx, ref, false)
		if err != nil {
			return nil, err
		}
		ss, err := r.cl.LookupSchema(ctx, name, sr.Schema{Schema: ref.String(), Type: sr.TypeAvro, References: nested})
		if err != nil {
			return nil, classify("reference "+name, err, ErrNotRegistered, sr.ErrSubjectNotFound.Code, sr.ErrSchemaNotFound.Code)
		}
		refs = append(refs, sr.SchemaReference{Name: name, Subject: name, Version: ss.Version})
	}
	return refs, nil
}

// Level returns the compatibility level the client-side check uses for
// subject: the CompatibilityLevel option if set, else the subject's level
// at the registry, else the registry's global level.
func (r *Registry) Level(ctx context.Context, subject string) (Level, error) {
	if r.cfg.level != "" {
		return r.cfg.level, nil
	}
	for _, s := range []string{subject, sr.GlobalSubject} {
		res := r.cl.Compatibility(ctx, s)[0]
		if res.Err == nil {
			return ParseLevel(res.Level.String())
		}
		err := classify("compatibility level of "+subject, res.Err, ErrNotRegistered, sr.ErrSubjectNotFound.Code, sr.ErrSubjectLevelCompatibilityNotConfigured.Code)
		if !errors.Is(err, ErrNotRegistered) {
			return "", err
		}
	}
	return Backward, nil
}

// Check runs the client-side compatibility check of s against the versions
// registered under subject, at the subject's level. A subject without
// versions accepts anything.
func (r *Registry) Check(ctx context.Context, subject string, s *codec.Schema) error {
	if err := checkArgs("Check", ctx, s); err != nil {
		return err
	}
	level, err := r.Level(ctx, subject)
	if err != nil {
		return err
	}
	if level == None {
		return nil
	}
	existing, err := r.Versions(ctx, subject)
	if err != nil {
		return err
	}
	if err := CheckLevel(level, s, existing); err != nil {
		return fmt.Errorf("schema: subject %s: %w", subject, err)
	}
	return nil
}

// Versions returns the schemas registered under subject, oldest first;
// none for a subject that does not exist.
func (r *Registry) Versions(ctx context.Context, subject string) ([]*codec.Schema, error) {
	all, err := r.cl.Schemas(ctx, subject)
	if err != nil {
		err = classify("versions of "+subject, err, ErrNotRegistered, sr.ErrSubjectNotFound.Code)
		if errors.Is(err, ErrNotRegistered) {
			return nil, nil
		}
		return nil, err
	}
	out := make([]*codec.Schema, 0, len(all))
	for _, ss := range all {
		s, err := r.SchemaByID(ctx, ss.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// SchemaByID returns the schema registered as id, with its references
// resolved. An id the registry does not know wraps codec.ErrUnknownSchema.
func (r *Registry) SchemaByID(ctx context.Context, id int) (*codec.Schema, error) {
	r.mu.RLock()
	s, ok := r.byID[id]
	r.mu.RUnlock()
	r.count(ok)
	if ok {
		return s, nil
	}
	raw, err := r.cl.SchemaByID(ctx, id)
	if err != nil {
		return nil, classify(fmt.Sprintf("schema id %d", id), err, codec.ErrUnknownSchema, sr.ErrSchemaNotFound.Code)
	}
	return r.parse(ctx, id, raw)
}

// SchemaByGUID returns the schema a GUID names and its id.
func (r *Registry) SchemaByGUID(ctx context.Context, guid string) (int, *codec.Schema, error) {
	r.count(false) // the codec caches what GUIDs name
	ss, err := r.cl.SchemaByGUID(ctx, guid)
	if err != nil {
		return 0, nil, classify("schema guid "+guid, err, codec.ErrUnknownSchema, sr.ErrSchemaNotFound.Code)
	}
	if ss.ID <= 0 {
		return 0, nil, fmt.Errorf("schema guid %s: %w: no id in the answer", guid, ErrBadResponse)
	}
	s, err := r.parse(ctx, ss.ID, ss.Schema)
	return ss.ID, s, err
}

func (r *Registry) parse(ctx context.Context, id int, raw sr.Schema) (*codec.Schema, error) {
	if strings.TrimSpace(raw.Schema) == "" {
		// A 200 whose JSON holds no schema (a proxy's own answer, say) is
		// no verdict on the record that names the id.
		return nil, fmt.Errorf("schema id %d: %w: no schema in the answer", id, ErrBadResponse)
	}
	if raw.Type != sr.TypeAvro && raw.Type != 0 {
		return nil, fmt.Errorf("schema id %d: %w: type %v, evbus reads Avro", id, codec.ErrInvalidSchema, raw.Type)
	}
	refs := make([]*codec.Schema, 0, len(raw.References))
	for _, ref := range raw.References {
		ss, err := r.cl.SchemaByVersion(ctx, ref.Subject, ref.Version)
		if err != nil {
			return nil, classify(fmt.Sprintf("schema id %d: reference %s (%s v%d)", id, ref.Name, ref.Subject, ref.Version), err, codec.ErrUnknownSchema, sr.ErrSubjectNotFound.Code, sr.ErrVersionNotFound.Code)
		}
		rs, err := r.SchemaByID(ctx, ss.ID)
		if err != nil {
			return nil, err
		}
		refs = append(refs, rs)
	}
	s, err := codec.Parse(raw.Schema, refs...)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	return r.remember(id, s), nil
}

// remember caches s as id; the first schema cached for an id wins, so
// every caller shares one *codec.Schema per id.
func (r *Registry) remember(id int, s *codec.Schema) *codec.Schema {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byID[id]; ok {
		return old
	}
	r.byID[id] = s
	return s
}
