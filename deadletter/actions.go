package deadletter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/wire"
)

// Action is what an operator does to dead letters: ActionReplay,
// ActionDiscard or ActionPark (the ledger's entry kinds).
type Action = wire.LedgerEntryKind

// The actions.
const (
	ActionReplay  = wire.ActionReplay
	ActionDiscard = wire.ActionDiscard
	ActionPark    = wire.ActionPark
)

// Actor is who acts, why, and who watches.
type Actor struct {
	Name   string // who: an operator's name (required)
	Reason string // why; required for discard, park and reveal
	// Progress, when not nil, is called after each batch with how many
	// of the dead letters to act on were done, and how many there are.
	Progress func(done, total int)
}

// Step is what an action does, or would do, to one selected dead letter.
type Step struct {
	Letter Letter
	// Do is what happens to it: the action asked for; ActionPark when
	// the loop guard parks it instead of replaying it; "" for nothing.
	Do Action
	// Resume marks the replay of a dead letter whose replay entry was
	// recorded by an earlier, interrupted replay but whose replay record
	// was not sent: the record is sent, and no entry is recorded again.
	Resume bool
	// Why says why nothing happens, or why something else than asked,
	// or which operation a resume finishes; "" when done as asked.
	Why string
}

// Plan is what an action would do to the dead letters a Selection
// selects, in List's order.
type Plan struct {
	Action Action
	Steps  []Step
}

// Count returns how many steps do a: the action, ActionPark, or "" for
// the dead letters left alone.
func (p Plan) Count(a Action) int {
	n := 0
	for _, s := range p.Steps {
		if s.Do == a {
			n++
		}
	}
	return n
}

// Report is what an action did: its Plan's steps as carried out (a step
// the ledger refused at the last moment shows as left alone, with why).
type Report struct {
	Plan
	// Operation is the id the action's ledger entries share.
	Operation string
	// Done counts the steps carried out: entries recorded and, for a
	// replay, records sent.
	Done int
	// CreatedTopics are the replay topics the replay created.
	CreatedTopics []string
}

// Plan returns what the action a on the dead letters sel selects would
// do, as Replay, Discard or Park would do it now, and writes nothing.
func (m *Manager) Plan(ctx context.Context, a Action, sel Selection) (Plan, error) {
	if err := checkAction(a); err != nil {
		return Plan{}, err
	}
	if err := sel.check(); err != nil {
		return Plan{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.plan(ctx, a, sel)
}

func checkAction(a Action) error {
	switch a {
	case ActionReplay, ActionDiscard, ActionPark:
		return nil
	}
	return fmt.Errorf("deadletter: action %q: want replay, discard or park", a)
}

// plan is Plan; the caller holds mu.
func (m *Manager) plan(ctx context.Context, a Action, sel Selection) (Plan, error) {
	ls, err := m.list(ctx, sel)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Action: a, Steps: make([]Step, len(ls))}
	byID := len(sel.IDs) > 0
	for i, l := range ls {
		p.Steps[i] = m.step(a, l, byID)
	}
	return p, nil
}

// step decides what action a does to l, selected by id or in bulk: the
// selection rules of the package doc.
func (m *Manager) step(a Action, l Letter, byID bool) Step {
	s := Step{Letter: l}
	if a == ActionReplay && l.State == wire.LedgerReplaying {
		if l.Sent < l.Ledger.Replays() {
			s.Do, s.Resume = ActionReplay, true
			s.Why = "resumes operation " + lastEntry(l.Ledger, wire.ActionReplay).Operation + ": its replay was recorded, its record not sent"
		} else {
			s.Why = "replaying: its replay was sent, its outcome is awaited"
		}
		return s
	}
	if !byID {
		switch {
		case a == ActionReplay && l.State == wire.LedgerFailedAgain:
			s.Why = "failed again: the dead letter of its failed replay carries it on; replay that one, or this one by id"
			if e := lastEntry(l.Ledger, wire.OutcomeFailed); e.Record != "" {
				s.Why = "failed again: " + e.Record + " carries it on; replay that one, or this one by id"
			}
			return s
		case a == ActionReplay && l.State != wire.LedgerOpen,
			a == ActionPark && l.State == wire.LedgerReplaying:
			s.Why = string(l.State) + ": " + string(a) + "ed only when selected by id"
			return s
		case a == ActionReplay && l.Sent > l.Ledger.Replays():
			s.Why = "replayed before: its replay record is in the replay topic; replay it by id to send it again"
			return s
		case a == ActionReplay:
			if n, err := wire.ReplayCount(l.Record); err != nil || n >= m.cfg.maxReplays {
				s.Do, s.Why = ActionPark, fmt.Sprintf("loop guard: failed after %d replays", n)
				if err != nil {
					s.Why = "loop guard: " + err.Error()
				}
				return s
			}
		}
	}
	if _, err := wire.LedgerTransition(l.State, a); err != nil {
		s.Why = fmt.Sprintf("%s: %s is legal in %s", l.State, a, legalIn(a))
		return s
	}
	s.Do = a
	return s
}

// legalIn lists the states the state machine allows a in.
func legalIn(a Action) string {
	var out []string
	for _, st := range []wire.LedgerState{wire.LedgerOpen, wire.LedgerReplaying, wire.LedgerResolved, wire.LedgerFailedAgain, wire.LedgerParked, wire.LedgerDiscarded} {
		if _, err := wire.LedgerTransition(st, a); err == nil {
			out = append(out, string(st))
		}
	}
	return clipList(out)
}

// lastEntry is the last entry of kind k in r's history.
func lastEntry(r wire.LedgerRecord, k wire.LedgerEntryKind) wire.LedgerEntry {
	for i := len(r.History) - 1; i >= 0; i-- {
		if r.History[i].Kind == k {
			return r.History[i]
		}
	}
	return wire.LedgerEntry{}
}

// Replay sends the dead letters sel selects back to the group that failed
// them, through their replay topics (wire.ReplayTopic, created with the
// partition count of their topic when missing; the group's consumers read
// them), as wire.ReplayRecord builds them. Per batch (ReplayBatch), the
// ledger's replay entries are recorded first, all with the action's
// Operation id, then the records are sent.
//
// A bulk selection replays the dead letters in state open; the loop
// guard parks those whose dlt-replay-count reached MaxReplays instead
// (their park entry says so). Selected by id, a dead letter is replayed
// in any state the ledger's state machine allows (open, failed-again,
// parked, discarded, resolved), loop guard or not. A dead letter in state
// replaying whose replay entry has no replay record yet (an interrupted
// replay) has its record sent, whatever the selection; one whose record
// was sent is left alone. So a replay killed halfway and run again sends
// the rest, and no dead letter's record twice.
//
// An error ends the replay where it is: the Report says what was done,
// and running the same replay again finishes it.
func (m *Manager) Replay(ctx context.Context, sel Selection, by Actor) (Report, error) {
	return m.run(ctx, ActionReplay, sel, by)
}

// Discard records that the dead letters sel selects are given up on
// (those in state open, failed-again or parked); it deletes nothing.
// by.Reason is required.
func (m *Manager) Discard(ctx context.Context, sel Selection, by Actor) (Report, error) {
	return m.run(ctx, ActionDiscard, sel, by)
}

// Park records that the dead letters sel selects are held back from bulk
// replays: those in state open or failed-again, and, selected by id,
// replaying. by.Reason is required.
func (m *Manager) Park(ctx context.Context, sel Selection, by Actor) (Report, error) {
	return m.run(ctx, ActionPark, sel, by)
}

// Reveal records that by was shown the fields (field paths, e.g.
// "customer.email") of the dead letter id's value, and why; the caller
// shows them. An id the group does not hold is an error wrapping
// ErrNotFound.
func (m *Manager) Reveal(ctx context.Context, id string, fields []string, by Actor) error {
	switch {
	case ctx == nil:
		return errors.New("deadletter: Reveal: nil context")
	case by.Name == "":
		return errors.New("deadletter: Reveal: no actor name: say who sees the values")
	case by.Reason == "":
		return errors.New("deadletter: Reveal: no reason: say why the values are shown")
	case len(fields) == 0:
		return errors.New("deadletter: Reveal: no fields: name the field paths shown")
	}
	m.act.Lock()
	defer m.act.Unlock()
	m.mu.Lock()
	_, err := m.view(ctx)
	_, ok := m.letters[id]
	if err == nil && !ok {
		err = fmt.Errorf("%w: %q is not in the dead-letter topics of group %s", ErrNotFound, clip(id), m.group)
	}
	if err == nil && m.ledger == nil {
		err = m.openLedger(ctx)
	}
	l := m.ledger
	m.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = l.Record(ctx, id, wire.LedgerEntry{Kind: wire.ActionReveal, At: time.Now(), Actor: by.Name, Reason: by.Reason, Fields: fields})
	return err
}

// run carries out action a on what sel selects.
func (m *Manager) run(ctx context.Context, a Action, sel Selection, by Actor) (Report, error) {
	switch {
	case ctx == nil:
		return Report{}, fmt.Errorf("deadletter: %s: nil context", a)
	case by.Name == "":
		return Report{}, fmt.Errorf("deadletter: %s: no actor name: say who acts", a)
	case by.Reason == "" && a != ActionReplay:
		return Report{}, fmt.Errorf("deadletter: %s: no reason: say why", a)
	}
	if err := sel.check(); err != nil {
		return Report{}, err
	}
	m.act.Lock()
	defer m.act.Unlock()
	m.mu.Lock()
	p, err := m.plan(ctx, a, sel)
	if err == nil && m.ledger == nil && slices.ContainsFunc(p.Steps, func(s Step) bool { return s.Do != "" }) {
		err = m.openLedger(ctx)
	}
	l := m.ledger
	m.mu.Unlock()
	rep := Report{Plan: p, Operation: newOperation()}
	if err != nil {
		return rep, err
	}
	var todo []int // indexes of rep.Steps to carry out
	for i, s := range p.Steps {
		if s.Do != "" {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return rep, nil
	}
	if a == ActionReplay {
		var ds []wire.DeadLetter
		for _, i := range todo {
			if s := p.Steps[i]; s.Do == ActionReplay {
				ds = append(ds, s.Letter.DeadLetter)
			}
		}
		if rep.CreatedTopics, err = m.ensureReplayTopics(ctx, ds); err != nil {
			return rep, err
		}
	}
	var stale []error
	var pace pacer
	if a == ActionReplay && m.cfg.rate > 0 {
		pace = pacer{rate: m.cfg.rate, start: time.Now()}
	}
	for b := 0; b < len(todo); b += m.cfg.batch {
		batch := todo[b:min(b+m.cfg.batch, len(todo))]
		if err := m.record(ctx, l, &rep, batch, sel, by, &stale); err != nil {
			return rep, err
		}
		if a == ActionReplay {
			if err := m.send(ctx, &rep, batch, &pace); err != nil {
				return rep, err
			}
		}
		if by.Progress != nil {
			by.Progress(b+len(batch), len(todo))
		}
	}
	return rep, errors.Join(stale...)
}

// record writes the ledger entries of the steps batch of rep (all but
// the resumes) and counts the steps carried out but replays, whose
// records send counts. A step the ledger refuses is left alone, with why.
func (m *Manager) record(ctx context.Context, l *Ledger, rep *Report, batch []int, sel Selection, by Actor, stale *[]error) error {
	now := time.Now()
	var changes []Change
	var of []int // of[j]: the step changes[j] records
	for _, i := range batch {
		s := rep.Steps[i]
		if s.Resume {
			continue
		}
		e := wire.LedgerEntry{Kind: s.Do, At: now, Actor: by.Name, Reason: by.Reason, Operation: rep.Operation, Selection: sel.String()}
		if s.Do != rep.Action { // the loop guard's park
			e.Reason = s.Why
		}
		changes = append(changes, Change{ID: s.Letter.ID, Entry: e})
		of = append(of, i)
	}
	if len(changes) == 0 {
		return nil
	}
	rs, err := l.RecordAll(ctx, changes)
	if err != nil && rs == nil {
		return err
	}
	for j, i := range of {
		s := &rep.Steps[i]
		if rs[j].ID == "" {
			s.Do, s.Why = "", "not recorded: the ledger refused it"
			continue
		}
		s.Letter.Ledger, s.Letter.State = rs[j], rs[j].State
		if s.Do != ActionReplay {
			rep.Done++
		}
	}
	var ce *ChangeError
	for _, e := range joined(err) {
		if errors.As(e, &ce) {
			if errors.Is(e, ErrStaleWrite) {
				*stale = append(*stale, e)
			} else {
				rep.Steps[of[ce.Index]].Why = "not recorded: " + ce.Err.Error()
			}
			continue
		}
		return e // read back failed: the entries were written, not seen
	}
	return nil
}

// joined splits an errors.Join.
func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// send sends the replay records of the replay steps of batch, paced, and
// counts them done once written.
func (m *Manager) send(ctx context.Context, rep *Report, batch []int, pace *pacer) error {
	var wg sync.WaitGroup
	var mu sync.Mutex // guards errs and rep.Done, which the callbacks write
	var errs []error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for _, i := range batch {
		s := &rep.Steps[i]
		if s.Do != ActionReplay {
			continue
		}
		rec, err := wire.ReplayRecord(s.Letter.DeadLetter, time.Now())
		if err != nil {
			fail(fmt.Errorf("%s: %w", s.Letter.ID, err))
			break
		}
		if err := pace.wait(ctx); err != nil {
			fail(err)
			break
		}
		wg.Add(1)
		m.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				fail(fmt.Errorf("%s: %w", s.Letter.ID, err))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			rep.Done++
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("deadletter: replay interrupted after %d records sent: %w; run the same replay again to send the rest (no record is sent twice)", rep.Done, errors.Join(errs...))
	}
	return nil
}

// pacer spaces records rate a second apart from start; the zero pacer
// does not wait.
type pacer struct {
	rate  float64
	start time.Time
	n     int
}

func (p *pacer) wait(ctx context.Context) error {
	if p.rate <= 0 {
		return nil
	}
	due := p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
	p.n++
	t := time.NewTimer(time.Until(due))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// ensureReplayTopics creates the replay topics of ds that do not exist,
// with the partition count of their topic, and returns their names.
func (m *Manager) ensureReplayTopics(ctx context.Context, ds []wire.DeadLetter) ([]string, error) {
	var topics []string // the original topics, once each
	for _, d := range ds {
		if !slices.Contains(topics, d.OriginalTopic) {
			topics = append(topics, d.OriginalTopic)
		}
	}
	if len(topics) == 0 {
		return nil, nil
	}
	all, err := topicNames(ctx, m.cl)
	if err != nil {
		return nil, fmt.Errorf("deadletter: replay topics: %w", err)
	}
	var missing, sources []string // replay topics to create; their topics that exist
	for _, t := range topics {
		if !all.has(wire.ReplayTopic(t, m.group)) {
			missing = append(missing, t)
			if all.has(t) {
				sources = append(sources, t)
			}
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	var tds kadm.TopicDetails
	if len(sources) > 0 { // ListTopics of none lists them all
		if tds, err = m.adm.ListTopics(ctx, sources...); err != nil {
			return nil, fmt.Errorf("deadletter: partitions of %s: %w", clipList(sources), err)
		}
	}
	var specs []bus.TopicSpec
	var created []string
	for _, t := range missing {
		n := int32(-1) // the broker's default when the topic itself is gone
		if td, ok := tds[t]; ok && td.Err == nil && len(td.Partitions) > 0 {
			n = int32(len(td.Partitions))
		}
		r := wire.ReplayTopic(t, m.group)
		specs = append(specs, bus.TopicSpec{Name: r, Partitions: n})
		created = append(created, r)
	}
	if err := bus.CreateTopics(ctx, m.adm, specs...); err != nil {
		return nil, fmt.Errorf("deadletter: create replay topics %s: %w (create them with the partition count of their topic, or let the service create its topics)", clipList(created), err)
	}
	return created, nil
}

// newOperation returns a new operation id: when, and 8 random hex digits.
func newOperation() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "op-" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
