package codec_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evbus/evbus/codec"
)

// Regression tests for hostile and subtle inputs that the Avro engine
// alone gets wrong; the codec's validation pass and compatibility walk
// handle them.

// returnsWithin runs f and fails the test if it has not returned after d:
// the bug it guards against is an unbounded loop, not a slow one.
func returnsWithin(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not return within %v (the goroutine keeps spinning)", d)
	}
}

// A writer field the reader dropped is skipped; the engine's skip loop
// runs a block's count times even after the body has ended (hamba/avro
// codec_skip.go does not stop on r.Error), so without the validation pass a
// 12-byte record with a count of 1<<40 hangs the consumer.
func TestHostileCountInSkippedCollection(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	v1 := mustParse(t, `{"type":"record","name":"Tagged","namespace":"com.example.k","fields":[
	  {"name":"id","type":"string"},
	  {"name":"tags","type":{"type":"array","items":"string"}},
	  {"name":"attrs","type":{"type":"map","values":"string"}}
	]}`)
	v2 := mustParse(t, `{"type":"record","name":"Tagged","namespace":"com.example.k","fields":[
	  {"name":"id","type":"string"}
	]}`)
	id := e.register(t, "tagged", v1).ID
	type Tagged struct {
		ID string `avro:"id"`
	}
	for name, body := range map[string][]byte{
		"array": binary.AppendVarint([]byte{0x00}, 1<<40),
		"map":   binary.AppendVarint([]byte{0x00, 0x00}, 1<<40),
	} {
		t.Run(name, func(t *testing.T) {
			value := append(codec.AppendPrefix(nil, id), body...)
			var err error
			returnsWithin(t, 10*time.Second, func() { err = e.consumer(t).Decode(ctx, value, nil, v2, new(Tagged)) })
			if !errors.Is(err, codec.ErrUndecodable) {
				t.Fatalf("Decode: %v, want ErrUndecodable", err)
			}
		})
	}

	// The inputs the fuzzer found.
	env := newFuzzEnv(t)
	files, err := filepath.Glob("testdata/fuzz/FuzzDecode/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no known-hang inputs: %v", err)
	}
	for _, file := range files {
		value, header, mode := readFuzzInput(t, file)
		t.Run(filepath.Base(file), func(t *testing.T) {
			returnsWithin(t, 10*time.Second, func() { env.decode(t, value, header, mode) })
		})
	}
}

// A length prefix within MaxBytesLen but beyond the end of the body: the
// engine allocates it before finding the body too short (hamba/avro
// reader.go readBytes), so without the validation pass a 6-byte value makes
// the consumer allocate 7 MiB, and an array count within MaxArrayLen count
// times the item's Go size.
func TestLengthBeyondBodyAllocatesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	strS := mustParse(t, `{"type":"record","name":"S","namespace":"com.example.k","fields":[{"name":"s","type":"string"}]}`)
	arrS := mustParse(t, `{"type":"record","name":"A","namespace":"com.example.k","fields":[{"name":"a","type":{"type":"array","items":`+allFeatures+`}}]}`)
	type S struct {
		S string `avro:"s"`
	}
	type A struct {
		A []OrderPlaced `avro:"a"`
	}
	c := e.consumer(t)
	for _, tc := range []struct {
		name   string
		s      *codec.Schema
		length int64
		target func() any
	}{
		{"string of 7 MiB", strS, 7 << 20, func() any { return new(S) }},
		{"array of 99999 records", arrS, 99_999, func() any { return new(A) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value := binary.AppendVarint(codec.AppendPrefix(nil, e.register(t, "k", tc.s).ID), tc.length)
			if err := c.Decode(ctx, value, nil, tc.s, tc.target()); !errors.Is(err, codec.ErrUndecodable) {
				t.Fatalf("Decode: %v, want ErrUndecodable", err)
			}
			if n := allocBytes(5, func() { _ = c.Decode(ctx, value, nil, tc.s, tc.target()) }); n > 1<<20 {
				t.Fatalf("a %d-byte value allocated %d bytes to fail", len(value), n)
			}
		})
	}
}

// readFuzzInput reads a "go test fuzz v1" file of FuzzDecode's arguments.
func readFuzzInput(t *testing.T, file string) (value, header []byte, mode byte) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a FuzzDecode input", file)
	}
	arg := func(line, prefix string) string {
		if !strings.HasPrefix(line, prefix+"(") || !strings.HasSuffix(line, ")") {
			t.Fatalf("%s: %q is not %s(...)", file, line, prefix)
		}
		return line[len(prefix)+1 : len(line)-1]
	}
	unquote := func(s string) []byte {
		u, err := strconv.Unquote(s)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return []byte(u)
	}
	value, header = unquote(arg(lines[1], "[]byte")), unquote(arg(lines[2], "[]byte"))
	m := arg(lines[3], "byte")
	if r, err := strconv.Unquote(m); err == nil && len(r) == 1 {
		return value, header, r[0]
	}
	n, err := strconv.ParseUint(m, 0, 8)
	if err != nil {
		t.Fatalf("%s: byte %q: %v", file, m, err)
	}
	return value, header, byte(n)
}

// A reader whose decimal has another scale than the writer's reads every
// amount scaled by a power of ten: 19.99 written with scale 2 reads as
// 1.999 with scale 3. The Avro specification says two decimals match for
// schema resolution only if their scales and precisions match; the engine's
// check ignores logical types, so Compatible adds that rule.
func TestDecimalScaleChangeIsIncompatible(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	price := func(scale string) string {
		return `{"type":"record","name":"Price","namespace":"com.example.k","fields":[
		  {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":` + scale + `}}]}`
	}
	w, r := mustParse(t, price("2")), mustParse(t, price("3"))
	var ie *codec.IncompatibleError
	if err := codec.Compatible(r, w); !errors.As(err, &ie) || ie.Path != "amount" {
		t.Errorf("Compatible(scale 3, scale 2): %v, want an *IncompatibleError at amount", err)
	}
	type Price struct {
		Amount *big.Rat `avro:"amount"`
	}
	b, _ := e.encode(t, "prices", w, &Price{Amount: big.NewRat(1999, 100)})
	var out Price
	err := e.consumer(t).Decode(ctx, b, nil, r, &out)
	if err == nil {
		t.Fatalf("Decode with scale 3 of an amount written with scale 2 read %s, want ErrIncompatible", out.Amount.FloatString(3))
	}
	if !errors.Is(err, codec.ErrIncompatible) {
		t.Fatalf("Decode: %v, want ErrIncompatible", err)
	}
}
