package bus_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/sqldb/sqlite"
)

type Account struct {
	bus.Recorder
	ID      string
	Balance int
}

type Deposited struct {
	Account string
	Amount  int
}

func (a *Account) Deposit(n int) {
	a.Balance += n
	a.Record(Deposited{Account: a.ID, Amount: n})
}

func ExampleUnitOfWork() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "uow")
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "bank.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Pool().Close()
	db.Exec(ctx, "CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER)")
	db.Exec(ctx, "CREATE TABLE ledger (account TEXT, amount INTEGER)")

	events := bus.NewDispatcher[*sql.Tx]()
	bus.On(events, func(ctx context.Context, s *bus.Scope[*sql.Tx], ev Deposited) error {
		_, err := s.Tx.ExecContext(ctx, "INSERT INTO ledger VALUES (?, ?)", ev.Account, ev.Amount)
		return err
	})
	uow := bus.NewUnitOfWork(db, events, nil) // pass an outbox to publish integration events

	err = uow.Do(ctx, func(ctx context.Context, s *bus.Scope[*sql.Tx]) error {
		a := &Account{ID: "acc-1"}
		s.Track(a)
		a.Deposit(100)
		_, err := s.Tx.ExecContext(ctx, "INSERT INTO accounts VALUES (?, ?)", a.ID, a.Balance)
		return err
	})
	var n int
	db.Pool().QueryRow("SELECT sum(amount) FROM ledger").Scan(&n)
	fmt.Println(err, n)
	// Output: <nil> 100
}
