package deadletter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/wire"
)

// Ledger reads and writes a consumer group's dead-letter ledger: the
// compacted topic wire.LedgerTopic(group), one record per dead letter
// holding its state and whole history (docs/wire-format.md, "Dead-letter
// ledger"). Record appends an entry after the state machine
// (wire.LedgerTransition); States reads the latest record of every dead
// letter.
//
// Two writers: Kafka has no conditional write, so the last record written
// for a dead letter wins, in the log and after compaction. Record reads
// the topic to its end before it appends, under mu, so one Ledger never
// writes on a stale base; two Ledgers (or processes) writing the same dead
// letter at the same moment can each write on the same base (the same
// seq), and the later record replaces the earlier one's entry. That is
// not prevented, but it is seen: the later writer's Record, and every
// States that reads both records, return an error wrapping ErrStaleWrite
// naming the dead letter, until compaction removes the earlier record.
// Run one writer per group for operator actions to avoid it.
//
// A Ledger is safe for concurrent use.
type Ledger struct {
	group string
	topic string
	cl    *kgo.Client // the caller's: writes
	adm   *kadm.Client

	mu     sync.Mutex // guards what follows: the view read so far, and writes
	f      *follower  // reads the topic from the start
	latest map[string]wire.LedgerRecord
	// dirty holds the dead letters whose record changed since the last
	// changes call; nil until the first (only a Manager asks).
	dirty map[string]struct{}
	// warns holds, once changes was called, the error of each record read
	// since that does not parse or was written on a stale base.
	warns []error
	bad   map[string]error // keys whose latest record does not parse
	stale map[string]staleWrite
	// own holds the records this Ledger wrote and has not read back yet,
	// by their place: reading one back takes it from here instead of
	// parsing its bytes again (a quarter of a replay's CPU otherwise).
	own map[place]wire.LedgerRecord
}

// place is a record's partition and offset.
type place struct {
	partition int32
	offset    int64
}

// staleWrite is the last record of a key written on a stale base.
type staleWrite struct {
	partition int32
	offset    int64
	err       error
}

// ErrStaleWrite is wrapped by States' error when, for a dead letter, a
// record in the ledger does not carry a higher seq than the one before it:
// two writers appended on the same base and the later one's record
// replaced the other's entry.
var ErrStaleWrite = errors.New("deadletter: ledger record written on a stale base")

// ledgerPartitions is the ledger's partition count when OpenLedger creates
// it: one, so reading it to its end is one fetch stream.
const ledgerPartitions = 1

// OpenLedger opens group's ledger, creating its topic (compacted, one
// partition) when it does not exist, and reads it to its end. cl writes
// (it must not be transactional); a second client with cl's connection
// options (seeds, TLS, SASL, dialer), but none of its producer or consumer
// options, reads. A topic that exists but is not compacted is refused: its
// records would expire.
func OpenLedger(ctx context.Context, cl *kgo.Client, adm *kadm.Client, group string) (*Ledger, error) {
	switch {
	case ctx == nil:
		return nil, errors.New("deadletter: OpenLedger: nil context")
	case cl == nil:
		return nil, errors.New("deadletter: OpenLedger: nil client: pass a kgo.Client")
	case adm == nil:
		return nil, errors.New("deadletter: OpenLedger: nil admin client: pass kadm.NewClient(cl)")
	}
	if err := wire.ValidLedgerTopic(group); err != nil {
		return nil, fmt.Errorf("deadletter: OpenLedger: %w", err)
	}
	topic := wire.LedgerTopic(group)
	if err := bus.CreateTopics(ctx, adm, bus.TopicSpec{
		Name:       topic,
		Partitions: ledgerPartitions,
		Configs:    map[string]string{"cleanup.policy": "compact"},
	}); err != nil {
		return nil, fmt.Errorf("deadletter: OpenLedger: %w", err)
	}
	if err := checkCompacted(ctx, adm, topic); err != nil {
		return nil, err
	}
	f, err := newFollower(cl)
	if err != nil {
		return nil, fmt.Errorf("deadletter: OpenLedger: %w", err)
	}
	l := &Ledger{
		group: group, topic: topic, cl: cl, adm: adm, f: f,
		latest: make(map[string]wire.LedgerRecord),
		bad:    make(map[string]error),
		stale:  make(map[string]staleWrite),
		own:    make(map[place]wire.LedgerRecord),
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.catchUp(ctx); err != nil {
		f.close()
		return nil, err
	}
	return l, nil
}

// checkCompacted refuses a ledger topic whose cleanup.policy is not
// compact alone: with delete, its history would expire.
func checkCompacted(ctx context.Context, adm *kadm.Client, topic string) error {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("deadletter: OpenLedger: configs of %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("deadletter: OpenLedger: configs of %s: %w", topic, err)
	}
	policy := "delete" // Kafka's default
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy == "compact" {
		return nil
	}
	return fmt.Errorf("deadletter: OpenLedger: topic %s has cleanup.policy=%s: a ledger needs cleanup.policy=compact, or its history expires: alter the topic's config", topic, policy)
}

// Topic returns the ledger's topic, wire.LedgerTopic(group).
func (l *Ledger) Topic() string { return l.topic }

// Close closes the Ledger's reader; the clients passed to OpenLedger are
// the caller's to close.
func (l *Ledger) Close() { l.f.close() }

// Record appends e to the history of the dead letter id (a
// wire.DeadLetterID) and writes the record, after reading the ledger to
// its end. An entry the dead letter's state does not allow is refused with
// an error wrapping wire.ErrLedgerTransition that names the state; so is
// any entry for a dead letter whose latest record does not parse (its
// history is unknown). It returns the record written. It then reads the
// ledger back: when another writer's record of the same dead letter, on the
// same base, landed between its read and its write, its record replaced
// that writer's entry, and it returns the record with an error wrapping
// ErrStaleWrite (of two such writers, the later one learns it).
//
// Record is RecordAll of one change.
func (l *Ledger) Record(ctx context.Context, id string, e wire.LedgerEntry) (wire.LedgerRecord, error) {
	if ctx == nil {
		return wire.LedgerRecord{}, errors.New("deadletter: Ledger.Record: nil context")
	}
	rs, err := l.RecordAll(ctx, []Change{{ID: id, Entry: e}})
	if ce, ok := errors.AsType[*ChangeError](err); ok {
		err = ce.Err
	}
	if len(rs) == 0 {
		return wire.LedgerRecord{}, err
	}
	return rs[0], err
}

// Change is one entry to append to the history of one dead letter, for
// RecordAll.
type Change struct {
	ID    string           // the dead letter's wire.DeadLetterID
	Entry wire.LedgerEntry // Kind, At, Actor and what the kind needs
}

// ChangeError is the error of one change of a RecordAll: refused, not
// written, or written on a stale base. It unwraps to the cause
// (wire.ErrLedgerTransition, ErrStaleWrite, a produce error).
type ChangeError struct {
	Index int    // the change's index in the slice given to RecordAll
	ID    string // its dead letter
	Err   error
}

func (e *ChangeError) Error() string {
	return fmt.Sprintf("deadletter: change %d (%s): %v", e.Index, e.ID, e.Err)
}

func (e *ChangeError) Unwrap() error { return e.Err }

// RecordAll appends each change's entry to its dead letter's history, as
// Record does for one, with one catch-up, one batched write and one read
// back for all of them. Changes of one dead letter are applied in order,
// each on top of the one before.
//
// A change the state machine refuses (or whose dead letter's latest record
// does not parse) is left out and the others are written: out[i] is the
// record written for changes[i], and the zero LedgerRecord (ID "") for a
// change left out or whose write failed. The error joins a *ChangeError
// for each change left out, not written, or written on a stale base
// (ErrStaleWrite, after the read back, as Record); errors.Is and
// errors.As see through it. An error of the catch-up before anything is
// written returns no records.
func (l *Ledger) RecordAll(ctx context.Context, changes []Change) ([]wire.LedgerRecord, error) {
	if ctx == nil {
		return nil, errors.New("deadletter: Ledger.RecordAll: nil context")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.catchUp(ctx); err != nil {
		return nil, err
	}
	out := make([]wire.LedgerRecord, len(changes))
	var errs []error
	refuse := func(i int, err error) {
		errs = append(errs, &ChangeError{Index: i, ID: changes[i].ID, Err: err})
	}
	var recs []*kgo.Record
	var idx []int                              // idx[j]: the change recs[j] writes
	base := make(map[string]wire.LedgerRecord) // this batch's records, by id
	for i, c := range changes {
		if err := l.bad[c.ID]; err != nil {
			refuse(i, fmt.Errorf("deadletter: ledger %s: %s: its latest record does not parse, so its history is unknown: %w", l.topic, c.ID, err))
			continue
		}
		b, ok := base[c.ID]
		if !ok {
			if b, ok = l.latest[c.ID]; !ok {
				b = wire.NewLedgerRecord(l.group, c.ID)
			}
		}
		r, err := wire.AppendLedgerEntry(b, c.Entry)
		if err != nil {
			refuse(i, fmt.Errorf("deadletter: ledger %s: %w", l.topic, err))
			continue
		}
		rec, err := wire.LedgerKafkaRecord(r)
		if err != nil {
			refuse(i, fmt.Errorf("deadletter: ledger %s: %w", l.topic, err))
			continue
		}
		base[c.ID] = r
		out[i] = r
		recs = append(recs, rec)
		idx = append(idx, i)
	}
	if len(recs) == 0 {
		return out, errors.Join(errs...)
	}
	// The view takes the records when it reads them back: another
	// writer's record of the same dead letter on the same base, written
	// between this catch-up and this write, shows then.
	last := make(map[string]*kgo.Record) // the last record written of each id
	for j, res := range l.cl.ProduceSync(ctx, recs...) {
		i := idx[j]
		if res.Err != nil {
			out[i] = wire.LedgerRecord{}
			refuse(i, fmt.Errorf("deadletter: ledger %s: write %s: %w", l.topic, changes[i].ID, res.Err))
			continue
		}
		last[changes[i].ID] = res.Record
		l.own[place{res.Record.Partition, res.Record.Offset}] = out[i]
	}
	if len(last) == 0 {
		return out, errors.Join(errs...)
	}
	if err := l.catchUp(ctx); err != nil {
		return out, errors.Join(append(errs, fmt.Errorf("deadletter: ledger %s: %d records written, but not read back: %w", l.topic, len(last), err))...)
	}
	for j := len(idx) - 1; j >= 0; j-- { // the last change of each id
		i := idx[j]
		id := changes[i].ID
		rec, ok := last[id]
		if !ok || string(rec.Key) != id {
			continue
		}
		delete(last, id) // one error per dead letter
		if w, ok := l.stale[id]; ok && w.partition == rec.Partition && w.offset == rec.Offset {
			refuse(i, fmt.Errorf("%w: %w: another writer appended to the same dead letter at the same time; read States and record again", ErrStaleWrite, w.err))
		}
	}
	return out, errors.Join(errs...)
}

// States reads the ledger to its end and returns the latest record of
// every dead letter in it, by id; a dead letter it lacks is open. Records
// that do not parse (another producer's, or a damaged one) are left out
// and reported, without stopping the read, in an error wrapping
// wire.ErrLedgerRecord that names each one's place: the map is then
// complete but for them. Records written on a stale base are reported in
// an error wrapping ErrStaleWrite; the map holds the latest of them, as
// compaction will.
func (l *Ledger) States(ctx context.Context) (map[string]wire.LedgerRecord, error) {
	if ctx == nil {
		return nil, errors.New("deadletter: Ledger.States: nil context")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.catchUp(ctx); err != nil {
		return nil, err
	}
	out := make(map[string]wire.LedgerRecord, len(l.latest))
	for id, r := range l.latest {
		out[id] = r
	}
	var errs []error
	if len(l.bad) > 0 {
		errs = append(errs, fmt.Errorf("deadletter: ledger %s: %d records do not parse: %w", l.topic, len(l.bad), report(l.bad)))
	}
	if len(l.stale) > 0 {
		byKey := make(map[string]error, len(l.stale))
		for k, w := range l.stale {
			byKey[k] = w.err
		}
		errs = append(errs, fmt.Errorf("%w: ledger %s, %d dead letters: %w", ErrStaleWrite, l.topic, len(l.stale), report(byKey)))
	}
	return out, errors.Join(errs...)
}

// report joins the errors of up to maxReported keys, in key order.
func report(byKey map[string]error) error {
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	errs := make([]error, 0, min(len(keys), maxReported)+1)
	for i, k := range keys {
		if i == maxReported {
			errs = append(errs, fmt.Errorf("and %d more", len(keys)-maxReported))
			break
		}
		errs = append(errs, byKey[k])
	}
	return errors.Join(errs...)
}

// maxReported bounds the unparsable records States names.
const maxReported = 10

// catchUp reads the topic from where it stopped to its current end. The
// caller holds mu.
func (l *Ledger) catchUp(ctx context.Context) error {
	if err := l.f.catchUp(ctx, []string{l.topic}, l.apply, nil); err != nil {
		return fmt.Errorf("deadletter: ledger %s: read: %w", l.topic, err)
	}
	return nil
}

// changes reads the ledger to its end and returns the latest record of
// each dead letter whose record changed since the last call (the first
// call: of every dead letter); a dead letter whose record went (a
// tombstone, or a record that does not parse) has the zero record. warns
// are the errors of the records read since the last call that do not
// parse or were written on a stale base (the first call: of the latest
// record of each dead letter that does not parse, and of every stale
// write read).
func (l *Ledger) changes(ctx context.Context) (changed map[string]wire.LedgerRecord, warns []error, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.catchUp(ctx); err != nil {
		return nil, nil, err
	}
	if l.dirty == nil {
		l.dirty = make(map[string]struct{})
		for _, id := range slices.Sorted(maps.Keys(l.bad)) {
			warns = append(warns, l.badErr(l.bad[id]))
		}
		for _, id := range slices.Sorted(maps.Keys(l.stale)) {
			warns = append(warns, l.staleErr(l.stale[id].err))
		}
		return maps.Clone(l.latest), warns, nil
	}
	changed = make(map[string]wire.LedgerRecord, len(l.dirty))
	for id := range l.dirty {
		changed[id] = l.latest[id]
	}
	clear(l.dirty)
	warns, l.warns = l.warns, nil
	return changed, warns, nil
}

// badErr is the error of a record that does not parse, as changes reports it.
func (l *Ledger) badErr(err error) error {
	return fmt.Errorf("deadletter: ledger %s: %w", l.topic, err)
}

// staleErr is the error of a stale write, as changes reports it.
func (l *Ledger) staleErr(err error) error {
	return fmt.Errorf("%w: ledger %s: %w", ErrStaleWrite, l.topic, err)
}

// apply takes one record read from the topic into the view.
func (l *Ledger) apply(rec *kgo.Record) {
	id := string(rec.Key)
	if l.dirty != nil {
		l.dirty[id] = struct{}{}
	}
	if rec.Value == nil { // a tombstone: the dead letter is forgotten
		delete(l.latest, id)
		delete(l.bad, id)
		return
	}
	r, ok := l.own[place{rec.Partition, rec.Offset}]
	var err error
	if ok {
		delete(l.own, place{rec.Partition, rec.Offset})
	} else {
		r, err = wire.ParseLedgerRecord(rec.Key, rec.Value)
	}
	if err == nil && r.Group != l.group {
		err = fmt.Errorf("%w: key %q: group %q in the ledger of group %q", wire.ErrLedgerRecord, id, r.Group, l.group)
	}
	if err != nil {
		delete(l.latest, id)
		l.bad[id] = fmt.Errorf("partition %d offset %d: %w", rec.Partition, rec.Offset, err)
		if l.dirty != nil {
			l.warns = append(l.warns, l.badErr(l.bad[id]))
		}
		return
	}
	if prev, ok := l.latest[id]; ok && r.Seq <= prev.Seq {
		l.stale[id] = staleWrite{rec.Partition, rec.Offset, fmt.Errorf("%s: partition %d offset %d: seq %d after seq %d: entry %d of the earlier record is lost", id, rec.Partition, rec.Offset, r.Seq, prev.Seq, prev.Seq)}
		if l.dirty != nil {
			l.warns = append(l.warns, l.staleErr(l.stale[id].err))
		}
	}
	delete(l.bad, id)
	l.latest[id] = r
}

// ReadStates returns the latest ledger record of every dead letter in
// group's ledger, by id, as Ledger.States does (its error too), without
// writing anything: a ledger topic that does not exist is not created, and
// holds no record (every dead letter is open). cl's connection options are
// used as OpenLedger uses them.
func ReadStates(ctx context.Context, cl *kgo.Client, adm *kadm.Client, group string) (map[string]wire.LedgerRecord, error) {
	switch {
	case ctx == nil:
		return nil, errors.New("deadletter: ReadStates: nil context")
	case cl == nil:
		return nil, errors.New("deadletter: ReadStates: nil client: pass a kgo.Client")
	case adm == nil:
		return nil, errors.New("deadletter: ReadStates: nil admin client: pass kadm.NewClient(cl)")
	}
	if err := wire.ValidLedgerTopic(group); err != nil {
		return nil, fmt.Errorf("deadletter: ReadStates: %w", err)
	}
	topic := wire.LedgerTopic(group)
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("deadletter: ReadStates: %s: %w", topic, err)
	}
	if !tds.Has(topic) {
		return map[string]wire.LedgerRecord{}, nil
	}
	l, err := OpenLedger(ctx, cl, adm, group)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.States(ctx)
}
