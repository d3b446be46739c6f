package devstack_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/internal/testkit"
)

// registryState is everything a restart must keep of the registry.
type registryState struct {
	Schemas []sr.SubjectSchema // every live version, with id, version and GUID
	Levels  map[string]string  // subject ("" for global) -> level
}

func readRegistry(t *testing.T, cl *sr.Client, subjects ...string) registryState {
	t.Helper()
	ctx := context.Background()
	all, err := cl.AllSchemas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := registryState{Schemas: all, Levels: map[string]string{}}
	for _, res := range cl.Compatibility(ctx, append(subjects, "")...) {
		if res.Err != nil {
			t.Fatalf("level of %q: %v", res.Subject, res.Err)
		}
		st.Levels[res.Subject] = res.Level.String()
	}
	return st
}

// consumed is one record as read back: where it is and what it holds.
type consumed struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
}

func consumeAll(t *testing.T, brokers []string, topic string, n int) []consumed {
	t.Helper()
	var out []consumed
	for _, r := range testkit.ReadN(t, brokers, topic, n) {
		out = append(out, consumed{r.Partition, r.Offset, string(r.Key), string(r.Value)})
	}
	slices.SortFunc(out, func(a, b consumed) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return out
}

func TestRestartKeepsKafkaAndRegistryState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	subjects := []string{"orders-value", "payments-value", "audit-value", "gone-value"}

	s1, err := devstack.Start(ctx, devstack.DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}

	// Kafka: a topic, keyed records over its partitions, a group's
	// committed offsets.
	kcl, err := kgo.NewClient(kgo.SeedBrokers(s1.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(kcl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	const n = 30
	for i := range n {
		r := &kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "order-%d", i%7), Value: fmt.Appendf(nil, "event %d", i)}
		if err := kcl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 2, LeaderEpoch: -1})
	commit.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 1, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "billing", commit); err != nil {
		t.Fatal(err)
	}
	committedBefore, err := adm.FetchOffsets(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	kcl.Close()
	recordsBefore := consumeAll(t, s1.Brokers(), "orders", n)

	// Registry: several subjects, an id shared by two subjects, config
	// changes, and a subject deleted for good.
	rcl := registryClient(t, s1)
	mustRegister(t, rcl, "orders-value", avro(orderV1))
	mustRegister(t, rcl, "orders-value", avro(orderWithDefault))
	mustRegister(t, rcl, "audit-value", avro(orderV1))
	mustRegister(t, rcl, "payments-value", avro(`{"type":"record","name":"PaymentTaken","fields":[{"name":"id","type":"string"}]}`))
	gone := mustRegister(t, rcl, "gone-value", avro(`{"type":"record","name":"Gone","fields":[{"name":"x","type":"int"}]}`))
	for _, how := range []sr.DeleteHow{sr.SoftDelete, sr.HardDelete} {
		if _, err := rcl.DeleteSubject(ctx, "gone-value", how); err != nil {
			t.Fatal(err)
		}
	}
	if res := rcl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "payments-value"); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if res := rcl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForwardTransitive}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	regBefore := readRegistry(t, rcl, subjects...)
	if len(regBefore.Schemas) != 4 {
		t.Fatalf("before restart: %d live schema versions, want 4: %+v", len(regBefore.Schemas), regBefore.Schemas)
	}

	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := startStack(t, devstack.DataDir(dir))
	rcl = registryClient(t, s2)
	if regAfter := readRegistry(t, rcl, subjects...); !reflect.DeepEqual(regAfter, regBefore) {
		t.Errorf("registry after restart:\n%+v\nbefore:\n%+v", regAfter, regBefore)
	}
	if recordsAfter := consumeAll(t, s2.Brokers(), "orders", n); !reflect.DeepEqual(recordsAfter, recordsBefore) {
		t.Errorf("records after restart:\n%v\nbefore:\n%v", recordsAfter, recordsBefore)
	}
	kcl, err = kgo.NewClient(kgo.SeedBrokers(s2.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer kcl.Close()
	committedAfter, err := kadm.NewClient(kcl).FetchOffsets(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(committedAfter.Offsets(), committedBefore.Offsets()) {
		t.Errorf("committed offsets after restart: %v, before: %v", committedAfter.Offsets(), committedBefore.Offsets())
	}

	// A new schema gets an id never handed out before, the deleted
	// subject's included; the levels are enforced as before.
	fresh := mustRegister(t, rcl, "fresh-value", avro(`{"type":"record","name":"Fresh","fields":[{"name":"y","type":"int"}]}`))
	if fresh.ID != gone.ID+1 {
		t.Errorf("new schema after restart got id %d, want %d (the next after every id handed out)", fresh.ID, gone.ID+1)
	}
	_, err = rcl.CreateSchema(ctx, "orders-value", avro(orderNoAmount))
	wantRefused(t, err, 409, "FORWARD_TRANSITIVE", "amount")
}

func TestDamagedRegistryLogIsAnError(t *testing.T) {
	good := `{"op":"register","subject":"a-value","version":1,"id":1,"schema":{"schema":"\"string\""}}`
	for name, tc := range map[string]struct{ lines, want string }{
		"not json":        {good + "\n{oops\n", "line 2: not a log entry"},
		"unknown op":      {`{"op":"teleport"}` + "\n", `line 1: unknown op "teleport"`},
		"unknown field":   {`{"op":"register","colour":"red"}` + "\n", "line 1: not a log entry"},
		"incomplete":      {`{"op":"register","subject":"a-value"}` + "\n", "line 1: a register entry needs"},
		"slot taken":      {good + "\n" + strings.Replace(good, `"id":1`, `"id":2`, 1) + "\n", "line 2: subject \"a-value\" version 1 already seeded"},
		"bad request":     {`{"op":"request","method":"PUT","path":"/config","body":{"compatibility":"SIDEWAYS"}}` + "\n", "line 1:"},
		"not a change":    {`{"op":"request","method":"GET","path":"/config"}` + "\n", `line 1: a request entry must be a PUT or DELETE, not "GET"`},
		"replay mismatch": {good + "\n" + strings.Replace(good, `"a-value","version":1`, `"b-value","version":3`, 1) + "\n", "line 2: replay gave id 1 version 1, the log says id 1 version 3"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "registry", "schemas.log")
			if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(log, []byte(tc.lines), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := devstack.Start(context.Background(), devstack.DataDir(dir))
			if err == nil {
				s.Close()
				t.Fatal("Start accepted a damaged registry log")
			}
			for _, want := range []string{log, tc.want, "repair or remove that line"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "kafka", "meta.json")); err == nil {
				t.Error("kafka state written although the start failed")
			}
		})
	}
}

func TestPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port

	for name, opt := range map[string]devstack.Option{"kafka": devstack.KafkaPort(port), "registry": devstack.RegistryPort(port)} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := devstack.Start(context.Background(), opt, devstack.DataDir(dir))
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded on a port in use")
			}
			want := fmt.Sprintf("devstack: %s: listen tcp 127.0.0.1:%d", name, port)
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "choose another port") {
				t.Errorf("error %q: want it to start with %q and say how to fix it", err, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "kafka", "meta.json")); err == nil {
				t.Error("kafka state written although the start failed")
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	for name, tc := range map[string]struct {
		opts []devstack.Option
		want string
	}{
		"port":       {[]devstack.Option{devstack.KafkaPort(70000)}, "KafkaPort(70000)"},
		"partitions": {[]devstack.Option{devstack.Partitions(0)}, "Partitions(0)"},
		"logger":     {[]devstack.Option{devstack.Logger(nil)}, "Logger(nil)"},
		"token":      {[]devstack.Option{devstack.RegistryBearerToken("")}, "RegistryBearerToken"},
		"basic":      {[]devstack.Option{devstack.RegistryBasicAuth("", "pw")}, "RegistryBasicAuth"},
		"both auths": {[]devstack.Option{devstack.RegistryBasicAuth("u", "pw"), devstack.RegistryBearerToken("t")}, "RegistryBasicAuth and RegistryBearerToken: choose one"},
		"tls":        {[]devstack.Option{devstack.TLS(nil)}, "devstack: TLS: want a server config with a certificate"},
		"sasl":       {[]devstack.Option{devstack.KafkaSASL("GSSAPI", "u", "pw")}, `KafkaSASL: mechanism "GSSAPI"`},
		"nil option": {[]devstack.Option{devstack.Partitions(2), nil}, "devstack: Start: option 2 is nil"},
		"data dir":   {[]devstack.Option{devstack.DataDir(filepath.Join(os.Args[0], "sub"))}, "data dir"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := devstack.Start(context.Background(), tc.opts...)
			if err == nil {
				s.Close()
				t.Fatal("Start accepted a bad option")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// A crash leaves the data dir as it is while the stack runs; a copy of it
// taken then is what the next start would find.
func TestCrashKeepsAutoCreatedTopics(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := startStack(t, devstack.DataDir(dir), devstack.Partitions(5))
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 4 {
		r := &kgo.Record{Topic: "auto", Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	before := consumeAll(t, s.Brokers(), "auto", 4)

	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	after := startStack(t, devstack.DataDir(crashed))
	if got := consumeAll(t, after.Brokers(), "auto", 4); !reflect.DeepEqual(got, before) {
		t.Errorf("after a crash the auto-created topic holds\n%v\nwant\n%v", got, before)
	}
	info := after.Kafka().PartitionInfos("auto")
	if len(info) != 5 {
		t.Errorf("auto-created topic has %d partitions, want 5 (Partitions)", len(info))
	}
}
