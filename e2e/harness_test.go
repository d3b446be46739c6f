package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
)

// Step is the service's event: the seq-th step of the aggregate Key. The
// service writes a business row (key, seq) in the same transaction.
type Step struct {
	Key string `avro:"key"`
	Seq int64  `avro:"seq"`
}

// Annotated is a second event type of the same aggregates, one the
// registry does not know until a service first registers it.
type Annotated struct {
	Key  string `avro:"key"`
	Seq  int64  `avro:"seq"`
	Note string `avro:"note"`
}

const (
	topic      = "steps"
	partitions = 4
	source     = "/e2e-service"
)

var (
	stepEvent      = bus.Event[Step](topic, func(s *Step) string { return s.Key }, bus.Namespace("com.example.e2e"))
	annotatedEvent = bus.Event[Annotated](topic, func(a *Annotated) string { return a.Key }, bus.Namespace("com.example.e2e"))
)

// The tables of the service: its business rows, and the effects its
// consumer applies. effects has no unique constraint: an event applied
// twice must show as two rows, not as a failed transaction. applied
// numbers the effects in the order they were applied.
const serviceDDL = `
CREATE TABLE IF NOT EXISTS steps (key text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (key, seq));
CREATE TABLE IF NOT EXISTS effects (applied bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  key text NOT NULL, seq bigint NOT NULL, event_id text NOT NULL)`

const insertEffect = "INSERT INTO effects (key, seq, event_id) VALUES ($1, $2, $3)"

// key names the i-th aggregate.
func key(i int) string { return fmt.Sprintf("key-%03d", i) }

// keys names aggregates first to first+n-1.
func keys(first, n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = key(first + i)
	}
	return ks
}

// openDB opens the service's database.
func openDB(ctx context.Context, url string) (*sqldb.PgxDB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 12
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return sqldb.Pgx(pool), nil
}

func newEncoder(ctx context.Context, reg *schema.Registry, types ...bus.Registration) (*bus.Encoder, error) {
	return bus.NewEncoder(ctx, reg, bus.Source(source), bus.Types(types...))
}

// groupTiming lets a killed member leave its group quickly (the broker's
// minimum session timeout is lowered for it), bounds how long a rebalance
// waits for a member that died in it, and keeps fetches short.
func groupTiming() []kgo.Opt {
	return []kgo.Opt{
		kgo.SessionTimeout(1500 * time.Millisecond),
		kgo.RebalanceTimeout(4 * time.Second),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}
}

// newConsumer returns the service's idempotent consumer: each batch of
// events is applied, one effects row per event in offset order, in the
// transaction that records the events as processed.
func newConsumer(group string, reg *schema.Registry, db *sqldb.PgxDB, brokers []string, opts ...consumer.Option) (*consumer.Consumer, error) {
	kopts := append(groupTiming(), kgo.SeedBrokers(brokers...))
	opts = append([]consumer.Option{
		consumer.Kafka(kopts...),
		consumer.PerKey(4),
		consumer.DrainTimeout(time.Second), // below the rebalance timeout
		consumer.Logger(logger()),
	}, opts...)
	c, err := consumer.New(group, reg, opts...)
	if err != nil {
		return nil, err
	}
	p, err := consumer.NewProcessed(db)
	if err != nil {
		return nil, err
	}
	consumer.HandleBatchTx(c, stepEvent, p, func(ctx context.Context, tx pgx.Tx, evs []*Step, ms []bus.Meta) error {
		b := &pgx.Batch{}
		for i, ev := range evs {
			b.Queue(insertEffect, ev.Key, ev.Seq, ms[i].ID)
		}
		return tx.SendBatch(ctx, b).Close()
	}, consumer.Batch(100))
	consumer.HandleTx(c, annotatedEvent, p, func(ctx context.Context, tx pgx.Tx, ev *Annotated, m bus.Meta) error {
		_, err := tx.Exec(ctx, insertEffect, ev.Key, ev.Seq, m.ID)
		return err
	})
	return c, nil
}

func logger() *slog.Logger {
	if os.Getenv("EVBUS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// insertSteps writes, in tx, a business row and an event per step.
func insertSteps(ctx context.Context, tx pgx.Tx, ob *outbox.Outbox[pgx.Tx], steps []Step) error {
	ks, seqs, evs := make([]string, len(steps)), make([]int64, len(steps)), make([]any, len(steps))
	for i, s := range steps {
		ks[i], seqs[i], evs[i] = s.Key, s.Seq, s
	}
	if _, err := tx.Exec(ctx, "INSERT INTO steps (key, seq) SELECT * FROM unnest($1::text[], $2::int8[])", ks, seqs); err != nil {
		return err
	}
	return ob.Enqueue(ctx, tx, evs...)
}

// commitSteps commits one transaction of the service: a business row and
// an event per step. A failed attempt is rolled back and tried again
// until ctx ends; a duplicate business row means an earlier attempt did
// commit although its COMMIT reported an error (the connection died
// with it), so the steps are there. It returns how many attempts failed.
func commitSteps(ctx context.Context, db *sqldb.PgxDB, ob *outbox.Outbox[pgx.Tx], steps []Step) (failed int, err error) {
	for {
		err = sqldb.InTx(ctx, db, func(tx pgx.Tx) error { return insertSteps(ctx, tx, ob, steps) })
		var pe *pgconn.PgError
		if err == nil || errors.As(err, &pe) && pe.Code == "23505" && pe.TableName == "steps" {
			return failed, nil
		}
		failed++
		select {
		case <-ctx.Done():
			return failed, fmt.Errorf("steps %v: %w (last attempt: %v)", steps[0], ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// writeKeys writes steps from to to-1 of each of ks, perTx steps (of
// different keys) per transaction, the steps of one key in seq order;
// committed is told how many steps are committed after each transaction.
func writeKeys(ctx context.Context, db *sqldb.PgxDB, ob *outbox.Outbox[pgx.Tx], ks []string, from, to, perTx int, committed func(int)) (failed int, err error) {
	n := 0
	for seq := from; seq < to; seq++ {
		for i := 0; i < len(ks); i += perTx {
			var steps []Step
			for _, k := range ks[i:min(i+perTx, len(ks))] {
				steps = append(steps, Step{Key: k, Seq: int64(seq)})
			}
			f, err := commitSteps(ctx, db, ob, steps)
			failed += f
			if err != nil {
				return failed, err
			}
			n += len(steps)
			if committed != nil {
				committed(n)
			}
		}
	}
	return failed, nil
}

// system is one service's world: a broker, a registry, a database with
// the service's tables, the outbox and the processed-message table.
type system struct {
	t        *testing.T
	stack    *devstack.Stack // nil when the test runs the broker and registry itself
	brokers  []string
	registry string
	dbURL    string
	db       *sqldb.PgxDB
	reg      *schema.Registry
	ob       *outbox.Outbox[pgx.Tx]
	adm      *kadm.Client
}

// newSystem migrates the database at dbURL, creates the topic and lowers
// the broker's minimum session timeout.
func newSystem(t *testing.T, brokers []string, registryURL, dbURL string) *system {
	t.Helper()
	ctx := context.Background()
	s := &system{t: t, brokers: brokers, registry: registryURL, dbURL: dbURL}
	var err error
	if s.db, err = openDB(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.db.Pool().Close)
	if _, err := s.db.Pool().Exec(ctx, serviceDDL); err != nil {
		t.Fatal(err)
	}
	if s.reg, err = schema.New(registryURL); err != nil {
		t.Fatal(err)
	}
	enc, err := newEncoder(ctx, s.reg, stepEvent)
	if err != nil {
		t.Fatal(err)
	}
	if s.ob, err = outbox.New(s.db, enc); err != nil {
		t.Fatal(err)
	}
	if err := s.ob.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := consumer.NewProcessed(s.db)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	kcl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kcl.Close)
	s.adm = kadm.NewClient(kcl)
	if err := bus.CreateTopics(ctx, s.adm, bus.TopicSpec{Name: topic, Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	evbustest.ShortSessions(t, s)
	return s
}

// start gives t a system on the embedded stack and a database of the
// package's PostgreSQL server.
func start(t *testing.T) *system {
	t.Helper()
	stack := evbustest.Start(t)
	s := newSystem(t, stack.Brokers(), stack.RegistryURL(), evbustest.PostgresDatabase(t))
	s.stack = stack
	return s
}

// write runs writers concurrent writers of steps from to to-1 of each of
// their keysEach keys (writer w owns keys w*keysEach to
// (w+1)*keysEach-1), five steps per transaction, and returns how many
// attempts failed.
func (s *system) write(writers, keysEach, from, to int) int {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for w := range writers {
		wg.Go(func() {
			f, err := writeKeys(ctx, s.db, s.ob, keys(w*keysEach, keysEach), from, to, 5, nil)
			if err != nil {
				s.t.Errorf("writer %d: %v", w, err)
			}
			mu.Lock()
			failed += f
			mu.Unlock()
		})
	}
	wg.Wait()
	return failed
}

// writing runs write in the background; the channel gives its result
// once the writers are done.
func (s *system) writing(writers, keysEach, from, to int) <-chan int {
	failed := make(chan int, 1)
	go func() { failed <- s.write(writers, keysEach, from, to) }()
	return failed
}

// relay runs a relay in this process until the test ends.
func (s *system) relay(opts ...outbox.RelayOption) {
	s.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.brokers...))
	if err != nil {
		s.t.Fatal(err)
	}
	r, err := s.ob.Relay(cl, append([]outbox.RelayOption{outbox.TakeoverInterval(200 * time.Millisecond), outbox.MaxBackoff(time.Second)}, opts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
			s.t.Errorf("relay: %v", err)
		}
	}()
	s.t.Cleanup(func() { cancel(); <-done; cl.Close() })
}

// consumer runs a member of group in this process until the test ends.
func (s *system) consumer(group string, opts ...consumer.Option) *consumer.Consumer {
	s.t.Helper()
	c, err := newConsumer(group, s.reg, s.db, s.brokers, append([]consumer.Option{consumer.CommitInterval(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(context.Background()); err != nil {
			s.t.Errorf("consumer: %v", err)
		}
	}()
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			s.t.Errorf("consumer Close: %v", err)
		}
		<-done
	})
	return c
}

// count runs a count query on the service's database; -1 when it fails
// (the database may be down).
func (s *system) count(query string, args ...any) int64 {
	var n int64
	if err := s.db.Pool().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		return -1
	}
	return n
}

// Brokers and RegistryURL make a system an evbustest.Cluster, whoever
// runs its broker and registry.
func (s *system) Brokers() []string   { return s.brokers }
func (s *system) RegistryURL() string { return s.registry }

// records returns how many records the topic holds.
func (s *system) records() int64 { return evbustest.Records(s.t, s, topic) }

// committed returns the group's committed offsets of the topic.
func (s *system) committed(group string) map[int32]int64 {
	return evbustest.Committed(s.t, s, group, topic)
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

var waitFor = testkit.WaitForState

// waitEffects waits until the service's consumers applied n effects.
func (s *system) waitEffects(what string, n int64) {
	s.t.Helper()
	waitFor(s.t, what, func() (bool, string) {
		got := s.count("SELECT count(*) FROM effects")
		return got >= n, fmt.Sprint(got, " effects")
	})
}

// outcome is what the checker found.
type outcome struct {
	Steps, Effects int   // committed business rows, effects applied
	Records        int64 // records in the topic: Steps plus re-publications
}

// settle waits until the system is at rest: the outbox is empty and
// group has committed every record of the topic.
func (s *system) settle(group string) {
	s.t.Helper()
	waitFor(s.t, "the outbox published and every record handled and committed", func() (bool, string) {
		backlog := s.count("SELECT count(*) FROM evbus_outbox")
		if backlog != 0 {
			return false, fmt.Sprintf("outbox backlog %d, %d steps, %d effects", backlog, s.count("SELECT count(*) FROM steps"), s.count("SELECT count(*) FROM effects"))
		}
		ends, err := s.adm.ListEndOffsets(context.Background(), topic)
		if err != nil {
			return false, err.Error()
		}
		done := s.committed(group)
		ok := true
		ends.Each(func(o kadm.ListedOffset) { ok = ok && done[o.Partition] == o.Offset })
		return ok, fmt.Sprintf("end offsets %v, committed %v, %d steps, %d effects", ends.Offsets(), done, s.count("SELECT count(*) FROM steps"), s.count("SELECT count(*) FROM effects"))
	})
}

// check waits until the system settles, then checks the promise: each
// committed step's effect applied exactly once, in seq order per key; no
// effect, and no outbox row, of anything that did not commit; never (the
// steps of transactions killed before their commit) nowhere.
func (s *system) check(group string, never ...Step) outcome {
	s.t.Helper()
	s.settle(group)
	t, ctx := s.t, context.Background()
	committed := map[Step]bool{}
	rows, err := s.db.Pool().Query(ctx, "SELECT key, seq FROM steps")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st Step
		if err := rows.Scan(&st.Key, &st.Seq); err != nil {
			t.Fatal(err)
		}
		committed[st] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	applied := map[Step]int{}
	ids := map[string]int{}
	last := map[string]int64{}
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else if len(problems) == 20 {
			problems = append(problems, "...")
		}
	}
	n := 0
	rows, err = s.db.Pool().Query(ctx, "SELECT applied, key, seq, event_id FROM effects ORDER BY applied")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			at int64
			st Step
			id string
		)
		if err := rows.Scan(&at, &st.Key, &st.Seq, &id); err != nil {
			t.Fatal(err)
		}
		n++
		if !committed[st] {
			report("effect #%d: %s/%d (event %s) was never committed", at, st.Key, st.Seq, id)
		}
		if applied[st]++; applied[st] == 2 {
			report("effect #%d: %s/%d applied twice", at, st.Key, st.Seq)
		}
		if ids[id]++; ids[id] == 2 {
			report("effect #%d: event %s applied twice", at, id)
		}
		if prev, ok := last[st.Key]; ok && st.Seq <= prev {
			report("effect #%d: %s/%d applied after %s/%d", at, st.Key, st.Seq, st.Key, prev)
		}
		last[st.Key] = st.Seq
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for st := range committed {
		if applied[st] == 0 {
			if lost++; lost <= 10 {
				report("%s/%d committed, its effect never applied", st.Key, st.Seq)
			}
		}
	}
	for _, st := range never {
		if committed[st] || applied[st] > 0 {
			report("%s/%d of a transaction that never committed: committed %v, applied %d times", st.Key, st.Seq, committed[st], applied[st])
		}
	}
	if rows := s.count("SELECT count(*) FROM evbus_outbox") + s.count("SELECT count(*) FROM evbus_outbox_published"); rows != int64(len(committed)) {
		report("%d outbox rows (unpublished and published) for %d committed steps", rows, len(committed))
	}
	out := outcome{Steps: len(committed), Effects: n, Records: s.records()}
	if out.Records < int64(out.Steps) {
		report("%d records in Kafka for %d committed steps", out.Records, out.Steps)
	}
	if len(problems) > 0 {
		t.Errorf("the promise is broken (%+v, %d lost):\n%s", out, lost, strings.Join(problems, "\n"))
	}
	return out
}

// childEnv carries a child process's configuration, as JSON.
const childEnv = "EVBUS_E2E_CHILD"

// childConfig says what a child process (the test binary, started again)
// runs until it is killed.
type childConfig struct {
	Role     string // "writer", "open", "relay" or "consumer"
	DB       string
	Registry string
	Brokers  []string

	Keys []string // writer, open: the aggregates it writes
	Seq  int      // writer: steps 0 to Seq-1 of each key; open: the seq it writes

	KillAfterAcks int // relay: SIGKILL itself when Kafka acknowledged this many records
	BatchSize     int // relay

	Group          string        // consumer
	ClientID       string        // consumer
	CommitInterval time.Duration // consumer
}

// proc is a running child process.
type proc struct {
	t      *testing.T
	s      *system
	role   string
	cmd    *exec.Cmd
	lines  chan string
	exited chan struct{}
}

// child starts a child process running cfg; the test kills it at the
// latest when it ends.
func (s *system) child(cfg childConfig) *proc {
	s.t.Helper()
	// The child's sessions are named after its role in pg_stat_activity.
	u, err := url.Parse(s.dbURL)
	if err != nil {
		s.t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", "e2e-"+cfg.Role)
	u.RawQuery = q.Encode()
	cfg.DB, cfg.Registry, cfg.Brokers = u.String(), s.registry, s.brokers
	js, err := json.Marshal(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	p := &proc{t: s.t, s: s, role: cfg.Role, cmd: cmd, lines: make(chan string, 1024), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		_ = cmd.Wait()
		close(p.exited)
	}()
	s.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// next returns the child's next line of output, failing the test if the
// child exits first or says nothing for 90 s.
func (p *proc) next(what string) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.exited
			p.t.Fatalf("the %s child exited (%v) before it said %s", p.role, p.cmd.ProcessState, what)
		}
		return l
	case <-time.After(90 * time.Second):
		p.t.Fatalf("the %s child did not say %s within 90s", p.role, what)
	}
	return ""
}

// kill kills the child with SIGKILL (unless it did so itself), checks
// that SIGKILL is what ended it, and waits until PostgreSQL has ended the
// child's sessions: a COMMIT the child sent just before it died may land
// until then.
func (p *proc) kill() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		p.t.Fatalf("the %s child ended with %v, not by SIGKILL", p.role, p.cmd.ProcessState)
	}
	waitFor(p.t, "the killed child's database sessions to end", func() (bool, string) {
		n := p.s.sessions(p.role, "")
		return n == 0, fmt.Sprint(n, " sessions")
	})
}

// sessions counts the sessions of the child of role on the service's
// database, in state if not "".
func (s *system) sessions(role, state string) int64 {
	return s.count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND ($2 = '' OR state = $2)", "e2e-"+role, state)
}
