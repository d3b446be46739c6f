package devstack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/evbus/evbus/devstack"
)

// askRegistry sends method to the registry's path and decodes the answer into
// out; it returns the HTTP status.
func askRegistry(t *testing.T, s *devstack.Stack, method, path string, body any, out any) int {
	t.Helper()
	var in []byte
	if body != nil {
		var err error
		if in, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, s.RegistryURL()+path, bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: answer: %v", method, path, err)
	}
	return resp.StatusCode
}

// registration is a registration answer.
type registration struct {
	ID   int    `json:"id"`
	GUID string `json:"guid"`
}

var uuidText = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestSchemaByIDWhateverSubject: a schema is served by id whatever subject
// of the default context the query names, as Confluent Schema Registry
// does: Confluent's deserializers name <topic>-value while evbus registers
// under <topic>-<record name>.
func TestSchemaByIDWhateverSubject(t *testing.T) {
	s := startStack(t)
	var reg registration
	if code := askRegistry(t, s, "POST", "/subjects/orders-com.example.orders.OrderPlaced/versions", map[string]string{"schema": orderV1}, &reg); code != http.StatusOK {
		t.Fatalf("register: HTTP %d", code)
	}
	for _, path := range []string{
		fmt.Sprintf("/schemas/ids/%d?subject=orders-value", reg.ID),
		fmt.Sprintf("/schemas/ids/%d?subject=nobody-registers-this", reg.ID),
		fmt.Sprintf("/schemas/ids/%d/schema?subject=orders-value", reg.ID),
	} {
		var got any
		if code := askRegistry(t, s, "GET", path, nil, &got); code != http.StatusOK {
			t.Errorf("GET %s: HTTP %d %v, want 200 and the schema", path, code, got)
		}
	}
	var missing map[string]any
	if code := askRegistry(t, s, "GET", "/schemas/ids/999?subject=orders-value", nil, &missing); code != http.StatusNotFound || missing["error_code"] != 40403.0 {
		t.Errorf("an unknown id: HTTP %d %v, want 404 with error_code 40403", code, missing)
	}
}

// TestRegistrationGUID: registration answers carry the schema's guid, the
// same for the same schema under any subject and after a restart of the
// data dir, and GET /schemas/guids/{guid} serves the schema.
func TestRegistrationGUID(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, devstack.DataDir(dir))
	var first, again, other registration
	askRegistry(t, s, "POST", "/subjects/orders-value/versions", map[string]string{"schema": orderV1}, &first)
	if !uuidText.MatchString(first.GUID) {
		t.Fatalf("registration answer %+v: want a guid in UUID form", first)
	}
	askRegistry(t, s, "POST", "/subjects/orders-value/versions", map[string]string{"schema": orderV1}, &again)
	askRegistry(t, s, "POST", "/subjects/orders-com.example.orders.OrderPlaced/versions", map[string]string{"schema": orderV1}, &other)
	if again != first || other != first {
		t.Errorf("registering again: %+v, under another subject: %+v; want both %+v", again, other, first)
	}
	var byGUID struct {
		Schema string `json:"schema"`
		ID     int    `json:"id"`
	}
	if code := askRegistry(t, s, "GET", "/schemas/guids/"+first.GUID, nil, &byGUID); code != http.StatusOK || byGUID.Schema == "" {
		t.Fatalf("GET /schemas/guids/%s: HTTP %d %+v", first.GUID, code, byGUID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = startStack(t, devstack.DataDir(dir))
	var restarted registration
	askRegistry(t, s, "POST", "/subjects/orders-value/versions", map[string]string{"schema": orderV1}, &restarted)
	if restarted != first {
		t.Errorf("after a restart: %+v, want %+v", restarted, first)
	}
	if code := askRegistry(t, s, "GET", "/schemas/guids/"+first.GUID, nil, &byGUID); code != http.StatusOK || byGUID.Schema == "" {
		t.Errorf("after a restart, GET /schemas/guids/%s: HTTP %d %+v", first.GUID, code, byGUID)
	}
}
