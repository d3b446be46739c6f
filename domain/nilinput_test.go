package domain_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/evbus/evbus/domain"
	"github.com/evbus/evbus/internal/nilinput"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

// Every public entry point of domain given nil where it needs something,
// or an option it cannot use, returns an error that names the argument or
// the option, and does not panic.
func TestNilInput(t *testing.T) {
	ctx := t.Context()
	var nilCtx context.Context
	db, err := sqlite.Open(ctx, t.TempDir()+"/uow.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Pool().Close()
	sdb := sqldb.DB[*sql.Tx](db)
	uow := newUnitOfWork(t, sdb, nil, nil)
	var nilDB domain.Transactor[*sql.Tx]
	var zero domain.UnitOfWork[*sql.Tx]
	noop := func(context.Context, *domain.Scope[*sql.Tx]) error { return nil }
	for _, c := range []struct {
		name, want string
		fn         func() error
	}{
		{"NewUnitOfWork(nil db)", "NewUnitOfWork: nil database", func() error {
			_, err := domain.NewUnitOfWork(nilDB, nil, nil)
			return err
		}},
		{"NewUnitOfWork(nil option)", "domain: NewUnitOfWork: option 2 is nil", func() error {
			_, err := domain.NewUnitOfWork(sdb, nil, nil, domain.MaxEvents(5), nil)
			return err
		}},
		{"NewUnitOfWork(MaxEvents(0))", "domain: MaxEvents(0): want at least 1", func() error {
			_, err := domain.NewUnitOfWork(sdb, nil, nil, domain.MaxEvents(0))
			return err
		}},
		{"UnitOfWork.Do(nil ctx)", "UnitOfWork.Do: nil context", func() error { return uow.Do(nilCtx, noop) }},
		{"UnitOfWork.Do(nil cmd)", "UnitOfWork.Do: nil command", func() error { return uow.Do(ctx, nil) }},
		{"UnitOfWork.In(nil ctx)", "UnitOfWork.In: nil context", func() error {
			_, err := uow.In(nilCtx, nil, noop)
			return err
		}},
		{"UnitOfWork.In(nil cmd)", "UnitOfWork.In: nil command", func() error {
			_, err := uow.In(ctx, nil, nil)
			return err
		}},
		{"zero UnitOfWork.Do", "not made by NewUnitOfWork", func() error { return zero.Do(ctx, noop) }},
		{"zero UnitOfWork.In", "not made by NewUnitOfWork", func() error {
			_, err := zero.In(ctx, nil, noop)
			return err
		}},
	} {
		nilinput.Call(t, c.name, c.want, c.fn)
	}
}
