package bus_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/internal/nilinput"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

// Every public entry point of bus given nil where it needs something
// returns an error that names the argument, and does not panic.
func TestNilInput(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	var nilCtx context.Context
	enc, err := bus.NewEncoder(ctx, e.reg, bus.Source("/orders-service"), bus.Types(orderPlaced))
	if err != nil {
		t.Fatal(err)
	}
	pub := e.publisher(t)
	var nilType *bus.Type[OrderPlaced]
	db, err := sqlite.Open(ctx, t.TempDir()+"/uow.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Pool().Close()
	uow := bus.NewUnitOfWork(sqldb.DB[*sql.Tx](db), nil, nil)
	var nilUOW bus.Transactor[*sql.Tx]
	for _, c := range []struct {
		name, want string
		fn         func() error
	}{
		{"NewPublisher(Types(nil))", "Types: event type 1 is nil", func() error {
			_, err := bus.NewPublisher(ctx, e.cl, e.reg, bus.Source("/s"), bus.Types(nil))
			return err
		}},
		{"NewPublisher(Types(nil *Type))", "Types: event type 2 is nil", func() error {
			_, err := bus.NewPublisher(ctx, e.cl, e.reg, bus.Source("/s"), bus.Types(orderPlaced, nilType))
			return err
		}},
		{"NewPublisher(nil option)", "option 2 is nil", func() error {
			_, err := bus.NewPublisher(ctx, e.cl, e.reg, bus.Source("/s"), nil, bus.Types(orderPlaced))
			return err
		}},
		{"NewPublisher(Telemetry(nil))", "bus: Telemetry(nil): pass one from tracing.New", func() error {
			_, err := bus.NewPublisher(ctx, e.cl, e.reg, bus.Source("/s"), bus.Types(orderPlaced), bus.Telemetry(nil))
			return err
		}},
		{"NewPublisher(nil ctx)", "nil context", func() error {
			_, err := bus.NewPublisher(nilCtx, e.cl, e.reg, bus.Source("/s"), bus.Types(orderPlaced))
			return err
		}},
		{"NewPublisher(nil client)", "Kafka client", func() error {
			_, err := bus.NewPublisher(ctx, nil, e.reg, bus.Source("/s"), bus.Types(orderPlaced))
			return err
		}},
		{"NewEncoder(Types(nil))", "Types: event type 1 is nil", func() error {
			_, err := bus.NewEncoder(ctx, e.reg, bus.Source("/s"), bus.Types(nil))
			return err
		}},
		{"NewEncoder(nil ctx)", "nil context", func() error {
			_, err := bus.NewEncoder(nilCtx, e.reg, bus.Source("/s"), bus.Types(orderPlaced))
			return err
		}},
		{"NewEncoder(nil registry)", "registry", func() error {
			_, err := bus.NewEncoder(ctx, nil, bus.Source("/s"), bus.Types(orderPlaced))
			return err
		}},
		{"Encoder.Record(nil ctx)", "Record: nil context", func() error {
			_, err := enc.Record(nilCtx, OrderPlaced{OrderID: "o"})
			return err
		}},
		{"Encoder.RecordInto(nil ctx)", "RecordInto: nil context", func() error {
			return enc.RecordInto(nilCtx, OrderPlaced{OrderID: "o"}, &kgo.Record{})
		}},
		{"Encoder.RecordInto(nil record)", "RecordInto: nil record", func() error {
			return enc.RecordInto(ctx, OrderPlaced{OrderID: "o"}, nil)
		}},
		{"Publisher.Publish(nil ctx)", "Publish: nil context", func() error {
			return pub.Publish(nilCtx, OrderPlaced{OrderID: "o"})
		}},
		{"Publisher.PublishAsync(nil ctx)", "nil context", func() error {
			var got error
			pub.PublishAsync(nilCtx, OrderPlaced{OrderID: "o"}, func(r bus.Result) { got = r.Err })
			return got
		}},
		{"Publisher.Flush(nil ctx)", "Flush: nil context", func() error { return pub.Flush(nilCtx) }},
		{"CreateTopics(nil admin)", "nil admin client", func() error {
			return bus.CreateTopics(ctx, nil, bus.TopicSpec{Name: "x"})
		}},
		{"CreateTopics(nil ctx)", "nil context", func() error {
			return bus.CreateTopics(nilCtx, e.adm, bus.TopicSpec{Name: "x"})
		}},
		{"CheckTopics(nil admin)", "nil admin client", func() error { return bus.CheckTopics(ctx, nil, "orders") }},
		{"TopicMaxBytes(nil admin)", "nil admin client", func() error {
			_, err := bus.TopicMaxBytes(ctx, (*kadm.Client)(nil), "orders")
			return err
		}},
		{"CheckProducer(nil)", "nil Kafka client", func() error { return bus.CheckProducer(nil) }},
		{"UnitOfWork.Do(nil ctx)", "UnitOfWork.Do: nil context", func() error {
			return uow.Do(nilCtx, func(context.Context, *bus.Scope[*sql.Tx]) error { return nil })
		}},
		{"UnitOfWork.Do(nil cmd)", "UnitOfWork.Do: nil command", func() error { return uow.Do(ctx, nil) }},
		{"UnitOfWork.In(nil cmd)", "UnitOfWork.In: nil command", func() error {
			_, err := uow.In(ctx, nil, nil)
			return err
		}},
		{"NewUnitOfWork(nil db).Do", "without a database", func() error {
			return bus.NewUnitOfWork(nilUOW, nil, nil).Do(ctx, func(context.Context, *bus.Scope[*sql.Tx]) error { return nil })
		}},
	} {
		nilinput.Call(t, c.name, c.want, c.fn)
	}
}
