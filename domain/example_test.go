package domain_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evbus/evbus/domain"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

type Account struct {
	domain.Recorder
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

// openBank opens a throwaway SQLite database with the examples' tables,
// and the function that closes and removes it; on failure it prints the
// error and returns a nil database.
func openBank(ctx context.Context) (*sqldb.SQLDB, func()) {
	dir, err := os.MkdirTemp("", "uow")
	if err != nil {
		fmt.Println(err)
		return nil, nil
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "bank.db"))
	if err == nil {
		_, err = db.Exec(ctx, "CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER); CREATE TABLE ledger (account TEXT, amount INTEGER)")
	}
	closeDB := func() {
		if db != nil {
			db.Pool().Close()
		}
		os.RemoveAll(dir)
	}
	if err != nil {
		fmt.Println(err)
		closeDB()
		return nil, nil
	}
	return db, closeDB
}

func ExampleUnitOfWork() {
	ctx := context.Background()
	db, closeDB := openBank(ctx)
	if db == nil {
		return
	}
	defer closeDB()

	events := domain.NewDispatcher[*sql.Tx]()
	domain.On(events, func(ctx context.Context, s *domain.Scope[*sql.Tx], ev Deposited) error {
		_, err := s.Tx.ExecContext(ctx, "INSERT INTO ledger VALUES (?, ?)", ev.Account, ev.Amount)
		return err
	})
	uow, err := domain.NewUnitOfWork(db, events, nil) // pass an outbox to publish integration events
	if err != nil {
		fmt.Println(err)
		return
	}

	err = uow.Do(ctx, func(ctx context.Context, s *domain.Scope[*sql.Tx]) error {
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

// A handler's error rolls back the whole unit of work, the command's own
// change included; AfterCommit functions run only after a commit.
func ExampleOn_rollback() {
	events := domain.NewDispatcher[*sql.Tx]()
	domain.On(events, func(ctx context.Context, s *domain.Scope[*sql.Tx], ev Deposited) error {
		if ev.Amount > 1000 {
			return errors.New("over the daily limit")
		}
		return nil
	})

	ctx := context.Background()
	db, closeDB := openBank(ctx)
	if db == nil {
		return
	}
	defer closeDB()
	uow, err := domain.NewUnitOfWork(db, events, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	deposit := func(id string, amount int) error {
		return uow.Do(ctx, func(ctx context.Context, s *domain.Scope[*sql.Tx]) error {
			a := &Account{ID: id}
			s.Track(a)
			a.Deposit(amount)
			s.AfterCommit(func(context.Context) { fmt.Println("committed", id) })
			_, err := s.Tx.ExecContext(ctx, "INSERT INTO accounts VALUES (?, ?)", a.ID, a.Balance)
			return err
		})
	}
	fmt.Println(deposit("acc-1", 50))
	fmt.Println(deposit("acc-2", 5000))
	var n int
	db.Pool().QueryRow("SELECT count(*) FROM accounts").Scan(&n)
	fmt.Println("accounts:", n)
	// Output:
	// committed acc-1
	// <nil>
	// domain: event domain_test.Deposited: over the daily limit
	// accounts: 1
}
