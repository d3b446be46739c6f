package schema_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
)

// The Go shapes of the two versions of each change: decoding into a map
// keeps the test about the bytes and not about struct tags.
type evolution struct {
	name   string
	v1, v2 string         // field lists of the two versions
	value1 map[string]any // a value of v1
	value2 map[string]any // a value of v2
	// which directions hold: backward = v2 reads v1, forward = v1 reads v2
	backward, forward bool
	field             string // the field an incompatibility names
	read2from1        map[string]any
	read1from2        map[string]any
}

var evolutions = []evolution{
	{
		name:   "add field with default",
		v1:     `{"name":"id","type":"string"}`,
		v2:     `{"name":"id","type":"string"},{"name":"note","type":"string","default":"none"}`,
		value1: map[string]any{"id": "a"}, value2: map[string]any{"id": "b", "note": "hi"},
		backward: true, forward: true,
		read2from1: map[string]any{"id": "a", "note": "none"},
		read1from2: map[string]any{"id": "b"},
	},
	{
		name:   "remove field with default",
		v1:     `{"name":"id","type":"string"},{"name":"note","type":"string","default":"none"}`,
		v2:     `{"name":"id","type":"string"}`,
		value1: map[string]any{"id": "a", "note": "hi"}, value2: map[string]any{"id": "b"},
		backward: true, forward: true,
		read2from1: map[string]any{"id": "a"},
		read1from2: map[string]any{"id": "b", "note": "none"},
	},
	{
		name:   "rename through alias",
		v1:     `{"name":"id","type":"string"},{"name":"qty","type":"int"}`,
		v2:     `{"name":"id","type":"string"},{"name":"quantity","type":"int","aliases":["qty"]}`,
		value1: map[string]any{"id": "a", "qty": 3}, value2: map[string]any{"id": "b", "quantity": 4},
		backward: true, forward: false, field: "qty",
		read2from1: map[string]any{"id": "a", "quantity": 3},
	},
	{
		name:   "int to long promotion",
		v1:     `{"name":"id","type":"string"},{"name":"qty","type":"int"}`,
		v2:     `{"name":"id","type":"string"},{"name":"qty","type":"long"}`,
		value1: map[string]any{"id": "a", "qty": 3}, value2: map[string]any{"id": "b", "qty": int64(1 << 40)},
		backward: true, forward: false, field: "qty",
		read2from1: map[string]any{"id": "a", "qty": int64(3)},
	},
	{
		name:   "enum symbol added",
		v1:     `{"name":"id","type":"string"},{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}}`,
		v2:     `{"name":"id","type":"string"},{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}}`,
		value1: map[string]any{"id": "a", "status": "PAID"}, value2: map[string]any{"id": "b", "status": "SHIPPED"},
		backward: true, forward: false, field: "status",
		read2from1: map[string]any{"id": "a", "status": "PAID"},
	},
	{
		name:   "add field without default",
		v1:     `{"name":"id","type":"string"}`,
		v2:     `{"name":"id","type":"string"},{"name":"qty","type":"int"}`,
		value1: map[string]any{"id": "a"}, value2: map[string]any{"id": "b", "qty": 1},
		backward: false, forward: true, field: "qty",
		read1from2: map[string]any{"id": "b"},
	},
	{
		name:   "change a field's type",
		v1:     `{"name":"id","type":"string"},{"name":"qty","type":"int"}`,
		v2:     `{"name":"id","type":"string"},{"name":"qty","type":"string"}`,
		value1: map[string]any{"id": "a", "qty": 1}, value2: map[string]any{"id": "b", "qty": "one"},
		backward: false, forward: false, field: "qty",
	},
}

// TestEvolutionMatrix runs each schema change through the client-side
// check and the embedded registry at BACKWARD, FORWARD and FULL, and decodes
// across versions in every direction the rules allow.
func TestEvolutionMatrix(t *testing.T) {
	ctx := context.Background()
	stack := evbustest.Start(t)
	admin, err := sr.NewClient(sr.URLs(stack.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evolutions {
		t.Run(ev.name, func(t *testing.T) {
			v1, v2 := order(t, ev.v1), order(t, ev.v2)
			for _, level := range []schema.Level{schema.Backward, schema.Forward, schema.Full} {
				allowed := map[schema.Level]bool{
					schema.Backward: ev.backward,
					schema.Forward:  ev.forward,
					schema.Full:     ev.backward && ev.forward,
				}[level]
				subject := strings.ReplaceAll(ev.name, " ", "-") + "-" + string(level)
				var sl sr.CompatibilityLevel
				if err := sl.UnmarshalText([]byte(level)); err != nil {
					t.Fatal(err)
				}

				// The client-side check, against a subject the registry
				// itself does not check (NONE), with the level as an option.
				none := subject + "-client"
				setLevel(ctx, t, admin, none, sr.CompatNone)
				client := newRegistry(t, stack.RegistryURL(), schema.CompatibilityLevel(level))
				if _, err := client.Register(ctx, none, v1); err != nil {
					t.Fatal(err)
				}
				_, err := client.Register(ctx, none, v2)
				checkVerdict(t, "client-side "+string(level), err, allowed, ev.field)

				// The embedded registry, reached without the client-side check.
				setLevel(ctx, t, admin, subject, sl)
				if _, err := admin.RegisterSchema(ctx, subject, sr.Schema{Schema: v1.String()}, -1, -1); err != nil {
					t.Fatal(err)
				}
				_, err = admin.RegisterSchema(ctx, subject, sr.Schema{Schema: v2.String()}, -1, -1)
				checkVerdict(t, "registry "+string(level), err, allowed, ev.field)
			}

			// Decoding across versions, both directions where allowed.
			reg := newRegistry(t, stack.RegistryURL(), schema.CompatibilityLevel(schema.None))
			topic := "evolution-" + string(rune('a'+i))
			// Both versions live under one subject, even where the levels
			// above refuse the pair: this part is about the bytes.
			setLevel(ctx, t, admin, topic+"-com.example.Order", sr.CompatNone)
			c, err := codec.New(newRegistry(t, stack.RegistryURL()))
			if err != nil {
				t.Fatal(err)
			}
			frame := func(s *codec.Schema, v map[string]any) []byte {
				w, err := reg.Writer(ctx, topic, s)
				if err != nil {
					t.Fatal(err)
				}
				enc, err := c.Encoder(w.ID, w.Schema, s)
				if err != nil {
					t.Fatal(err)
				}
				b, err := enc.AppendEncode(nil, v)
				if err != nil {
					t.Fatalf("encode %v: %v", v, err)
				}
				return b
			}
			b1, b2 := frame(v1, ev.value1), frame(v2, ev.value2)
			readAs := func(b []byte, reader *codec.Schema, ok bool, want map[string]any, dir string) {
				var got map[string]any
				err := c.Decode(ctx, b, nil, reader, &got)
				if !ok {
					if !errors.Is(err, codec.ErrIncompatible) {
						t.Fatalf("%s: want ErrIncompatible, got %v (%v)", dir, err, got)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", dir, err)
				}
				if !sameMap(got, want) {
					t.Fatalf("%s: got %v, want %v", dir, got, want)
				}
			}
			readAs(b1, v2, ev.backward, ev.read2from1, "v2 reads v1")
			readAs(b2, v1, ev.forward, ev.read1from2, "v1 reads v2")
		})
	}
}

func setLevel(ctx context.Context, t *testing.T, admin *sr.Client, subject string, level sr.CompatibilityLevel) {
	t.Helper()
	if res := admin.SetCompatibility(ctx, sr.SetCompatibility{Level: level}, subject); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
}

func checkVerdict(t *testing.T, who string, err error, allowed bool, field string) {
	t.Helper()
	if allowed {
		if err != nil {
			t.Fatalf("%s: want accepted, got %v", who, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("%s: want rejected, was accepted", who)
	}
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("%s: error does not name field %q: %v", who, field, err)
	}
}

func sameMap(got, want map[string]any) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g := got[k]
		switch w := w.(type) {
		case int:
			if gi, ok := g.(int); !ok || gi != w {
				return false
			}
		default:
			if g != w {
				return false
			}
		}
	}
	return true
}
