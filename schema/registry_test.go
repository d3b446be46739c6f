package schema_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
)

// startRegistry starts a registry over HTTP on loopback and returns its URL.
func startRegistry(t testing.TB, opts ...srfake.Option) string {
	t.Helper()
	r := srfake.New(opts...)
	t.Cleanup(r.Close)
	return r.URL()
}

func newRegistry(t testing.TB, url string, opts ...schema.Option) *schema.Registry {
	t.Helper()
	reg, err := schema.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

const placedV1 = `{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
	{"name":"order_id","type":"string"},{"name":"qty","type":"int"}]}`

const placedV2 = `{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
	{"name":"order_id","type":"string"},{"name":"qty","type":"long"},{"name":"note","type":"string","default":""}]}`

const cancelled = `{"type":"record","name":"OrderCancelled","namespace":"com.example.orders","fields":[
	{"name":"order_id","type":"string"}]}`

func TestWriterRegistersOnceAndNamesSubjects(t *testing.T) {
	ctx := context.Background()
	url := startRegistry(t)
	v1, v2 := mustParse(t, placedV1), mustParse(t, placedV2)
	for _, tc := range []struct {
		strategy schema.Strategy
		subject  string
	}{
		{schema.TopicRecordName, "orders-com.example.orders.OrderPlaced"},
		{schema.TopicName, "orders-value"},
		{schema.RecordName, "com.example.orders.OrderPlaced"},
	} {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			reg := newRegistry(t, url, schema.SubjectStrategy(tc.strategy))
			w, err := reg.Writer(ctx, "orders", v1)
			if err != nil {
				t.Fatal(err)
			}
			if w.Subject != tc.subject || w.ID <= 0 || w.Schema != v1 {
				t.Fatalf("writer = %+v, want subject %s", w, tc.subject)
			}
			again, err := reg.Writer(ctx, "orders", v1)
			if err != nil || again != w {
				t.Fatalf("second Writer = %+v, %v; want the cached %+v", again, err, w)
			}
			w2, err := reg.Writer(ctx, "orders", v2)
			if err != nil {
				t.Fatal(err)
			}
			if w2.ID == w.ID {
				t.Fatalf("v2 got v1's id %d", w.ID)
			}
			versions, err := reg.Versions(ctx, tc.subject)
			if err != nil || len(versions) != 2 {
				t.Fatalf("versions of %s = %d, %v; want 2", tc.subject, len(versions), err)
			}
		})
	}
}

func TestLookupOnly(t *testing.T) {
	ctx := context.Background()
	url := startRegistry(t)
	v1 := mustParse(t, placedV1)
	lookup := newRegistry(t, url, schema.RegisterMode(schema.LookupOnly))
	if _, err := lookup.Writer(ctx, "orders", v1); !errors.Is(err, schema.ErrNotRegistered) {
		t.Fatalf("want ErrNotRegistered before registration, got %v", err)
	}
	id, err := newRegistry(t, url).Register(ctx, "orders-com.example.orders.OrderPlaced", v1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := lookup.Writer(ctx, "orders", v1)
	if err != nil || w.ID != id {
		t.Fatalf("lookup = %+v, %v; want id %d", w, err, id)
	}
}

func TestUseLatest(t *testing.T) {
	ctx := context.Background()
	url := startRegistry(t)
	admin := newRegistry(t, url)
	v1, v2 := mustParse(t, placedV1), mustParse(t, placedV2)
	subject := "orders-com.example.orders.OrderPlaced"
	if _, err := admin.Register(ctx, subject, v1); err != nil {
		t.Fatal(err)
	}
	id2, err := admin.Register(ctx, subject, v2)
	if err != nil {
		t.Fatal(err)
	}
	latest := newRegistry(t, url, schema.RegisterMode(schema.UseLatest))
	w, err := latest.Writer(ctx, "orders", v1)
	if err != nil {
		t.Fatal(err)
	}
	if w.ID != id2 || w.Schema.Canonical() != v2.Canonical() {
		t.Fatalf("use-latest writer = id %d %s; want id %d and v2", w.ID, w.Schema, id2)
	}
	// Encoding follows the latest schema: a v2 reader sees the v1 value
	// with note at its default.
	c, err := codec.New(latest)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encoder(w.ID, w.Schema, v1)
	if err != nil {
		t.Fatal(err)
	}
	type placed struct {
		OrderID string `avro:"order_id"`
		Qty     int64  `avro:"qty"`
		Note    string `avro:"note"`
	}
	b, err := enc.AppendEncode(nil, &placed{OrderID: "o-1", Qty: 2})
	if err != nil {
		t.Fatal(err)
	}
	var got placed
	if err := c.Decode(ctx, b, nil, v2, &got); err != nil || got.OrderID != "o-1" || got.Qty != 2 {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	other := mustParse(t, cancelled)
	if _, err := latest.Writer(ctx, "x", other); !errors.Is(err, schema.ErrNotRegistered) {
		t.Fatalf("want ErrNotRegistered for a subject without versions, got %v", err)
	}
}

func TestUnionOfReferences(t *testing.T) {
	ctx := context.Background()
	url := startRegistry(t)
	placed, canc := mustParse(t, placedV1), mustParse(t, cancelled)
	union := mustParse(t, `["com.example.orders.OrderPlaced","com.example.orders.OrderCancelled"]`, placed, canc)
	reg := newRegistry(t, url, schema.SubjectStrategy(schema.TopicName))
	id, err := reg.Register(ctx, "orders-value", union)
	if err != nil {
		t.Fatal(err)
	}
	// The referenced schemas are registered under their full names.
	for _, s := range []string{"com.example.orders.OrderPlaced", "com.example.orders.OrderCancelled"} {
		if v, err := reg.Versions(ctx, s); err != nil || len(v) != 1 {
			t.Fatalf("subject %s: %d versions, %v", s, len(v), err)
		}
	}
	// A fresh client resolves the references when it reads the union by id.
	got, err := newRegistry(t, url).SchemaByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsUnion() || strings.Join(got.Branches(), ",") != "com.example.orders.OrderPlaced,com.example.orders.OrderCancelled" {
		t.Fatalf("union by id = %s, branches %v", got, got.Branches())
	}
	latest := newRegistry(t, url, schema.SubjectStrategy(schema.TopicName), schema.RegisterMode(schema.UseLatest))
	w, err := latest.Writer(ctx, "orders", canc)
	if err != nil || w.ID != id {
		t.Fatalf("use-latest on a union = %+v, %v; want id %d", w, err, id)
	}
	missing := mustParse(t, `{"type":"record","name":"OrderShipped","namespace":"com.example.orders","fields":[]}`)
	if _, err := latest.Writer(ctx, "orders", missing); !errors.Is(err, codec.ErrIncompatible) || !strings.Contains(err.Error(), "OrderShipped") {
		t.Fatalf("want ErrIncompatible naming the missing branch, got %v", err)
	}
}

// A registry that checks nothing still cannot take an incompatible change:
// the client-side check runs first and names the field.
func TestClientSideCheckBeforeRegister(t *testing.T) {
	ctx := context.Background()
	url := startRegistry(t)
	reg := newRegistry(t, url, schema.CompatibilityLevel(schema.Backward))
	if _, err := reg.Writer(ctx, "orders", mustParse(t, placedV1)); err != nil {
		t.Fatal(err)
	}
	bad := mustParse(t, `{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
		{"name":"order_id","type":"string"},{"name":"qty","type":"string"}]}`)
	_, err := reg.Writer(ctx, "orders", bad)
	var le *schema.LevelError
	if !errors.Is(err, codec.ErrIncompatible) || !errors.As(err, &le) || le.Field() != "qty" {
		t.Fatalf("want an incompatibility naming qty, got %v", err)
	}
	if v, _ := reg.Versions(ctx, "orders-com.example.orders.OrderPlaced"); len(v) != 1 {
		t.Fatalf("the incompatible schema was registered: %d versions", len(v))
	}
}

func TestAuth(t *testing.T) {
	ctx := context.Background()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:s3cret-basic"))
	for _, tc := range []struct {
		name   string
		expect string
		url    func(string) string
		good   []schema.Option
		bad    []schema.Option
	}{
		{"basic", basic, func(u string) string { return u },
			[]schema.Option{schema.BasicAuth("svc", "s3cret-basic")}, []schema.Option{schema.BasicAuth("svc", "wrong-pass")}},
		{"basic-in-url", basic, func(u string) string { return strings.Replace(u, "http://", "http://svc:s3cret-basic@", 1) },
			nil, []schema.Option{schema.BasicAuth("svc", "wrong-pass")}},
		{"bearer", "Bearer s3cret-token", func(u string) string { return u },
			[]schema.Option{schema.BearerToken("s3cret-token")}, []schema.Option{schema.BearerToken("wrong-token")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startRegistry(t, srfake.WithAuth(tc.expect))
			good := newRegistry(t, tc.url(url), tc.good...)
			if _, err := good.Writer(ctx, "orders", mustParse(t, placedV1)); err != nil {
				t.Fatalf("with the right credentials: %v", err)
			}
			_, err := newRegistry(t, url, tc.bad...).Writer(ctx, "orders", mustParse(t, placedV2))
			if !errors.Is(err, schema.ErrUnauthorized) {
				t.Fatalf("want ErrUnauthorized, got %v", err)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "wrong-") {
				t.Fatalf("error leaks a credential: %v", err)
			}
		})
	}
	if _, err := schema.New("http://u:p@h:1", schema.BearerToken("t")); err == nil {
		t.Fatal("want an error for basic auth and a bearer token together")
	}
	if _, err := schema.New("ftp://u:topsecret@h:1"); err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("want an error that hides the password, got %v", err)
	}
}

func TestTLS(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewUnstartedServer(srfake.NewRegistry().Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted client's handshake fails on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	reg := newRegistry(t, srv.URL, schema.TLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if _, err := reg.Writer(ctx, "orders", mustParse(t, placedV1)); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	untrusted := newRegistry(t, srv.URL, schema.Timeout(2*time.Second))
	if _, err := untrusted.Writer(ctx, "orders", mustParse(t, placedV1)); !errors.Is(err, schema.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable for an untrusted certificate, got %v", err)
	}
}

// Faults of a registry that misbehaves are served by real HTTP servers that
// answer the way a broken registry does.
func TestRegistryFaults(t *testing.T) {
	ctx := context.Background()
	serve := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	// A listener that accepts and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name string
		url  string
		want error
	}{
		{"timeout", "http://" + silent.Addr().String(), schema.ErrUnavailable},
		{"refused", refused, schema.ErrUnavailable},
		{"5xx", serve(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"error_code":50001,"message":"store error"}`, http.StatusInternalServerError)
		}), schema.ErrUnavailable},
		{"garbage", serve(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"id": not json`))
		}), schema.ErrBadResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Only the silent listener needs the short timeout; the others
			// answer, and a loaded machine must not turn them into timeouts.
			timeout := 10 * time.Second
			if tc.name == "timeout" {
				timeout = 300 * time.Millisecond
			}
			reg := newRegistry(t, tc.url, schema.Timeout(timeout))
			_, err := reg.SchemaByID(ctx, 1)
			if !errors.Is(err, tc.want) {
				t.Fatalf("SchemaByID: want %v, got %v", tc.want, err)
			}
			if n := strings.Count(err.Error(), tc.url); n != 1 {
				t.Errorf("SchemaByID's error names the registry's URL %d times, want once: %v", n, err)
			}
			if _, err := reg.Writer(ctx, "orders", mustParse(t, placedV1)); !errors.Is(err, tc.want) {
				t.Fatalf("Writer: want %v, got %v", tc.want, err)
			}
		})
	}
}

// TestNotFoundIsTheRegistrysOwn: only the registry's own JSON answer is a
// verdict that a schema or subject does not exist. A proxy in front of a
// real registry that is misrouted answers 404 with its own page, or
// something else that is not the registry's answer: that is an
// unavailable registry, for schema ids and for a producer's lookups alike.
func TestNotFoundIsTheRegistrysOwn(t *testing.T) {
	ctx := context.Background()
	target, err := url.Parse(startRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	direct := newRegistry(t, target.String())
	id, err := direct.Register(ctx, "orders-value", mustParse(t, placedV1))
	if err != nil {
		t.Fatal(err)
	}
	var answer atomic.Pointer[func(http.ResponseWriter)]
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := answer.Load(); a != nil {
			(*a)(w)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	misroute := func(status int, contentType, body string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter)
		want   error
	}{
		{"404 text", misroute(404, "text/plain; charset=utf-8", "404 page not found\n"), schema.ErrUnavailable},
		{"404 HTML", misroute(404, "text/html", "<html><body><h1>404 Not Found</h1><hr>nginx</body></html>"), schema.ErrUnavailable},
		{"404 JSON without a code", misroute(404, "application/json", `{"message":"no Route matched with those values"}`), schema.ErrUnavailable},
		{"404 JSON with another code", misroute(404, "application/json", `{"error_code":40499,"message":"not found"}`), schema.ErrUnavailable},
		{"404 empty", misroute(404, "text/plain", ""), schema.ErrUnavailable},
		{"400 text", misroute(400, "text/plain", "bad request"), schema.ErrUnavailable},
		{"422 HTML", misroute(422, "text/html", "<html>unprocessable</html>"), schema.ErrUnavailable},
		{"200 JSON without a schema", misroute(200, "application/json", `{}`), schema.ErrBadResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer.Store(&tc.answer)
			defer answer.Store(nil)
			// A new client each time: its caches are cold.
			reg := newRegistry(t, srv.URL)
			_, err := reg.SchemaByID(ctx, id)
			if !errors.Is(err, tc.want) || errors.Is(err, codec.ErrUnknownSchema) || errors.Is(err, codec.ErrInvalidSchema) {
				t.Fatalf("SchemaByID through the misrouted proxy: %v, want %v", err, tc.want)
			}
			if tc.want != schema.ErrUnavailable {
				return
			}
			if _, err := reg.Writer(ctx, "orders", mustParse(t, cancelled)); !errors.Is(err, schema.ErrUnavailable) {
				t.Fatalf("Writer through the misrouted proxy: %v, want ErrUnavailable", err)
			}
			lookup := newRegistry(t, srv.URL, schema.RegisterMode(schema.LookupOnly))
			if _, err := lookup.Writer(ctx, "orders", mustParse(t, placedV1)); !errors.Is(err, schema.ErrUnavailable) {
				t.Fatalf("lookup-only Writer through the misrouted proxy: %v, want ErrUnavailable", err)
			}
		})
	}
	// Forwarding again, the same client gets the schema, and the
	// registry's own 40403 is the verdict it is.
	reg := newRegistry(t, srv.URL)
	if _, err := reg.SchemaByID(ctx, id); err != nil {
		t.Fatalf("SchemaByID through the proxy: %v", err)
	}
	if _, err := reg.SchemaByID(ctx, id+1000); !errors.Is(err, codec.ErrUnknownSchema) {
		t.Fatalf("SchemaByID of an id the registry does not have: %v, want ErrUnknownSchema", err)
	}
	if _, err := newRegistry(t, srv.URL, schema.RegisterMode(schema.LookupOnly)).Writer(ctx, "orders", mustParse(t, cancelled)); !errors.Is(err, schema.ErrNotRegistered) {
		t.Fatalf("lookup-only Writer of a subject the registry does not have: %v, want ErrNotRegistered", err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	url := startRegistry(t)
	reg := newRegistry(t, url)
	if _, err := reg.Writer(ctx, "orders", nil); !errors.Is(err, codec.ErrInvalidSchema) {
		t.Fatalf("nil schema: %v", err)
	}
	if _, err := reg.SchemaByID(ctx, 4242); !errors.Is(err, codec.ErrUnknownSchema) || !strings.Contains(err.Error(), "4242") {
		t.Fatalf("unknown id: want ErrUnknownSchema naming 4242, got %v", err)
	}
	if _, _, err := reg.SchemaByGUID(ctx, "00000000-1111-4222-8333-444444444444"); !errors.Is(err, codec.ErrUnknownSchema) {
		t.Fatalf("unknown guid: %v", err)
	}
	if _, err := reg.Writer(ctx, "orders", mustParse(t, `"string"`)); err == nil || !strings.Contains(err.Error(), "named schema") {
		t.Fatalf("unnamed schema under TopicRecordName: %v", err)
	}
	for _, u := range []string{"", "  ,", "localhost:8081", "http://"} {
		if _, err := schema.New(u); err == nil {
			t.Fatalf("New(%q): want error", u)
		}
	}
	if _, err := schema.New(url, schema.Timeout(0)); err == nil || err.Error() != "schema: Timeout(0s): want a positive duration" {
		t.Fatalf("zero timeout: %v", err)
	}
	if _, err := schema.New(url, schema.CompatibilityLevel("SOMETIMES")); err == nil {
		t.Fatal("want error for an unknown level")
	}
	// A registry that holds a non-Avro schema under an id.
	fake := srfake.New()
	t.Cleanup(fake.Close)
	fake.SeedSchema("p-value", 1, 7, sr.Schema{Schema: `syntax = "proto3"; message M {}`, Type: sr.TypeProtobuf})
	if _, err := newRegistry(t, fake.URL()).SchemaByID(ctx, 7); !errors.Is(err, codec.ErrInvalidSchema) {
		t.Fatalf("protobuf schema: want ErrInvalidSchema, got %v", err)
	}
}
