// The README's outbox program on PostgreSQL: its fragment replaces the
// SQLite lines of the program, whose declarations are here.
package main

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/domain"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
)

type OrderPlaced struct {
	OrderID string `avro:"order_id"`
}
type OrderPaid struct {
	OrderID string `avro:"order_id"`
}

var (
	orderPlaced = bus.Event[OrderPlaced]("orders", func(o *OrderPlaced) string { return o.OrderID }, bus.Namespace("com.example.orders"))
	orderPaid   = bus.Event[OrderPaid]("orders", func(o *OrderPaid) string { return o.OrderID }, bus.Namespace("com.example.orders"))
)

type Order struct {
	domain.Recorder
	ID string
}
type OrderWasPlaced struct{ ID string }

func (o *Order) Place() { o.Record(OrderWasPlaced{ID: o.ID}) }

func main() {}

func postgres(ctx context.Context, kafkaClient *kgo.Client, enc *bus.Encoder, c *consumer.Consumer, id string) {
	//doccheck:fragment
}

var _ = postgres

func must[T any](v T, err error) T {
	check(err)
	return v
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
