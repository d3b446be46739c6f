package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/evbus/evbus/evbustest"
)

// TestUnusedFlagsRefused: a command refuses the connection flags of what
// it does not talk to, naming the flag; their environment variables, set
// for the other commands, are ignored.
func TestUnusedFlagsRefused(t *testing.T) {
	stack := evbustest.Start(t)
	avsc := invoiceSchemaFile(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"schema", "check", "--topic", "invoices", "--brokers", "nonsense:1", avsc}, "--brokers is not a flag of this command: it talks to the schema registry only"},
		{[]string{"schema", "register", "--topic", "invoices", "--sasl-mechanism", "plain", avsc}, "--sasl-mechanism is not a flag of this command: it talks to the schema registry only"},
		{[]string{"schema", "check", "--topic", "invoices", "--tls", avsc}, "--tls is not a flag of this command"},
		{[]string{"dlt", "ls", "--registry", "http://127.0.0.1:1"}, "--registry is not a flag of this command: it talks to Kafka only"},
		{[]string{"dlt", "replay", "--group", "billing", "--registry-token", "t0ken"}, "--registry-token is not a flag of this command: it talks to Kafka only"},
		{[]string{"outbox", "status", "--db", "x.db", "--brokers", "b:1"}, "--brokers is not a flag of this command: it connects to neither Kafka nor a schema registry"},
		{[]string{"tail", "orders", "--bogus"}, "unknown flag --bogus"},
	} {
		r := cli(t, stack, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.err, tc.want) || strings.Count(r.err, "\n") != 1 || strings.Contains(r.err, "t0ken") {
			t.Errorf("evbus %s: exit %d, stderr %q; want exit 2 and one line with %q", strings.Join(tc.args, " "), r.code, r.err, tc.want)
		}
	}
	// EVBUS_BROKERS and the SASL variables, set for the Kafka commands,
	// do not bother schema check.
	env := map[string]string{"EVBUS_REGISTRY": stack.RegistryURL(), "EVBUS_BROKERS": "nonsense:1", "EVBUS_SASL_MECHANISM": "gssapi"}
	cliEnv(t, env, "", "schema", "register", "--topic", "invoices", avsc).ok(t, "schema register with Kafka's variables set")
	// --help lists only the flags a command takes.
	help := cli(t, stack, "", "schema", "check", "--help").ok(t, "schema check --help")
	if strings.Contains(help.out, "-brokers") || strings.Contains(help.out, "EVBUS_SASL") || !strings.Contains(help.out, "-registry-token") || !strings.Contains(help.out, "-tls-ca") {
		t.Errorf("schema check --help:\n%s", help.out)
	}
}

// TestRegistryNotHTTP: a --registry that takes connections but never
// answers HTTP (the embedded Kafka broker's port, a silent listener) fails
// in registryAnswerWait, not in --timeout, with one line that names the
// URL once and no request path.
func TestRegistryNotHTTP(t *testing.T) {
	stack := evbustest.Start(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		var held []net.Conn // kept open, never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	avsc := invoiceSchemaFile(t)
	const timeout = 30 * time.Second // the flag's wait, far above registryAnswerWait
	for name, addr := range map[string]string{"kafka port": stack.Brokers()[0], "silent listener": silent.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			url := "http://" + addr
			env := map[string]string{"EVBUS_REGISTRY": url, "EVBUS_TIMEOUT": timeout.String()}
			start := time.Now()
			r := cliEnv(t, env, "", "schema", "check", "--topic", "invoices", avsc)
			took := time.Since(start)
			if r.code != 1 || strings.Count(r.err, "\n") != 1 || strings.Count(r.err, addr) != 1 ||
				!strings.Contains(r.err, "cannot use the schema registry at "+url+" (it took the connection but sent no HTTP answer within 2s") ||
				strings.Contains(r.err, "/schemas") || strings.Contains(r.err, "/subjects") {
				t.Errorf("exit %d, stderr %q", r.code, r.err)
			}
			if took >= timeout {
				t.Errorf("took %v: waited out --timeout %v", took, timeout)
			}
		})
	}
	// Refused connections name the cause once, too.
	r := cliEnv(t, map[string]string{"EVBUS_REGISTRY": "http://127.0.0.1:1"}, "", "schema", "check", "--topic", "invoices", avsc)
	if r.code != 1 || strings.Count(r.err, "127.0.0.1:1") != 1 || !strings.Contains(r.err, "connection refused") {
		t.Errorf("refused: exit %d, stderr %q", r.code, r.err)
	}
}
