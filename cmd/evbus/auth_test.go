package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
)

// TestTLSAndSASL: the connection flags reach a broker that wants TLS and
// SCRAM or PLAIN; wrong credentials and an untrusted certificate fail in
// one line that names the fix, and no password is printed.
func TestTLSAndSASL(t *testing.T) {
	serverTLS, caPEM, err := devstack.SelfSignedCertificate()
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	kafka, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.TLS(serverTLS),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "ops", "s3cret-scram"),
		kfake.Superuser("PLAIN", "plain-ops", "s3cret-plain"),
		kfake.SeedTopics(1, "orders", "orders.billing.dlt"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	base := map[string]string{"EVBUS_BROKERS": strings.Join(kafka.ListenAddrs(), ","), "EVBUS_TIMEOUT": "5s"}
	env := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		code int
		want string
	}{
		"scram-sha-512 from the environment": {env("EVBUS_TLS_CA", ca, "EVBUS_SASL_MECHANISM", "scram-sha-512", "EVBUS_SASL_USER", "ops", "EVBUS_SASL_PASSWORD", "s3cret-scram"), nil, 0, ""},
		"plain from flags":                   {base, []string{"--tls-ca", ca, "--sasl-mechanism", "plain", "--sasl-user", "plain-ops", "--sasl-password", "s3cret-plain"}, 0, ""},
		"wrong password":                     {env("EVBUS_TLS_CA", ca, "EVBUS_SASL_MECHANISM", "scram-sha-512", "EVBUS_SASL_USER", "ops", "EVBUS_SASL_PASSWORD", "s3cret-wrong"), nil, 1, "check --brokers or EVBUS_BROKERS, and --tls and --sasl-*"},
		"untrusted certificate":              {env("EVBUS_TLS", "true", "EVBUS_SASL_MECHANISM", "scram-sha-512", "EVBUS_SASL_USER", "ops", "EVBUS_SASL_PASSWORD", "s3cret-scram"), nil, 1, "certificate"},
		"bad ca file":                        {env("EVBUS_TLS_CA", filepath.Join(t.TempDir(), "none.pem")), nil, 1, "--tls-ca"},
	} {
		t.Run(name, func(t *testing.T) {
			r := cliEnv(t, tc.env, "", append([]string{"dlt", "ls", "--topic", "orders"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tc.code, r.err)
			}
			if tc.code == 0 && !strings.HasPrefix(r.out, "TOPIC") {
				t.Errorf("stdout %q", r.out)
			}
			if tc.code != 0 && (strings.Count(r.err, "\n") != 1 || !strings.Contains(r.err, tc.want)) {
				t.Errorf("stderr %q: want one line with %q", r.err, tc.want)
			}
			if strings.Contains(r.out+r.err, "s3cret") {
				t.Errorf("a password was printed: %s%s", r.out, r.err)
			}
		})
	}
}

// TestRegistryAuth: basic auth and bearer tokens from the environment;
// refused credentials fail in one line naming the flags, without them.
func TestRegistryAuth(t *testing.T) {
	basic := evbustest.Start(t, devstack.RegistryBasicAuth("ci", "s3cret-basic"))
	bearer := evbustest.Start(t, devstack.RegistryBearerToken("s3cret-token"))
	avsc := filepath.Join(t.TempDir(), "v1.avsc")
	if err := os.WriteFile(avsc, []byte(invoiceV1), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"schema", "register", "--strategy", "record", avsc}
	for name, tc := range map[string]struct {
		env  map[string]string
		code int
	}{
		"basic":           {map[string]string{"EVBUS_REGISTRY": basic.RegistryURL(), "EVBUS_REGISTRY_USER": "ci", "EVBUS_REGISTRY_PASSWORD": "s3cret-basic"}, 0},
		"basic in URL":    {map[string]string{"EVBUS_REGISTRY": strings.Replace(basic.RegistryURL(), "http://", "http://ci:s3cret-basic@", 1)}, 0},
		"bearer":          {map[string]string{"EVBUS_REGISTRY": bearer.RegistryURL(), "EVBUS_REGISTRY_TOKEN": "s3cret-token"}, 0},
		"wrong password":  {map[string]string{"EVBUS_REGISTRY": basic.RegistryURL(), "EVBUS_REGISTRY_USER": "ci", "EVBUS_REGISTRY_PASSWORD": "s3cret-wrong"}, 1},
		"wrong in URL":    {map[string]string{"EVBUS_REGISTRY": strings.Replace(basic.RegistryURL(), "http://", "http://ci:s3cret-wrong@", 1)}, 1},
		"no token at all": {map[string]string{"EVBUS_REGISTRY": bearer.RegistryURL()}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			r := cliEnv(t, tc.env, "", args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", r.code, tc.code, r.out, r.err)
			}
			if tc.code == 0 && !strings.Contains(r.out, "registered") {
				t.Errorf("stdout %q", r.out)
			}
			if tc.code != 0 && (strings.Count(r.err, "\n") != 1 || !strings.Contains(r.err, "--registry-user and --registry-password (or --registry-token)")) {
				t.Errorf("stderr %q", r.err)
			}
			if strings.Contains(r.out+r.err, "s3cret") {
				t.Errorf("a secret was printed: %s%s", r.out, r.err)
			}
		})
	}
}
