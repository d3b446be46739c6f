package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
	"github.com/evbus/evbus/wire"
)

const consoleOperatorToken = "cli-op-5d1e0c8a9b7f4e3d2c1b"

// TestConsoleRefuses: no credential, a non-loopback address without TLS,
// half a TLS pair: the console does not start, and says what to do.
func TestConsoleRefuses(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		code int
		want []string
	}{
		{nil, []string{"console"}, 1, []string{"no credential", "EVBUS_CONSOLE_OPERATOR_TOKEN", "EVBUS_CONSOLE_VIEWER_TOKEN", "--tokens-file"}},
		{map[string]string{"EVBUS_CONSOLE_OPERATOR_TOKEN": consoleOperatorToken}, []string{"console", "--listen", "0.0.0.0:0"}, 2, []string{"not a loopback address", "--listen-tls-cert", "--insecure-listen"}},
		{map[string]string{"EVBUS_CONSOLE_OPERATOR_TOKEN": consoleOperatorToken}, []string{"console", "--listen", ":8089"}, 2, []string{"not a loopback address"}},
		{map[string]string{"EVBUS_CONSOLE_OPERATOR_TOKEN": consoleOperatorToken}, []string{"console", "--listen", "192.0.2.1:8089"}, 2, []string{"not a loopback address"}},
		{map[string]string{"EVBUS_CONSOLE_OPERATOR_TOKEN": consoleOperatorToken}, []string{"console", "--listen-tls-cert", "c.pem"}, 2, []string{"go together"}},
		{map[string]string{"EVBUS_CONSOLE_OPERATOR_TOKEN": consoleOperatorToken}, []string{"console", "--listen", "nohost"}, 2, []string{"want host:port"}},
		{map[string]string{"EVBUS_CONSOLE_OPERATOR_TOKEN": consoleOperatorToken}, []string{"console", "--tokens-file", "/nonexistent/tokens"}, 1, []string{"tokens file"}},
	} {
		r := cliEnv(t, c.env, "", c.args...)
		for _, w := range c.want {
			if r.code != c.code || !strings.Contains(r.err, w) {
				t.Errorf("evbus %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), r.code, r.err, c.code, w)
			}
		}
		if strings.Contains(r.out+r.err, consoleOperatorToken) {
			t.Errorf("evbus %s printed the token", strings.Join(c.args, " "))
		}
	}
}

// TestConsoleServes: evbus console serves the console on the address it
// prints: 401 anonymous, the outbox of --db to a bearer token; the token
// appears nowhere in its output; it stops when its context ends.
func TestConsoleServes(t *testing.T) {
	stack := evbustest.Start(t)
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	enc, err := bus.NewEncoder(t.Context(), reg, bus.Source("/orders"), bus.Types(outboxEventType))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "orders.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Pool().Close()
	ob, err := outbox.New(db, enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := sqldb.InTx(t.Context(), db, func(tx *sql.Tx) error { return ob.Enqueue(t.Context(), tx, outboxEvent{OrderID: id}) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, listen := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		args := []string{"console", "--listen", listen, "--db", "sqlite:" + path, "--brokers", strings.Join(stack.Brokers(), ",")}
		if listen == "0.0.0.0:0" {
			args = append(args, "--insecure-listen")
		}
		out := runConsole(t, args, map[string]string{"EVBUS_CONSOLE_OPERATOR_TOKEN": consoleOperatorToken, "EVBUS_REGISTRY": stack.RegistryURL()}, func(base string) {
			get := func(p, token string) (int, string) {
				req, _ := http.NewRequestWithContext(t.Context(), "GET", base+p, nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			if code, _ := get("/outbox", ""); code != http.StatusUnauthorized {
				t.Errorf("%s: anonymous GET /outbox: %d", listen, code)
			}
			if code, _ := get("/outbox", "wrong-"+consoleOperatorToken); code != http.StatusUnauthorized {
				t.Errorf("%s: wrong token GET /outbox: %d", listen, code)
			}
			code, body := get("/outbox", consoleOperatorToken)
			if code != 200 || !strings.Contains(body, `<dd id="backlog">2 unpublished</dd>`) {
				t.Errorf("%s: GET /outbox: %d\n%s", listen, code, body)
			}
		})
		if strings.Contains(out, consoleOperatorToken) {
			t.Errorf("the console's output contains the token:\n%s", out)
		}
	}
}

// runConsole runs evbus with args until fn, given the base URL it
// printed, returns; then stops it and returns what it wrote.
func runConsole(t *testing.T, args []string, env map[string]string, fn func(base string)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	pr, pw := io.Pipe()
	var (
		mu  sync.Mutex
		all strings.Builder
	)
	base := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			all.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if rest, ok := strings.CutPrefix(sc.Text(), "evbus console: serving "); ok {
				u, _, _ := strings.Cut(rest, " ")
				base <- strings.Replace(strings.TrimSuffix(u, "/"), "0.0.0.0", "127.0.0.1", 1)
			}
		}
	}()
	code := make(chan int, 1)
	serveCtx, stop := context.WithCancel(ctx)
	var out strings.Builder
	go func() {
		code <- run(serveCtx, args, strings.NewReader(""), &out, pw, func(k string) string { return env[k] })
		pw.Close()
	}()
	select {
	case u := <-base:
		fn(strings.Replace(u, "[::]", "127.0.0.1", 1))
	case c := <-code:
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("evbus %s exited %d before serving:\n%s", strings.Join(args, " "), c, all.String())
	case <-ctx.Done():
		t.Fatal("evbus console did not start serving")
	}
	stop()
	if c := <-code; c != 0 {
		t.Errorf("evbus console exited %d when stopped", c)
	}
	mu.Lock()
	defer mu.Unlock()
	return all.String() + out.String()
}

// TestConsoleTLS: with its own certificate the console serves HTTPS on an
// address that is not loopback, and its session cookie is Secure.
func TestConsoleTLS(t *testing.T) {
	stack := evbustest.Start(t)
	srvTLS, caPEM, err := devstack.SelfSignedCertificate()
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvTLS.Certificates[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "console.pem"), filepath.Join(dir, "console-key.pem")
	if err := os.WriteFile(certFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	clientTLS, err := devstack.ClientTLS(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	args := []string{"console", "--listen", "0.0.0.0:0", "--listen-tls-cert", certFile, "--listen-tls-key", keyFile, "--brokers", strings.Join(stack.Brokers(), ",")}
	runConsole(t, args, map[string]string{"EVBUS_CONSOLE_VIEWER_TOKEN": consoleOperatorToken, "EVBUS_REGISTRY": stack.RegistryURL()}, func(base string) {
		if !strings.HasPrefix(base, "https://") {
			t.Fatalf("serving %s, want https", base)
		}
		resp, err := hc.PostForm(base+"/login", url.Values{"token": {consoleOperatorToken}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if c := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(c) != 1 || !c[0].Secure || !c[0].HttpOnly {
			t.Errorf("sign-in over TLS: %d, cookies %+v", resp.StatusCode, c)
		}
	})
}

// TestConsoleNeverShow: --never-show reaches the console: a dead letter
// whose only field is on the list has nothing to reveal, and the field's
// value shows nowhere.
func TestConsoleNeverShow(t *testing.T) {
	stack := evbustest.Start(t)
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	enc, err := bus.NewEncoder(t.Context(), reg, bus.Source("/orders"), bus.Types(outboxEventType))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := enc.Record(t.Context(), outboxEvent{OrderID: "o-hidden-4711"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 2, 15, 4, 0, 0, time.UTC)
	res := cl.ProduceSync(t.Context(), wire.DeadLetterRecord(rec, wire.Origin{Topic: "orders", Timestamp: at}, "billing", wire.KindPermanent, 1, errors.New("declined"), at))
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	id := wire.DeadLetterID(res[0].Record)
	args := []string{"console", "--listen", "127.0.0.1:0", "--never-show", "order_id", "--brokers", strings.Join(stack.Brokers(), ",")}
	runConsole(t, args, map[string]string{"EVBUS_CONSOLE_OPERATOR_TOKEN": consoleOperatorToken, "EVBUS_REGISTRY": stack.RegistryURL()}, func(base string) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/groups/billing/actions/reveal",
			strings.NewReader(url.Values{"id": {id}, "reason": {"support ticket 12"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+consoleOperatorToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "nothing to reveal") || strings.Contains(string(body), "o-hidden-4711") {
			t.Errorf("reveal with --never-show order_id: %d\n%s", resp.StatusCode, body)
		}
	})
}
