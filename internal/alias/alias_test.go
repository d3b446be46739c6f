package alias

import "testing"

func TestString(t *testing.T) {
	b := []byte("ce_id value")
	if s := String(b); s != "ce_id value" {
		t.Fatalf("String = %q", s)
	}
	if s := String(nil); s != "" {
		t.Fatalf("String(nil) = %q", s)
	}
}

var sink string

// BenchmarkString: aliasing against copying a header value of ~36 bytes
// (a ce_id). The consumer's share of it is in BenchmarkPipeline.
func BenchmarkString(b *testing.B) {
	v := []byte("0190b7a2-8c1e-7a3b-9f00-000000000001")
	b.Run("alias", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = String(v)
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = string(v)
		}
	})
}
