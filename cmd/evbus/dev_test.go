package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// evbusDev is a running `evbus dev` process and the addresses it printed.
type evbusDev struct {
	cmd      *exec.Cmd
	stderr   *bytes.Buffer
	kafka    string
	registry string
}

// startDev runs the binary and waits until it has printed its addresses.
func startDev(t *testing.T, bin string, args ...string) *evbusDev {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev"}, args...)...)
	d := &evbusDev{cmd: cmd, stderr: new(bytes.Buffer)}
	cmd.Stderr = d.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) // a no-op once it has exited

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	hang := time.After(60 * time.Second) // a hang guard, not a timing check
	for d.kafka == "" || d.registry == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("evbus dev exited before printing its addresses; stderr: %s", d.stderr)
			}
			if f := strings.Fields(line); len(f) == 2 && f[0] == "kafka" {
				d.kafka = f[1]
			} else if len(f) == 2 && f[0] == "registry" {
				d.registry = f[1]
			}
		case <-hang:
			t.Fatalf("evbus dev printed no addresses; stderr: %s", d.stderr)
		}
	}
	go func() { // keep the pipe drained
		for range lines {
		}
	}()
	return d
}

// stop sends SIGTERM and returns the exit code.
func (d *evbusDev) stop(t *testing.T) int {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.cmd.Wait()
	return d.cmd.ProcessState.ExitCode()
}

func TestDevCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "evbus")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("serves, stops on SIGTERM, keeps its state", func(t *testing.T) {
		ctx := context.Background()
		dataDir := filepath.Join(t.TempDir(), "state")
		schema := sr.Schema{Schema: `{"type":"record","name":"OrderPlaced","namespace":"com.example","fields":[{"name":"id","type":"string"}]}`}

		dev := startDev(t, bin, "--data-dir", dataDir, "--kafka-port", "0", "--registry-port", "0")
		reg, err := sr.NewClient(sr.URLs(dev.registry))
		if err != nil {
			t.Fatal(err)
		}
		registered, err := reg.CreateSchema(ctx, "orders-com.example.OrderPlaced", schema)
		if err != nil {
			t.Fatalf("register: %v", err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(dev.kafka), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		err = cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte("order-1"), Value: []byte("placed")}).FirstErr()
		cl.Close()
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		if code := dev.stop(t); code != 0 {
			t.Fatalf("exit status %d after SIGTERM, want 0; stderr: %s", code, dev.stderr)
		}
		if dev.stderr.Len() != 0 {
			t.Errorf("stderr of a clean run: %s", dev.stderr)
		}
		for _, f := range []string{"kafka/meta.json", "kafka/topics.json", "registry/schemas.log"} {
			if fi, err := os.Stat(filepath.Join(dataDir, f)); err != nil || fi.Size() == 0 {
				t.Errorf("data dir lacks %s after a clean stop: %v", f, err)
			}
		}

		// The next run, on other ports, finds the schema and the record.
		dev = startDev(t, bin, "--data-dir", dataDir, "--kafka-port", "0", "--registry-port", "0")
		reg, err = sr.NewClient(sr.URLs(dev.registry))
		if err != nil {
			t.Fatal(err)
		}
		found, err := reg.LookupSchema(ctx, "orders-com.example.OrderPlaced", schema)
		if err != nil || found.ID != registered.ID || found.Version != registered.Version {
			t.Errorf("after a restart the schema is %+v (%v), want id %d version %d", found, err, registered.ID, registered.Version)
		}
		cl, err = kgo.NewClient(kgo.SeedBrokers(dev.kafka), kgo.ConsumeTopics("orders"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second) // a hang guard
		defer cancel()
		var recs []*kgo.Record
		for len(recs) == 0 && pollCtx.Err() == nil {
			recs = cl.PollFetches(pollCtx).Records()
		}
		if len(recs) != 1 || string(recs[0].Key) != "order-1" || recs[0].Offset != 0 {
			t.Errorf("after a restart topic orders holds %v, want order-1 at offset 0", recs)
		}
		if code := dev.stop(t); code != 0 {
			t.Fatalf("exit status %d after SIGTERM, want 0; stderr: %s", code, dev.stderr)
		}
	})

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := fmt.Sprint(taken.Addr().(*net.TCPAddr).Port)
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	for name, tc := range map[string]struct {
		args []string
		code int
		want []string
	}{
		"kafka port in use":    {[]string{"--kafka-port", port, "--registry-port", "0"}, 1, []string{"kafka", port, "address already in use", "choose another port"}},
		"registry port in use": {[]string{"--kafka-port", "0", "--registry-port", port}, 1, []string{"registry", port, "address already in use"}},
		"data dir is a file":   {[]string{"--data-dir", filepath.Join(notADir, "state"), "--kafka-port", "0", "--registry-port", "0"}, 1, []string{"data dir", "choose a writable directory"}},
		"unknown flag":         {[]string{"--kafka-prot", "1"}, 2, []string{"-kafka-prot", "evbus dev --help"}},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"dev", "--data-dir", t.TempDir()}, tc.args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n") {
				t.Errorf("stderr is not one line: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q does not contain %q", msg, w)
				}
			}
			for _, bad := range []string{"goroutine", "panic"} {
				if strings.Contains(msg+stdout.String(), bad) {
					t.Errorf("output contains %q: %s%s", bad, stdout.String(), msg)
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout on failure: %q", stdout.String())
			}
		})
	}
}

func TestHelpAndDispatch(t *testing.T) {
	for name, tc := range map[string]struct {
		args        []string
		env         map[string]string
		code        int
		out, errOut string
	}{
		"command list":        {args: []string{"help"}, code: 0, out: "dev              run Kafka"},
		"no command":          {args: nil, code: 2, errOut: "usage: evbus <command>"},
		"unknown command":     {args: []string{"deploy"}, code: 2, errOut: `unknown command "deploy"`},
		"dev help":            {args: []string{"dev", "--help"}, code: 0, out: "example:\n  evbus dev --data-dir .evbus"},
		"dev help lists env":  {args: []string{"dev", "-h"}, code: 0, out: "EVBUS_REGISTRY_PORT      sets --registry-port"},
		"bad env value":       {args: []string{"dev"}, env: map[string]string{"EVBUS_KAFKA_PORT": "ninety"}, code: 2, errOut: `EVBUS_KAFKA_PORT="ninety" is not a valid --kafka-port`},
		"stray argument":      {args: []string{"dev", "now"}, code: 2, errOut: `unexpected argument "now"`},
		"port out of range":   {args: []string{"dev", "--kafka-port", "70000", "--data-dir", ""}, code: 1, errOut: "KafkaPort(70000): want a port from 1 to 65535"},
		"env loses to a flag": {args: []string{"dev", "--registry-port", "-1", "--data-dir", ""}, env: map[string]string{"EVBUS_REGISTRY_PORT": "0"}, code: 1, errOut: "RegistryPort(-1)"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return tc.env[k] })
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.out) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tc.out)
			}
			if !strings.Contains(stderr.String(), tc.errOut) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tc.errOut)
			}
			if tc.errOut == "" && stderr.Len() != 0 {
				t.Errorf("unexpected stderr: %s", stderr.String())
			}
		})
	}
}
