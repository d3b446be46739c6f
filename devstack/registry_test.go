package devstack_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/evbus/evbus/devstack"
)

const (
	orderV1 = `{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
		{"name":"id","type":"string"},
		{"name":"amount","type":"long"}]}`
	// A new field without a default: readers on it cannot read v1 data.
	orderNoDefault = `{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
		{"name":"id","type":"string"},
		{"name":"amount","type":"long"},
		{"name":"currency","type":"string"}]}`
	// The same field with a default: BACKWARD and FORWARD compatible.
	orderWithDefault = `{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
		{"name":"id","type":"string"},
		{"name":"amount","type":"long"},
		{"name":"currency","type":"string","default":"EUR"}]}`
	// amount removed: readers on v1 cannot read data written with it.
	orderNoAmount = `{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
		{"name":"id","type":"string"}]}`
)

func startStack(t *testing.T, opts ...devstack.Option) *devstack.Stack {
	t.Helper()
	s, err := devstack.Start(t.Context(), opts...)
	if err != nil {
		t.Fatalf("devstack.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func registryClient(t *testing.T, s *devstack.Stack, opts ...sr.ClientOpt) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(s.RegistryURL())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func avro(text string, refs ...sr.SchemaReference) sr.Schema {
	return sr.Schema{Schema: text, Type: sr.TypeAvro, References: refs}
}

// mustRegister registers s under subject and returns what the registry holds.
func mustRegister(t *testing.T, cl *sr.Client, subject string, s sr.Schema) sr.SubjectSchema {
	t.Helper()
	ss, err := cl.CreateSchema(context.Background(), subject, s)
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	return ss
}

// wantRefused asserts err is the registry's answer status with a message
// holding every one of want.
func wantRefused(t *testing.T, err error, status int, want ...string) {
	t.Helper()
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a registry error answer %d", err, status)
	}
	if re.StatusCode != status {
		t.Fatalf("got HTTP %d (%s), want %d", re.StatusCode, re.Message, status)
	}
	for _, w := range want {
		if !strings.Contains(re.Message, w) {
			t.Errorf("message %q does not contain %q", re.Message, w)
		}
	}
}

func TestRegisterEnforcesBackwardByDefault(t *testing.T) {
	ctx := context.Background()
	cl := registryClient(t, startStack(t))
	v1 := mustRegister(t, cl, "orders-value", avro(orderV1))

	_, err := cl.CreateSchema(ctx, "orders-value", avro(orderNoDefault))
	wantRefused(t, err, http.StatusConflict,
		`Schema being registered is incompatible with an earlier schema for subject "orders-value"`, "currency")
	var re *sr.ResponseError
	if errors.As(err, &re) && re.ErrorCode != 409 {
		t.Errorf("error_code %d, want 409", re.ErrorCode)
	}
	if vs, _ := cl.SubjectVersions(ctx, "orders-value"); len(vs) != 1 {
		t.Errorf("versions after a refused registration: %v, want [1]", vs)
	}

	v2 := mustRegister(t, cl, "orders-value", avro(orderWithDefault))
	if v2.Version != 2 || v2.ID == v1.ID {
		t.Errorf("compatible v2: version %d id %d, want version 2 and an id other than %d", v2.Version, v2.ID, v1.ID)
	}
	// Registering what the subject has is no new version, even though
	// v1 is no longer the latest.
	if again := mustRegister(t, cl, "orders-value", avro(orderV1)); again.ID != v1.ID || again.Version != 1 {
		t.Errorf("re-registering v1: %+v, want id %d version 1", again, v1.ID)
	}
}

func TestSubjectLevelOverridesGlobal(t *testing.T) {
	ctx := context.Background()
	cl := registryClient(t, startStack(t))
	for _, subject := range []string{"fwd-value", "back-value"} {
		mustRegister(t, cl, subject, avro(orderV1))
	}
	if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForward}, "fwd-value"); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}

	// FORWARD: a new field without a default is fine (old readers skip
	// it), removing a field without a default is not.
	mustRegister(t, cl, "fwd-value", avro(orderNoDefault))
	_, err := cl.CreateSchema(ctx, "fwd-value", avro(orderNoAmount))
	wantRefused(t, err, http.StatusConflict, "FORWARD", "amount")

	// The global BACKWARD still holds for the other subject.
	_, err = cl.CreateSchema(ctx, "back-value", avro(orderNoDefault))
	wantRefused(t, err, http.StatusConflict, "BACKWARD", "currency")

	// NONE globally: anything goes where no subject level says otherwise.
	if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	mustRegister(t, cl, "back-value", avro(orderNoDefault))
	_, err = cl.CreateSchema(ctx, "fwd-value", avro(orderNoAmount))
	wantRefused(t, err, http.StatusConflict, "FORWARD")
}

func TestTransitiveLevelChecksEveryVersion(t *testing.T) {
	ctx := context.Background()
	cl := registryClient(t, startStack(t))
	// v3 reads v2 data (currency is there) but not v1 data (no currency,
	// and no default for it).
	const v3 = `{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
		{"name":"id","type":"string"},
		{"name":"currency","type":"string"}]}`
	for _, subject := range []string{"plain-value", "transitive-value"} {
		mustRegister(t, cl, subject, avro(orderV1))
		mustRegister(t, cl, subject, avro(orderWithDefault))
	}
	if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackwardTransitive}, "transitive-value"); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	mustRegister(t, cl, "plain-value", avro(v3))
	_, err := cl.CreateSchema(ctx, "transitive-value", avro(v3))
	wantRefused(t, err, http.StatusConflict, "BACKWARD_TRANSITIVE", "version 1", "currency")
}

func TestCompatibilityEndpoint(t *testing.T) {
	ctx := context.Background()
	cl := registryClient(t, startStack(t))
	mustRegister(t, cl, "orders-value", avro(orderV1))

	for _, version := range []int{-1, 1, -2} { // latest, version 1, all versions
		res, err := cl.CheckCompatibility(ctx, "orders-value", version, avro(orderNoDefault))
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		if res.Is || len(res.Messages) != 1 || !strings.Contains(res.Messages[0], "currency") {
			t.Errorf("version %d, incompatible schema: %+v, want is_compatible false and a message naming currency", version, res)
		}
		res, err = cl.CheckCompatibility(ctx, "orders-value", version, avro(orderWithDefault))
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		if !res.Is {
			t.Errorf("version %d, compatible schema: %+v, want is_compatible true", version, res)
		}
	}
	if vs, _ := cl.SubjectVersions(ctx, "orders-value"); len(vs) != 1 {
		t.Errorf("a compatibility check registered something: versions %v", vs)
	}

	_, err := cl.CheckCompatibility(ctx, "orders-value", 7, avro(orderWithDefault))
	wantRefused(t, err, http.StatusNotFound)
	_, err = cl.CheckCompatibility(ctx, "orders-value", -1, avro(`{"type":"record","name":"X","fields":[{"name":"a","type":"Nope"}]}`))
	wantRefused(t, err, http.StatusUnprocessableEntity, "Invalid schema")
}

func TestReferencesAreResolvedAndChecked(t *testing.T) {
	ctx := context.Background()
	cl := registryClient(t, startStack(t))
	const moneyV1 = `{"type":"record","name":"Money","namespace":"com.example","fields":[{"name":"units","type":"long"}]}`
	const moneyV2 = `{"type":"record","name":"Money","namespace":"com.example","fields":[{"name":"units","type":"long"},{"name":"currency","type":"string"}]}`
	const order = `{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
		{"name":"id","type":"string"},{"name":"total","type":"com.example.Money"}]}`

	mustRegister(t, cl, "money", avro(moneyV1))
	ref := func(version int) sr.SchemaReference {
		return sr.SchemaReference{Name: "com.example.Money", Subject: "money", Version: version}
	}
	v1 := mustRegister(t, cl, "orders-value", avro(order, ref(1)))
	if len(v1.References) != 1 {
		t.Fatalf("registered without its reference: %+v", v1)
	}

	// Money v2 adds a field without a default; NONE on its own subject
	// lets it in, but an order that moves to it breaks BACKWARD through
	// the reference.
	if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "money"); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	mustRegister(t, cl, "money", avro(moneyV2))
	_, err := cl.CreateSchema(ctx, "orders-value", avro(order, ref(2)))
	wantRefused(t, err, http.StatusConflict, "total.currency")

	_, err = cl.CreateSchema(ctx, "orders-value", avro(order, ref(9)))
	wantRefused(t, err, http.StatusUnprocessableEntity, `reference "com.example.Money"`)
}

func TestUnparsableSchema(t *testing.T) {
	ctx := context.Background()
	cl := registryClient(t, startStack(t))
	_, err := cl.CreateSchema(ctx, "bad-value", avro(`{"type":"record","name":"X","fields":[{"name":"a","type":"NoSuchType"}]}`))
	wantRefused(t, err, http.StatusUnprocessableEntity, "Invalid schema")
	var re *sr.ResponseError
	if errors.As(err, &re) && re.ErrorCode != 42201 {
		t.Errorf("error_code %d, want 42201", re.ErrorCode)
	}
	if subjects, _ := cl.Subjects(ctx); len(subjects) != 0 {
		t.Errorf("subjects after a refused registration: %v", subjects)
	}
}

func TestRegistryAuth(t *testing.T) {
	ctx := context.Background()
	s := startStack(t, devstack.RegistryBearerToken("s3cret"))

	_, err := registryClient(t, s).Subjects(ctx)
	wantRefused(t, err, http.StatusUnauthorized)
	_, err = registryClient(t, s, sr.BearerToken("wrong")).CreateSchema(ctx, "orders-value", avro(orderV1))
	wantRefused(t, err, http.StatusForbidden)

	cl := registryClient(t, s, sr.BearerToken("s3cret"))
	mustRegister(t, cl, "orders-value", avro(orderV1))
	_, err = cl.CreateSchema(ctx, "orders-value", avro(orderNoDefault))
	wantRefused(t, err, http.StatusConflict, "currency")

	basic := startStack(t, devstack.RegistryBasicAuth("dev", "pw"))
	mustRegister(t, registryClient(t, basic, sr.BasicAuth("dev", "pw")), "orders-value", avro(orderV1))
	_, err = registryClient(t, basic, sr.BasicAuth("dev", "nope")).Subjects(ctx)
	wantRefused(t, err, http.StatusForbidden)
}

func TestContextWritesRefused(t *testing.T) {
	s := startStack(t)
	resp, err := http.Post(s.RegistryURL()+"/contexts/.team/subjects/orders-value/versions",
		"application/vnd.schemaregistry.v1+json", strings.NewReader(`{"schema":"\"string\""}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("registration under a context: HTTP %d, want 501", resp.StatusCode)
	}
}
