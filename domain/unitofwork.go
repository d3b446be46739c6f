package domain

import (
	"context"
	"errors"
	"fmt"
	"reflect"
)

// Scope is what a command and the domain-event handlers share inside one
// unit of work: its transaction, and the events waiting to be dispatched
// or published.
type Scope[Tx any] struct {
	// Tx is the unit of work's transaction: write the business changes in it.
	Tx Tx

	tracked     []Aggregate
	domain      []any
	integration []any
	after       []func(context.Context)
}

// Track hands aggregates to the unit of work: the domain events they
// record (before or after this call) are taken and dispatched when the
// command or the current handler returns.
func (s *Scope[Tx]) Track(aggregates ...Aggregate) { s.tracked = append(s.tracked, aggregates...) }

// Record adds domain events to dispatch, after those recorded before.
func (s *Scope[Tx]) Record(events ...any) { s.domain = append(s.domain, events...) }

// Publish adds integration events (of types registered with the outbox's
// encoder) to enqueue in the transaction, in order, after every domain
// event was dispatched.
func (s *Scope[Tx]) Publish(events ...any) { s.integration = append(s.integration, events...) }

// AfterCommit registers fn to run once the transaction has committed, on
// the caller's goroutine, before Do returns: the "after commit" choice,
// for effects that must not happen unless the change is durable and that
// need not be atomic with it (a cache to invalidate, an in-process
// notification). fn cannot fail the unit of work: it has committed.
func (s *Scope[Tx]) AfterCommit(fn func(ctx context.Context)) { s.after = append(s.after, fn) }

// take moves the events the tracked aggregates recorded to the queue.
func (s *Scope[Tx]) take() {
	for _, a := range s.tracked {
		s.domain = append(s.domain, a.TakeEvents()...)
	}
}

// Enqueuer writes integration events into the outbox in the caller's
// transaction: *outbox.Outbox[Tx] is one.
type Enqueuer[Tx any] interface {
	Enqueue(ctx context.Context, tx Tx, events ...any) error
}

// Transactor begins and ends transactions of type Tx: sqldb.DB[Tx] is one.
type Transactor[Tx any] interface {
	Begin(ctx context.Context) (Tx, error)
	Commit(ctx context.Context, tx Tx) error
	Rollback(ctx context.Context, tx Tx) error
}

// ErrEventLoop is returned when a unit of work dispatched more domain
// events than its bound (MaxEvents).
var ErrEventLoop = errors.New("domain: too many domain events in one unit of work (handlers recording events for each other without end?)")

// UnitOfWork runs a command and its consequences in one transaction: the
// command's changes, the domain events it recorded and everything their
// handlers did, and the integration events for the outbox. It commits all
// of it or none: a failing handler rolls back the command's changes too
// (the "before commit" choice; see AfterCommit for the other one).
type UnitOfWork[Tx any] struct {
	db        Transactor[Tx]
	events    *Dispatcher[Tx]
	outbox    Enqueuer[Tx]
	maxEvents int
}

// Option configures a UnitOfWork.
type Option func(*config)

type config struct{ maxEvents int }

// MaxEvents bounds the domain events one unit of work dispatches:
// handlers that record events for each other without end are a bug, and
// the bound turns it into ErrEventLoop. Default: 10,000.
func MaxEvents(n int) Option { return func(c *config) { c.maxEvents = n } }

// NewUnitOfWork returns a unit of work on db, dispatching domain events
// with events (nil: no handlers) and enqueueing integration events to
// outbox (nil: Publish fails the unit of work).
func NewUnitOfWork[Tx any](db Transactor[Tx], events *Dispatcher[Tx], outbox Enqueuer[Tx], opts ...Option) (*UnitOfWork[Tx], error) {
	if db == nil {
		return nil, errors.New("domain: NewUnitOfWork: nil database: pass a sqldb.DB or another Transactor")
	}
	cfg := config{maxEvents: 10_000}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("domain: NewUnitOfWork: option %d is nil", i+1)
		}
		o(&cfg)
	}
	if cfg.maxEvents < 1 {
		return nil, fmt.Errorf("domain: MaxEvents(%d): want at least 1", cfg.maxEvents)
	}
	if events == nil {
		events = NewDispatcher[Tx]()
	}
	return &UnitOfWork[Tx]{db: db, events: events, outbox: outbox, maxEvents: cfg.maxEvents}, nil
}

// Do begins a transaction, runs cmd in it, dispatches the domain events
// recorded on the scope and on the aggregates it tracks (each to its
// handlers in registration order, the events in the order recorded, those
// recorded by handlers after the ones before them), enqueues the
// integration events published on the scope, and commits. If any step
// fails or panics, the transaction is rolled back and nothing of it
// remains, the outbox rows included.
func (u *UnitOfWork[Tx]) Do(ctx context.Context, cmd func(ctx context.Context, s *Scope[Tx]) error) (err error) {
	switch {
	case u == nil || u.db == nil:
		return errors.New("domain: UnitOfWork.Do: not made by NewUnitOfWork")
	case ctx == nil:
		return errors.New("domain: UnitOfWork.Do: nil context")
	case cmd == nil:
		return errors.New("domain: UnitOfWork.Do: nil command")
	}
	tx, err := u.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("domain: unit of work: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = u.db.Rollback(context.WithoutCancel(ctx), tx)
		}
	}()
	s := &Scope[Tx]{Tx: tx}
	if err := u.run(ctx, s, cmd); err != nil {
		return err
	}
	if err := u.db.Commit(ctx, tx); err != nil {
		return fmt.Errorf("domain: unit of work: commit: %w", err)
	}
	committed = true
	for _, fn := range s.after {
		fn(ctx)
	}
	return nil
}

// In runs cmd and its consequences, as Do does, in tx, a transaction the
// caller owns and commits: for a command run by a transactional consumer
// handler, say, whose transaction also holds the processed-message row.
// AfterCommit functions are the caller's to run: In returns them.
func (u *UnitOfWork[Tx]) In(ctx context.Context, tx Tx, cmd func(ctx context.Context, s *Scope[Tx]) error) (afterCommit []func(context.Context), err error) {
	switch {
	case u == nil || u.db == nil:
		return nil, errors.New("domain: UnitOfWork.In: not made by NewUnitOfWork")
	case ctx == nil:
		return nil, errors.New("domain: UnitOfWork.In: nil context")
	case cmd == nil:
		return nil, errors.New("domain: UnitOfWork.In: nil command")
	}
	s := &Scope[Tx]{Tx: tx}
	if err := u.run(ctx, s, cmd); err != nil {
		return nil, err
	}
	return s.after, nil
}

func (u *UnitOfWork[Tx]) run(ctx context.Context, s *Scope[Tx], cmd func(ctx context.Context, s *Scope[Tx]) error) error {
	if err := cmd(ctx, s); err != nil {
		return err
	}
	s.take()
	for n := 0; len(s.domain) > 0; n++ {
		if n >= u.maxEvents {
			return fmt.Errorf("%w: more than %d", ErrEventLoop, u.maxEvents)
		}
		ev := s.domain[0]
		s.domain = s.domain[1:]
		for _, h := range u.events.handlers[reflect.TypeOf(ev)] {
			if err := h(ctx, s, ev); err != nil {
				return fmt.Errorf("domain: event %T: %w", ev, err)
			}
			s.take()
		}
	}
	if len(s.integration) == 0 {
		return nil
	}
	if u.outbox == nil {
		return errors.New("domain: integration events published in a unit of work without an outbox")
	}
	if err := u.outbox.Enqueue(ctx, s.Tx, s.integration...); err != nil {
		return fmt.Errorf("domain: unit of work: enqueue: %w", err)
	}
	return nil
}
