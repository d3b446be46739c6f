package main

import (
	"fmt"

	"github.com/hamba/avro/v2"
)

// The --avro-json mode's leaves: the Avro specification's JSON encoding,
// as Confluent's console tools read and print it. Bytes and fixed,
// decimals and durations too, are strings whose code points 0 to 255 are
// the bytes; logical types are their underlying numbers (a date the days
// since 1970-01-01, a timestamp-millis the milliseconds since the epoch).

// avroOut spells raw, the Avro value of a leaf of schema s.
func avroOut(_ avro.Schema, raw any) (any, error) {
	if b, ok := raw.([]byte); ok {
		return codePoints(b), nil
	}
	return numberOut(raw), nil
}

// avroIn reads v, a leaf of schema s, as its Avro value.
func avroIn(s avro.Schema, v any) (any, error) {
	switch deref(s).Type() {
	case avro.Bytes, avro.Fixed:
		str, ok := v.(string)
		if ok {
			if b, ok := codePointBytes(str); ok {
				return b, nil
			}
		}
		return nil, fmt.Errorf("want a string of code points 0 to 255 (Avro JSON bytes), got %s", jsonKind(v))
	}
	return primitiveIn(s, v)
}

func codePoints(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func codePointBytes(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 255 {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}
