// The README's test kit fragment: the body of a test.
package orders_test

import (
	"math/big"
	"testing"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/wire"
)

type OrderPlaced struct {
	OrderID string   `avro:"order_id"`
	Total   *big.Rat `avro:"total" avsc:"decimal(12,2)"`
}

var orderPlaced = bus.Event[OrderPlaced]("orders",
	func(o *OrderPlaced) string { return o.OrderID }, bus.Namespace("com.example.orders"))

func TestBilling(t *testing.T) {
	//doccheck:fragment
}
