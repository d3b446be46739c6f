package deadletter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evbus/evbus/wire"
)

// Manager holds one consumer group's dead letters, their ledger and their
// replays in memory and follows them: each call first reads what was
// written since the last one (a metadata request and an offsets request
// when nothing was), so it answers in well under a second with 100,000
// dead letters in the group.
//
// It follows the group's dead-letter topics ("<topic>.<group>.dlt"), the
// replay topics of those topics ("<topic>.<group>.replay": which dead
// letters have a replay record, by dlt-replay-of) and the group's ledger
// (wire.LedgerTopic), each from its start; topics created later are
// followed from the call after their creation. Reading never writes: the
// ledger topic is created by the first action, not before.
//
// Actions (Replay, Discard, Park, Reveal) record ledger entries; they run
// one at a time per Manager. Run one Manager per group for operator
// actions: two writers of one dead letter at once are detected
// (ErrStaleWrite), not prevented. A Manager is safe for concurrent use.
type Manager struct {
	group string
	cl    *kgo.Client // the caller's: writes ledger and replay records
	adm   *kadm.Client
	cfg   managerConfig

	act sync.Mutex // held by an action for its whole run

	mu      sync.Mutex // guards what follows: the view read so far
	f       *follower  // the dead-letter and replay topics
	ledger  *Ledger    // nil until the ledger topic exists
	dlts    topics     // the group's dead-letter topics
	noTopic *NoTopicError
	letters map[string]*letter // by ID
	order   []*letter          // oldest failure first when sorted is true
	sorted  bool
	sent    map[string]sent              // replay records, by the ID of the dead letter they replay
	recs    map[string]wire.LedgerRecord // the latest ledger record, by dead-letter ID
}

// letter is a dead letter as the Manager holds it.
type letter struct {
	d       wire.DeadLetter
	id      string
	fp      Fingerprint
	replays int // its dlt-replay-count, 0 when it has none or a bad one
}

// sent is what the replay topics hold of one dead letter.
type sent struct {
	records int // replay records of it
	count   int // the highest dlt-replay-count among them
}

// Letter is one dead letter of a group with what happened to it.
type Letter struct {
	wire.DeadLetter
	ID          string // wire.DeadLetterID: "<dead-letter topic>/<partition>/<offset>"
	Fingerprint Fingerprint
	State       wire.LedgerState  // open when the ledger has no record of it
	Ledger      wire.LedgerRecord // its ledger record, with the whole history; Seq 0 when none
	// Replays is how often its event was replayed: the dlt-replay-count of
	// its latest replay record, or its own (that of the replay it failed
	// in), whichever is higher.
	Replays int
	// Sent counts the replay records of this dead letter in the replay
	// topics: one per replay entry of its history, never more.
	Sent int
}

// FingerprintGroup is the dead letters of one cause and their states.
type FingerprintGroup struct {
	Group
	States map[wire.LedgerState]int // dead letters by state; states none has are absent
}

// ErrNotFound is wrapped by the error for a dead-letter ID the group's
// dead-letter topics do not hold.
var ErrNotFound = errors.New("deadletter: no such dead letter")

// ManagerOption configures a Manager. An option only records its value;
// NewManager checks them.
type ManagerOption func(*managerConfig)

type managerConfig struct {
	maxReplays int
	batch      int
	rate       float64
	warn       func(error)
	progress   func(read, total int)
}

// MaxReplays is the loop guard's limit: a dead letter whose
// dlt-replay-count is k or more (its event was replayed k times and
// failed each time) is parked instead of replayed by a bulk selection.
// Default wire.ReplayLimit (3), the consumer's default too.
func MaxReplays(k int) ManagerOption { return func(c *managerConfig) { c.maxReplays = k } }

// ReplayBatch is how many dead letters an action records and sends at a
// time: ledger entries of a batch are written first, then its replay
// records. Default 500.
func ReplayBatch(n int) ManagerOption { return func(c *managerConfig) { c.batch = n } }

// ReplayRate sends at most perSecond replay records a second (0: no
// limit, the default), to spare the group a burst.
func ReplayRate(perSecond float64) ManagerOption {
	return func(c *managerConfig) { c.rate = perSecond }
}

// ReadProgress calls fn after each record a call reads from the
// dead-letter and replay topics, with how many it read and how many it
// has to read (NewManager's first read is the long one). It runs on the
// reading goroutine: keep it short. Default: none.
func ReadProgress(fn func(read, total int)) ManagerOption {
	return func(c *managerConfig) { c.progress = fn }
}

// Warn calls fn with the error of each record the Manager leaves out: a
// record of a dead-letter topic that is not a dead letter, a ledger
// record that does not parse or was written on a stale base. Default:
// they are left out silently.
func Warn(fn func(error)) ManagerOption { return func(c *managerConfig) { c.warn = fn } }

// NewManager returns the Manager of group's dead letters, having read
// them. cl writes (it must not be transactional); reads go through a
// client of cl's connection options. Close it when done; cl stays the
// caller's.
func NewManager(ctx context.Context, cl *kgo.Client, group string, opts ...ManagerOption) (*Manager, error) {
	switch {
	case ctx == nil:
		return nil, errors.New("deadletter: NewManager: nil context")
	case cl == nil:
		return nil, errors.New("deadletter: NewManager: nil client: pass a kgo.Client")
	}
	if err := wire.ValidLedgerTopic(group); err != nil {
		return nil, fmt.Errorf("deadletter: NewManager: %w", err)
	}
	c := managerConfig{maxReplays: wire.ReplayLimit, batch: 500}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("deadletter: NewManager: option %d is nil", i+1)
		}
		o(&c)
	}
	switch {
	case c.maxReplays < 1:
		return nil, fmt.Errorf("deadletter: NewManager: MaxReplays(%d): want 1 or more", c.maxReplays)
	case c.batch < 1:
		return nil, fmt.Errorf("deadletter: NewManager: ReplayBatch(%d): want 1 or more", c.batch)
	case c.rate < 0 || math.IsNaN(c.rate) || math.IsInf(c.rate, 0):
		return nil, fmt.Errorf("deadletter: NewManager: ReplayRate(%v): want 0 (no limit) or more", c.rate)
	}
	f, err := newFollower(cl)
	if err != nil {
		return nil, fmt.Errorf("deadletter: NewManager: %w", err)
	}
	m := &Manager{
		group: group, cl: cl, adm: kadm.NewClient(cl), cfg: c, f: f,
		letters: make(map[string]*letter),
		sent:    make(map[string]sent),
		recs:    make(map[string]wire.LedgerRecord),
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.catchUp(ctx); err != nil {
		m.closeLocked()
		return nil, err
	}
	return m, nil
}

// Group returns the consumer group whose dead letters m holds.
func (m *Manager) Group() string { return m.group }

// Close stops following; the client given to NewManager is the caller's.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closeLocked()
}

func (m *Manager) closeLocked() {
	m.f.close()
	if m.ledger != nil {
		m.ledger.Close()
	}
}

// catchUp reads what was written since the last call. The caller holds mu.
func (m *Manager) catchUp(ctx context.Context) error {
	all, err := topicNames(ctx, m.cl)
	if err != nil {
		return fmt.Errorf("deadletter: group %s: list topics: %w", m.group, err)
	}
	var follow []string
	groups := make(topics) // every group with a dead-letter topic
	m.dlts = make(topics)
	for t := range all {
		of, g, ok := deadLetterTopicOf(t, all.has)
		if !ok {
			continue
		}
		groups[g] = struct{}{}
		if g != m.group {
			continue
		}
		m.dlts[t] = struct{}{}
		follow = append(follow, t)
		if r := wire.ReplayTopic(of, m.group); all.has(r) {
			follow = append(follow, r)
		}
	}
	slices.Sort(follow) // the order progress reports and records arrive in
	m.noTopic = nil
	if len(m.dlts) == 0 {
		m.noTopic = &NoTopicError{Group: m.group, Groups: groups.sorted()}
	}
	if err := m.f.catchUp(ctx, follow, m.apply, m.cfg.progress); err != nil {
		return fmt.Errorf("deadletter: group %s: %w", m.group, err)
	}
	if m.ledger == nil && all.has(wire.LedgerTopic(m.group)) {
		if err := m.openLedger(ctx); err != nil {
			return err
		}
	}
	if m.ledger == nil {
		return nil
	}
	return m.readLedger(ctx)
}

// topics is a set of topic names.
type topics map[string]struct{}

func (ts topics) has(t string) bool { _, ok := ts[t]; return ok }

// sorted returns the names of ts, sorted.
func (ts topics) sorted() []string { return slices.Sorted(maps.Keys(ts)) }

// topicNames lists the cluster's topics with a metadata request of its
// own: kadm's answers from a cache up to kgo.MetadataMinAge old, and a
// Manager sees a topic created by another client in its next call.
func topicNames(ctx context.Context, cl *kgo.Client) (topics, error) {
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := make(topics, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				continue
			}
			return nil, fmt.Errorf("topic %s: %w", *t.Topic, err)
		}
		out[*t.Topic] = struct{}{}
	}
	return out, nil
}

// openLedger opens the group's ledger (creating its topic). The caller
// holds mu.
func (m *Manager) openLedger(ctx context.Context) error {
	l, err := OpenLedger(ctx, m.cl, m.adm, m.group)
	if err != nil {
		return err
	}
	m.ledger = l
	return nil
}

// readLedger takes the ledger records written since the last call. The
// caller holds mu.
func (m *Manager) readLedger(ctx context.Context) error {
	changed, warns, err := m.ledger.changes(ctx)
	if err != nil {
		return err
	}
	for id, r := range changed {
		if r.Seq == 0 {
			delete(m.recs, id)
			continue
		}
		m.recs[id] = r
	}
	if m.cfg.warn != nil {
		for _, w := range warns {
			m.cfg.warn(w)
		}
	}
	return nil
}

// apply takes one record of a dead-letter or replay topic into the view.
func (m *Manager) apply(r *kgo.Record) {
	if !m.dlts.has(r.Topic) { // a replay topic's record
		if of := wire.ReplayOf(r); of != "" {
			n, _ := wire.ReplayCount(r)
			s := m.sent[of]
			s.records++
			s.count = max(s.count, n)
			m.sent[of] = s
		}
		return
	}
	d, err := wire.ParseDeadLetter(r)
	if err != nil {
		if m.cfg.warn != nil {
			m.cfg.warn(fmt.Errorf("deadletter: %s/%d/%d: %w", r.Topic, r.Partition, r.Offset, err))
		}
		return
	}
	n, _ := wire.ReplayCount(r)
	l := &letter{d: d, id: wire.DeadLetterID(r), fp: FingerprintOf(d), replays: n}
	m.letters[l.id] = l
	m.order = append(m.order, l)
	m.sorted = false
}

// view catches up and returns the letters, oldest failure first. The
// caller holds mu.
func (m *Manager) view(ctx context.Context) ([]*letter, error) {
	if err := m.catchUp(ctx); err != nil {
		return nil, err
	}
	if !m.sorted {
		slices.SortStableFunc(m.order, func(a, b *letter) int {
			if c := a.d.FailedAt.Compare(b.d.FailedAt); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		})
		m.sorted = true
	}
	return m.order, nil
}

// letterOf is l as the caller sees it. The caller holds mu.
func (m *Manager) letterOf(l *letter) Letter {
	out := Letter{DeadLetter: l.d, ID: l.id, Fingerprint: l.fp, State: wire.LedgerOpen}
	if r, ok := m.recs[l.id]; ok {
		out.Ledger, out.State = r, r.State
	}
	s := m.sent[l.id]
	out.Replays, out.Sent = max(l.replays, s.count), s.records
	return out
}

// Groups returns the group's dead letters grouped by fingerprint, in
// GroupBy's order, each with its dead letters counted by state. A group
// without a dead-letter topic is a *NoTopicError.
func (m *Manager) Groups(ctx context.Context) ([]FingerprintGroup, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ls, err := m.view(ctx)
	if err != nil {
		return nil, err
	}
	if m.noTopic != nil {
		return nil, m.noTopic
	}
	states := make(map[string]map[wire.LedgerState]int)
	for _, l := range ls {
		if states[l.fp.ID] == nil {
			states[l.fp.ID] = make(map[wire.LedgerState]int)
		}
		st := wire.LedgerOpen
		if r, ok := m.recs[l.id]; ok {
			st = r.State
		}
		states[l.fp.ID][st]++
	}
	// The fingerprints were taken once, as the dead letters were read.
	gs := groupBy(len(ls), func(i int) (wire.DeadLetter, Fingerprint) { return ls[i].d, ls[i].fp })
	out := make([]FingerprintGroup, len(gs))
	for i, g := range gs {
		out[i] = FingerprintGroup{Group: g, States: states[g.Fingerprint.ID]}
	}
	return out, nil
}

// List returns the dead letters sel selects, oldest failure first. An
// empty Selection selects nothing; Selection{All: true} selects them all.
// A group without a dead-letter topic is a *NoTopicError; an ID of
// sel.IDs that the group does not hold is an error wrapping ErrNotFound.
func (m *Manager) List(ctx context.Context, sel Selection) ([]Letter, error) {
	if err := sel.check(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.list(ctx, sel)
}

// list is List; the caller holds mu.
func (m *Manager) list(ctx context.Context, sel Selection) ([]Letter, error) {
	ls, err := m.view(ctx)
	if err != nil {
		return nil, err
	}
	if m.noTopic != nil {
		return nil, m.noTopic
	}
	if len(sel.IDs) > 0 {
		return m.byID(sel)
	}
	if sel.empty() {
		return nil, nil
	}
	var out []Letter
	for _, l := range ls {
		if !sel.matches(l) {
			continue
		}
		if x := m.letterOf(l); sel.matchesState(x.State) {
			out = append(out, x)
		}
	}
	return out, nil
}

// byID returns the letters of sel.IDs that sel's other criteria keep,
// oldest failure first. The caller holds mu.
func (m *Manager) byID(sel Selection) ([]Letter, error) {
	var out []Letter
	var missing []string
	seen := make(map[string]struct{}, len(sel.IDs))
	for _, id := range sel.IDs {
		l, ok := m.letters[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		if _, dup := seen[id]; dup || !sel.matches(l) {
			continue
		}
		seen[id] = struct{}{}
		if x := m.letterOf(l); sel.matchesState(x.State) {
			out = append(out, x)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s not in the dead-letter topics of group %s (%s)", ErrNotFound, clipList(missing), m.group, clipList(m.dlts.sorted()))
	}
	slices.SortStableFunc(out, func(a, b Letter) int {
		if c := a.FailedAt.Compare(b.FailedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Get returns the dead letter id (a wire.DeadLetterID), or an error
// wrapping ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (Letter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.view(ctx); err != nil {
		return Letter{}, err
	}
	l, ok := m.letters[id]
	if !ok {
		return Letter{}, fmt.Errorf("%w: %q is not in the dead-letter topics of group %s (%s)", ErrNotFound, clip(id), m.group, clipList(m.dlts.sorted()))
	}
	return m.letterOf(l), nil
}

// DeadLetterTopics returns the group's dead-letter topics as of the last
// call, sorted.
func (m *Manager) DeadLetterTopics() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dlts.sorted()
}
