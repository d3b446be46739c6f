package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
)

// TestReplayProgressOnTerminal: the built binary, its stdout a terminal
// (util-linux script gives it one), shows a progress bar before the
// summary; TestDeadLetterReplay shows there is none otherwise. On the way,
// dlt show prints a value it cannot decode in hex, with the reason.
func TestReplayProgressOnTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("this test runs the binary on a terminal through util-linux script (Debian's bsdutils): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "evbus")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stack := evbustest.Start(t)
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	produceDeadLetter(t, cl, 0)
	// Its value names a schema the registry does not have: show prints
	// the bytes in hex, with the reason.
	show := cli(t, stack, "", "dlt", "show", "orders.billing.dlt", "0", "0").ok(t, "dlt show")
	for _, want := range []string{`"value": null`, `"value_hex": "0000000001"`, `"decode_error": "`, `"dlt-error": "boom"`} {
		if !strings.Contains(show.out, want) {
			t.Errorf("dlt show of an undecodable record lacks %s:\n%s", want, show.out)
		}
	}

	cmd := exec.Command(script, "-qec", bin+" dlt replay --group billing", os.DevNull)
	cmd.Env = append(os.Environ(), "EVBUS_BROKERS="+strings.Join(stack.Brokers(), ","), "EVBUS_REGISTRY="+stack.RegistryURL())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("evbus dlt replay on a terminal: %v\n%s", err, out)
	}
	progress := strings.Index(string(out), "replaying 1/1 [##############################]")
	summary := strings.Index(string(out), "replayed 1 of 1 selected records to group billing")
	if progress < 0 || summary < progress {
		t.Errorf("on a terminal, want the progress bar, then the summary:\n%s", out)
	}
	if n := evbustest.Records(t, stack, consumer.ReplayTopicName("orders", "billing")); n != 1 {
		t.Errorf("the replay topic holds %d records, want 1", n)
	}
}
