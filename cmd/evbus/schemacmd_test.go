package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evbus/evbus/evbustest"
)

// TestSchemaCheckNothingRegistered: a subject nothing is registered under
// (a typo in --topic) fails the check, naming the subject, unless
// --allow-new; the registered subject next to it still passes.
func TestSchemaCheckNothingRegistered(t *testing.T) {
	stack := evbustest.Start(t)
	avsc := invoiceSchemaFile(t)
	cli(t, stack, "", "schema", "register", "--topic", "invoices", avsc).ok(t, "register")
	cli(t, stack, "", "schema", "check", "--topic", "invoices", avsc).ok(t, "check of the registered subject")

	typo := cli(t, stack, "", "schema", "check", "--topic", "invoice", avsc)
	if typo.code != 1 || !strings.Contains(typo.out, "not registered") || !strings.Contains(typo.out, "invoice-com.example.billing.Invoiced") ||
		!strings.Contains(typo.err, "1 of 1 schemas have nothing registered under their subject") || !strings.Contains(typo.err, "--allow-new") ||
		strings.Contains(typo.out, "compatible") || strings.Count(typo.err, "\n") != 1 {
		t.Errorf("check of a subject nothing is registered under: exit %d\nstdout: %s\nstderr: %s", typo.code, typo.out, typo.err)
	}
	allowed := cli(t, stack, "", "schema", "check", "--topic", "invoice", "--allow-new", avsc).ok(t, "check --allow-new")
	if !strings.HasPrefix(allowed.out, "new ") || !strings.Contains(allowed.out, "invoice-com.example.billing.Invoiced") {
		t.Errorf("check --allow-new printed %q", allowed.out)
	}
	// register of a new subject needs no flag: registering it is the point.
	if r := cli(t, stack, "", "schema", "register", "--topic", "invoice", "--allow-new", avsc); r.code != 2 || !strings.Contains(r.err, "-allow-new") {
		t.Errorf("register --allow-new: exit %d, stderr %q; want it refused as a flag of check only", r.code, r.err)
	}
}

// invoiceSchemaFile writes invoiceV1 to a file and returns its path.
func invoiceSchemaFile(t *testing.T) string {
	t.Helper()
	avsc := filepath.Join(t.TempDir(), "invoiced.avsc")
	if err := os.WriteFile(avsc, []byte(invoiceV1), 0o644); err != nil {
		t.Fatal(err)
	}
	return avsc
}
