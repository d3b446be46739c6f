package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/console"
	"github.com/evbus/evbus/schema"
)

// Mount the console in a service's admin server, under /admin/evbus. The
// tokens come from EVBUS_CONSOLE_OPERATOR_TOKEN and
// EVBUS_CONSOLE_VIEWER_TOKEN (here from a map standing for the
// environment); an anonymous request gets 401.
func Example() {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:9092"))
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	reg, err := schema.New("http://127.0.0.1:8081")
	if err != nil {
		panic(err)
	}
	env := map[string]string{console.OperatorTokenEnv: "a-long-random-operator-token"}
	h, err := console.New(console.Config{
		Client:    cl,
		Registry:  reg,
		Tokens:    console.TokensFromEnv(func(k string) string { return env[k] }),
		NeverShow: []string{"card.number"},
		Prefix:    "/admin/evbus",
	})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	admin := http.NewServeMux()
	admin.Handle("/admin/evbus/", h)

	rec := httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/evbus/", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	// Output: 401 Bearer realm="evbus console"
}
