package schema_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
)

func mustParse(t testing.TB, text string, refs ...*codec.Schema) *codec.Schema {
	t.Helper()
	s, err := codec.Parse(text, refs...)
	if err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	return s
}

// order returns version n of a record whose fields are given as JSON.
func order(t testing.TB, fields ...string) *codec.Schema {
	return mustParse(t, fmt.Sprintf(`{"type":"record","name":"Order","namespace":"com.example","fields":[%s]}`, strings.Join(fields, ",")))
}

func TestCheckLevel(t *testing.T) {
	const (
		id      = `{"name":"id","type":"string"}`
		noteDef = `{"name":"note","type":"string","default":""}`
		noteReq = `{"name":"note","type":"string"}`
		qtyReq  = `{"name":"qty","type":"int"}`
	)
	v1 := order(t, id)
	v2 := order(t, id, noteDef) // adds a field with a default: compatible both ways
	v3 := order(t, id, noteReq) // drops the default: readers of v3 cannot read v1
	addReq := order(t, id, noteDef, qtyReq)
	dropReq := order(t, noteDef) // removes id, which has no default

	tests := []struct {
		level    schema.Level
		next     *codec.Schema
		existing []*codec.Schema
		field    string // "" = compatible
	}{
		{schema.None, addReq, []*codec.Schema{v1}, ""},
		{schema.Backward, v2, []*codec.Schema{v1}, ""},
		{schema.Backward, addReq, []*codec.Schema{v2}, "qty"},
		{schema.Backward, dropReq, []*codec.Schema{v2}, ""},
		{schema.Forward, dropReq, []*codec.Schema{v2}, "id"},
		{schema.Forward, addReq, []*codec.Schema{v2}, ""},
		{schema.Full, addReq, []*codec.Schema{v2}, "qty"},
		{schema.Full, dropReq, []*codec.Schema{v2}, "id"},
		{schema.Full, v2, []*codec.Schema{v1}, ""},
		// v3 is backward compatible with v2 (the latest) but not with v1.
		{schema.Backward, v3, []*codec.Schema{v1, v2}, ""},
		{schema.BackwardTransitive, v3, []*codec.Schema{v1, v2}, "note"},
		{schema.ForwardTransitive, v1, []*codec.Schema{v3, v2}, "note"},
		{schema.Forward, v1, []*codec.Schema{v3, v2}, ""},
		{schema.ForwardTransitive, order(t, noteDef), []*codec.Schema{order(t, id, noteDef), v2}, "id"},
		{schema.FullTransitive, v3, []*codec.Schema{v1, v2}, "note"},
		{schema.FullTransitive, v2, []*codec.Schema{v1, v2}, ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.level)+"/"+tc.field, func(t *testing.T) {
			err := schema.CheckLevel(tc.level, tc.next, tc.existing)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want compatible, got %v", err)
				}
				return
			}
			if !errors.Is(err, codec.ErrIncompatible) {
				t.Fatalf("want ErrIncompatible, got %v", err)
			}
			var le *schema.LevelError
			if !errors.As(err, &le) || le.Field() != tc.field {
				t.Fatalf("want field %q named, got %v", tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), string(tc.level)) {
				t.Fatalf("error %q does not name the field and level", err)
			}
		})
	}
}

func TestParseLevelAndStrategy(t *testing.T) {
	for _, l := range schema.Levels {
		got, err := schema.ParseLevel(strings.ToLower(string(l)))
		if err != nil || got != l {
			t.Fatalf("ParseLevel(%s) = %v, %v", l, got, err)
		}
	}
	if _, err := schema.ParseLevel("SIDEWAYS"); err == nil || !strings.Contains(err.Error(), "SIDEWAYS") {
		t.Fatalf("want error naming the bad level, got %v", err)
	}
	for in, want := range map[string]schema.Strategy{
		"io.confluent.kafka.serializers.subject.TopicRecordNameStrategy": schema.TopicRecordName,
		"TopicNameStrategy": schema.TopicName,
		"record":            schema.RecordName,
	} {
		if got, err := schema.ParseStrategy(in); err != nil || got != want {
			t.Fatalf("ParseStrategy(%s) = %v, %v", in, got, err)
		}
	}
	if _, err := schema.ParseStrategy("nope"); err == nil {
		t.Fatal("want error for unknown strategy")
	}
}

func TestStrategySubject(t *testing.T) {
	tests := []struct {
		s     schema.Strategy
		topic string
		name  string
		want  string
	}{
		{schema.TopicRecordName, "orders", "com.example.OrderPlaced", "orders-com.example.OrderPlaced"},
		{schema.TopicName, "orders", "com.example.OrderPlaced", "orders-value"},
		{schema.TopicName, "orders", "", "orders-value"},
		{schema.RecordName, "orders", "com.example.OrderPlaced", "com.example.OrderPlaced"},
		{schema.TopicRecordName, "orders", "", ""},
		{schema.RecordName, "", "", ""},
		{schema.TopicName, "", "x.Y", ""},
	}
	for _, tc := range tests {
		got, err := tc.s.Subject(tc.topic, tc.name)
		if tc.want == "" {
			if err == nil {
				t.Fatalf("%v.Subject(%q, %q) = %q, want error", tc.s, tc.topic, tc.name, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Fatalf("%v.Subject(%q, %q) = %q, %v; want %q", tc.s, tc.topic, tc.name, got, err, tc.want)
		}
	}
}
