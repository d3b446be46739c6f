package redact

import "testing"

func TestURL(t *testing.T) {
	for raw, want := range map[string]string{
		"http://ops:hunter2@registry:8081":         "http://***@registry:8081",
		"postgres://app:s3cret@db:5432/orders?x=1": "postgres://***@db:5432/orders?x=1",
		"https://user@host":                        "https://***@host",
		"http://registry:8081":                     "http://registry:8081",
		"/var/lib/orders.db":                       "/var/lib/orders.db",
		"me@example.com":                           "me@example.com",
	} {
		if got := URL(raw); got != want {
			t.Errorf("URL(%q) = %q, want %q", raw, got, want)
		}
	}
}
