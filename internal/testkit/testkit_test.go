package testkit_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/internal/testkit"
)

// failures is a testing.TB that records what fails it.
type failures struct {
	testing.TB
	msgs []string
}

func (f *failures) Helper() {}

func (f *failures) Errorf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *failures) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

// run calls fn with f on a goroutine of its own, as the testing package
// runs a test, so that Fatalf ends only fn.
func (f *failures) run(fn func(testing.TB)) {
	var wg sync.WaitGroup
	wg.Go(func() { fn(f) })
	wg.Wait()
}

func TestHeader(t *testing.T) {
	hs := []kgo.RecordHeader{{Key: "ce_id", Value: []byte("1")}, {Key: "empty"}, {Key: "ce_id", Value: []byte("2")}}
	for key, want := range map[string]struct {
		v  string
		ok bool
	}{"ce_id": {"1", true}, "empty": {"", true}, "none": {"", false}} {
		if v, ok := testkit.Header(hs, key); v != want.v || ok != want.ok {
			t.Errorf("Header(%s) = %q, %v; want %q, %v", key, v, ok, want.v, want.ok)
		}
	}
	f := &failures{TB: t}
	f.run(func(tb testing.TB) { testkit.Headers(tb, hs) })
	if len(f.msgs) != 1 || !strings.Contains(f.msgs[0], "ce_id appears twice") {
		t.Errorf("Headers with a repeated key: %q", f.msgs)
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	testkit.WaitFor(t, "three polls", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("WaitFor returned after %d polls, want 3", n)
	}
}

func TestBuffer(t *testing.T) {
	var b testkit.Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { fmt.Fprint(&b, "x") })
	}
	wg.Wait()
	if b.String() != "xxxx" {
		t.Fatalf("Buffer holds %q", b.String())
	}
}
