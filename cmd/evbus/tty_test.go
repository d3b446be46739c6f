package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/wire"
)

// TestReplayProgressOnTerminal: the built binary on a terminal (util-linux
// script gives it one) asks before replaying, and shows a progress bar on
// stderr; TestDeadLetterReplay shows there is none otherwise. On the way,
// dlt show prints a value it cannot decode in hex, with the reason.
func TestReplayProgressOnTerminal(t *testing.T) {
	script, bin, stack, cl := terminalStack(t)
	produceDeadLetter(t, cl, 0)
	// Its value names a schema the registry does not have: show prints
	// the bytes in hex, with the reason.
	show := cli(t, stack, "", "dlt", "show", "orders.billing.dlt", "0", "0").ok(t, "dlt show")
	for _, want := range []string{`"value": null`, `"value_hex": "0000000001"`, `"decode_error": "`, `"dlt-error": "boom"`} {
		if !strings.Contains(show.out, want) {
			t.Errorf("dlt show of an undecodable record lacks %s:\n%s", want, show.out)
		}
	}

	// On a terminal replay asks first: "n" sends nothing, "y" replays.
	const question = "replay 1 of 1 selected dead letters of group billing through orders.billing.replay? [y/N]"
	declined, err := onTerminal(t, script, stack, bin+" dlt replay --group billing --all", "n\n")
	if err == nil || !strings.Contains(declined, question) || !strings.Contains(declined, "not confirmed: nothing was replayed") {
		t.Errorf("replay declined on a terminal: %v\n%s", err, declined)
	}
	if n := evbustest.Records(t, stack, wire.ReplayTopic("orders", "billing")); n != 0 {
		t.Fatalf("a declined replay sent %d records", n)
	}
	// stdout to a file: the question and the progress stay on the
	// terminal (stderr), the summary goes to the file.
	file := filepath.Join(t.TempDir(), "stdout.txt")
	out, err := onTerminal(t, script, stack, bin+" dlt replay --group billing --all >"+file, "y\n")
	if err != nil {
		t.Fatalf("evbus dlt replay on a terminal: %v\n%s", err, out)
	}
	asked := strings.Index(out, question)
	progress := strings.Index(out, "replaying 1/1 [##############################]")
	if asked < 0 || progress < asked {
		t.Errorf("on a terminal, want the question, then the progress bar:\n%s", out)
	}
	summary, err := os.ReadFile(file)
	if err != nil || !strings.HasPrefix(string(summary), "replayed 1 of 1 selected dead letters of group billing") || strings.Contains(string(summary), "replaying") {
		t.Errorf("stdout, not a terminal: %q (%v)", summary, err)
	}
	if n := evbustest.Records(t, stack, wire.ReplayTopic("orders", "billing")); n != 1 {
		t.Errorf("the replay topic holds %d records, want 1", n)
	}
}

// terminalStack returns util-linux script, the built binary, and a stack
// with topic orders and group billing's dead-letter and replay topics.
func terminalStack(t *testing.T) (script, bin string, stack *devstack.Stack, cl *kgo.Client) {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("this test runs the binary on a terminal through util-linux script (Debian's bsdutils): %v", err)
	}
	bin = buildEvbus(t)
	stack = evbustest.Start(t)
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	return script, bin, stack, cl
}

// buildEvbus builds the command into a temporary directory.
func buildEvbus(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "evbus")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// onTerminal runs command line under util-linux script, on a terminal
// that input is typed into, and returns what the terminal showed.
func onTerminal(t *testing.T, script string, stack *devstack.Stack, line, input string) (string, error) {
	t.Helper()
	cmd := exec.Command(script, "-qec", line, os.DevNull)
	cmd.Env = append(os.Environ(), "EVBUS_BROKERS="+strings.Join(stack.Brokers(), ","), "EVBUS_REGISTRY="+stack.RegistryURL())
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestListProgressOnTerminal: dlt ls and dlt groups of many dead letters
// show their progress on stderr when that is a terminal, and never on
// stdout, which gets the table and the summary alone
// (TestDeadLetterListing: none without a terminal).
func TestListProgressOnTerminal(t *testing.T) {
	script, bin, stack, cl := terminalStack(t)
	for i := range progressMin {
		produceDeadLetter(t, cl, i)
	}
	table := filepath.Join(t.TempDir(), "table.txt")
	shown, err := onTerminal(t, script, stack, bin+" dlt ls --limit 3 >"+table, "")
	if err != nil {
		t.Fatalf("dlt ls on a terminal: %v\n%s", err, shown)
	}
	if !strings.Contains(shown, "reading dead letters: 1000/1000 [##############################]") || !strings.Contains(shown, "\r\033[K") {
		t.Errorf("the terminal (stderr) shows no progress:\n%q", shown)
	}
	out, err := os.ReadFile(table)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(rows) != 5 || rows[4] != "1000 dead letters selected of 1000 read; showing the newest 3: --limit 0 shows all" || strings.Contains(string(out), "reading") {
		t.Errorf("stdout, not a terminal:\n%s", out)
	}

	// dlt groups shows the same progress, and the table alone on stdout.
	shown, err = onTerminal(t, script, stack, bin+" dlt groups --group billing >"+table, "")
	if err != nil {
		t.Fatalf("dlt groups on a terminal: %v\n%s", err, shown)
	}
	if !strings.Contains(shown, "reading dead letters: 1000/1000 [##############################]") || !strings.Contains(shown, "\r\033[K") {
		t.Errorf("dlt groups: the terminal (stderr) shows no progress:\n%q", shown)
	}
	if out, err = os.ReadFile(table); err != nil {
		t.Fatal(err)
	}
	rows = strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(rows) != 3 || rows[2] != "1000 dead letters of group billing by 1 fingerprints" || strings.Contains(string(out), "reading") {
		t.Errorf("dlt groups, stdout, not a terminal:\n%s", out)
	}

	// The actions read through a Manager, with the same progress.
	shown, err = onTerminal(t, script, stack, bin+" dlt park --group billing --all --reason r --dry-run >"+table, "")
	if err != nil {
		t.Fatalf("dlt park --dry-run on a terminal: %v\n%s", err, shown)
	}
	if !strings.Contains(shown, "reading dead letters: 1000/1000 [##############################]") || !strings.Contains(shown, "\r\033[K") {
		t.Errorf("dlt park: the terminal (stderr) shows no progress:\n%q", shown)
	}
	if out, err = os.ReadFile(table); err != nil || !strings.HasSuffix(string(out), "dry run: park 1000 of 1000 selected dead letters of group billing\n") || strings.Contains(string(out), "reading") {
		t.Errorf("dlt park --dry-run, stdout, not a terminal:\n%s", out)
	}
}
