package codec_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
)

// startRegistry starts a schema registry that speaks the Confluent REST API
// over real HTTP and enforces compatibility levels (the embedded stack of
// evbustest: srfake behind the evbus checks) and returns its URL. It is
// stopped when the test ends.
//
// This is the only place the tests start a registry.
func startRegistry(t testing.TB) string {
	t.Helper()
	return evbustest.Start(t).RegistryURL()
}

// env is what most tests need: a registry, the evbus client of it and a
// Codec that resolves writer schemas through that client.
type env struct {
	url   string
	reg   *schema.Registry
	codec *codec.Codec
	sr    *sr.Client // a second, independent client of the same registry
}

func newEnv(t testing.TB, opts ...schema.Option) *env {
	t.Helper()
	url := startRegistry(t)
	reg, err := schema.New(url, opts...)
	if err != nil {
		t.Fatalf("schema.New(%q): %v", url, err)
	}
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatalf("sr.NewClient: %v", err)
	}
	return &env{url: url, reg: reg, codec: newCodec(t, reg), sr: cl}
}

// register registers s for topic and returns what producers frame with.
func (e *env) register(t testing.TB, topic string, s *codec.Schema) schema.Writer {
	t.Helper()
	w, err := e.reg.Writer(context.Background(), topic, s)
	if err != nil {
		t.Fatalf("register %s on %s: %v", s.FullName(), topic, err)
	}
	if w.ID <= 0 {
		t.Fatalf("register %s on %s: id %d", s.FullName(), topic, w.ID)
	}
	return w
}

// encode frames v with s as registered for topic.
func (e *env) encode(t testing.TB, topic string, s *codec.Schema, v any) ([]byte, schema.Writer) {
	t.Helper()
	w := e.register(t, topic, s)
	enc, err := e.codec.Encoder(w.ID, w.Schema, s)
	if err != nil {
		t.Fatalf("Encoder(%d): %v", w.ID, err)
	}
	b, err := enc.AppendEncode(nil, v)
	if err != nil {
		t.Fatalf("AppendEncode(%T): %v", v, err)
	}
	return b, w
}

func mustParse(t testing.TB, text string, refs ...*codec.Schema) *codec.Schema {
	t.Helper()
	s, err := codec.Parse(text, refs...)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, text)
	}
	return s
}

// consumer returns a Codec with its own, empty registry client, as a
// consumer in another process has: every writer schema it decodes with is
// fetched from the registry over HTTP.
func (e *env) consumer(t testing.TB, opts ...codec.Option) *codec.Codec {
	t.Helper()
	reg, err := schema.New(e.url)
	if err != nil {
		t.Fatalf("schema.New(%q): %v", e.url, err)
	}
	return newCodec(t, reg, opts...)
}

// newCodec returns codec.New(r, opts...), failing t on its error.
func newCodec(t testing.TB, r codec.Resolver, opts ...codec.Option) *codec.Codec {
	t.Helper()
	c, err := codec.New(r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func assertDeepEqual[T any](t testing.TB, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
