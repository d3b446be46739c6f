package outbox

import (
	"context"
	"time"
)

// SetAfterPublish makes r call f after Kafka acknowledged a batch and
// before the batch is marked.
func SetAfterPublish(r *Relay, f func()) { r.afterPublish = f }

// Statements calls run with the statements and arguments of an Exec, for
// the benchmark of the writer's Go work.
func Statements[Tx any](ctx context.Context, o *Outbox[Tx], query string, args []any, events []any, run func(query string, args []any) error) error {
	return o.inserts(ctx, query, args, events, func(q stmt, a []any, _ int) error { return run(q.text, a) })
}

// RelaySession sets up a transaction as the relay sets up its own.
const RelaySession = relaySettings

// DeleteBatch returns the statement and the arguments with which a relay
// deletes the rows ids of shard (DeleteOnPublish).
func DeleteBatch[Tx any](o *Outbox[Tx], shard int, ids []int64) (string, []any) {
	return o.sql.del, o.sql.rowsArgs(shard, ids)
}

// MaxPrepared is how many statement shapes an Outbox runs prepared.
const MaxPrepared = maxPrepared

// SetLogEvery makes r log a lasting failure again after d.
func SetLogEvery(r *Relay, d time.Duration) { r.logEvery = d }

// SetStuckRecheck makes r look at its stuck rows again every d.
func SetStuckRecheck(r *Relay, d time.Duration) { r.stuckRecheck = d }
