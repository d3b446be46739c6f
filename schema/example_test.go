package schema_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
)

// Writer registers an event's schema under its subject (after the
// client-side compatibility check) and returns the id producers frame
// values with; Check is the same check without registering.
func ExampleRegistry_Writer() {
	fake := srfake.New() // a real registry's URL in production
	defer fake.Close()
	reg, err := schema.New(fake.URL())
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := codec.Parse(`{"type":"record","name":"OrderPlaced","namespace":"com.example","fields":[{"name":"order_id","type":"string"}]}`)
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := reg.Writer(context.Background(), "orders", s)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(w.Subject, w.ID)
	// Output: orders-com.example.OrderPlaced 1
}
