package domain

import (
	"context"
	"reflect"
)

// Recorder keeps the domain events an aggregate recorded until the unit of
// work takes them. Embed it in an aggregate:
//
//	type Order struct {
//		domain.Recorder
//		ID     string
//		Status string
//	}
//
//	func (o *Order) Place() { o.Status = "placed"; o.Record(OrderPlaced{ID: o.ID}) }
//
// The zero value is ready. A Recorder is not safe for concurrent use (nor
// is an aggregate).
type Recorder struct {
	events []any
}

// Record records domain events, in the order they happened.
func (r *Recorder) Record(events ...any) { r.events = append(r.events, events...) }

// TakeEvents returns the recorded events and forgets them.
func (r *Recorder) TakeEvents() []any {
	ev := r.events
	r.events = nil
	return ev
}

// Aggregate is what a unit of work takes recorded domain events from:
// anything that embeds a Recorder.
type Aggregate interface {
	TakeEvents() []any
}

// Dispatcher runs in-process handlers of domain events, in the
// transaction of a unit of work (Tx: the driver's transaction type, such
// as pgx.Tx or *sql.Tx). Register handlers with On before the first unit
// of work; it is safe for concurrent use after that.
type Dispatcher[Tx any] struct {
	handlers map[reflect.Type][]handler[Tx]
}

type handler[Tx any] func(ctx context.Context, s *Scope[Tx], ev any) error

// NewDispatcher returns a dispatcher without handlers.
func NewDispatcher[Tx any]() *Dispatcher[Tx] {
	return &Dispatcher[Tx]{handlers: make(map[reflect.Type][]handler[Tx])}
}

// On registers fn for the domain events of type E. An event type may have
// any number of handlers, run in registration order; one without handlers
// is dispatched to none. Events are matched by their exact type: a handler
// for OrderPlaced gets the events recorded as OrderPlaced values, one for
// *OrderPlaced those recorded as pointers.
//
// fn runs inside the unit of work's transaction (s.Tx). It may record
// further domain events (s.Record, or on aggregates it loads and Tracks),
// which are dispatched after the ones before them, and publish integration
// events (s.Publish), which go to the outbox in the same transaction. An
// error from fn rolls the whole unit of work back.
func On[E, Tx any](d *Dispatcher[Tx], fn func(ctx context.Context, s *Scope[Tx], ev E) error) {
	t := reflect.TypeFor[E]()
	d.handlers[t] = append(d.handlers[t], func(ctx context.Context, s *Scope[Tx], ev any) error {
		return fn(ctx, s, ev.(E))
	})
}
