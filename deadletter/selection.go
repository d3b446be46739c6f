package deadletter

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evbus/evbus/wire"
)

// Selection chooses dead letters of a group. Its criteria combine: a dead
// letter is selected when it meets every criterion set. The zero
// Selection selects nothing, so that an action on every dead letter is
// asked for explicitly, with All.
//
// IDs select dead letters by id, and only that way do actions take
// dead letters a bulk selection leaves alone (see Manager.Replay); the
// other criteria then narrow those ids further.
type Selection struct {
	All         bool             // every dead letter of the group (narrowed by the criteria set)
	IDs         []string         // dead-letter ids (wire.DeadLetterID)
	Fingerprint string           // a fingerprint's ID (12 hex digits)
	Topic       string           // the original topic
	Key         string           // the record key, exactly
	Type        string           // the event type (ce_type)
	Kind        wire.FailureKind // the failure kind (dlt-error-kind)
	// FailedFrom and FailedTo bound the failure time (dlt-failed-at):
	// [FailedFrom, FailedTo); a zero bound is open.
	FailedFrom, FailedTo time.Time
	// Offsets is a range of offsets of dead-letter topic partitions.
	Offsets *OffsetRange
	// States keeps the dead letters in one of these ledger states.
	States []wire.LedgerState
}

// OffsetRange is the offsets From to To, both included, of one partition
// of the group's dead-letter topic Topic, or of each of its dead-letter
// topics when Topic is "".
type OffsetRange struct {
	Topic     string // a dead-letter topic ("<topic>.<group>.dlt"), or ""
	Partition int32
	From, To  int64
}

// empty reports a selection that selects nothing.
func (s Selection) empty() bool {
	return !s.All && len(s.IDs) == 0 && s.Fingerprint == "" && s.Topic == "" && s.Key == "" && s.Type == "" &&
		s.Kind == "" && s.FailedFrom.IsZero() && s.FailedTo.IsZero() && s.Offsets == nil && len(s.States) == 0
}

// check refuses a selection that can select nothing for a reason its
// author would want to know.
func (s Selection) check() error {
	if r := s.Offsets; r != nil && (r.Partition < 0 || r.From < 0 || r.To < r.From) {
		return fmt.Errorf("deadletter: selection: offsets %d-%d of partition %d: want a partition from 0 and 0 <= from <= to", r.From, r.To, r.Partition)
	}
	if !s.FailedFrom.IsZero() && !s.FailedTo.IsZero() && !s.FailedFrom.Before(s.FailedTo) {
		return fmt.Errorf("deadletter: selection: failure window [%s, %s) is empty", s.FailedFrom.Format(time.RFC3339), s.FailedTo.Format(time.RFC3339))
	}
	for _, st := range s.States {
		if _, err := wire.LedgerTransition(st, wire.ActionReveal); err != nil {
			return fmt.Errorf("deadletter: selection: state %q: want open, replaying, resolved, failed-again, parked or discarded", st)
		}
	}
	return nil
}

// matches reports whether l meets every criterion but IDs and States.
func (s Selection) matches(l *letter) bool {
	d := l.d
	if r := s.Offsets; r != nil && ((r.Topic != "" && d.Record.Topic != r.Topic) ||
		d.Record.Partition != r.Partition || d.Record.Offset < r.From || d.Record.Offset > r.To) {
		return false
	}
	return (s.Fingerprint == "" || l.fp.ID == s.Fingerprint) &&
		(s.Topic == "" || d.OriginalTopic == s.Topic) &&
		(s.Key == "" || string(d.Record.Key) == s.Key) &&
		(s.Type == "" || d.Type == s.Type) &&
		(s.Kind == "" || d.Kind == s.Kind) &&
		(s.FailedFrom.IsZero() || !d.FailedAt.Before(s.FailedFrom)) &&
		(s.FailedTo.IsZero() || d.FailedAt.Before(s.FailedTo))
}

func (s Selection) matchesState(st wire.LedgerState) bool {
	return len(s.States) == 0 || slices.Contains(s.States, st)
}

// String says what s selects, as a ledger entry's selection records it,
// e.g. "fingerprint 3f9a0c1d2e4b, failed from 2026-12-05T10:00:00Z".
func (s Selection) String() string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+" "+v)
		}
	}
	if s.All {
		parts = append(parts, "all")
	}
	if len(s.IDs) > 0 {
		add("ids", clipList(s.IDs))
	}
	add("fingerprint", s.Fingerprint)
	add("topic", s.Topic)
	if s.Key != "" {
		add("key", strconv.Quote(s.Key))
	}
	add("type", s.Type)
	add("error kind", string(s.Kind))
	if !s.FailedFrom.IsZero() {
		add("failed from", s.FailedFrom.UTC().Format(time.RFC3339))
	}
	if !s.FailedTo.IsZero() {
		add("failed before", s.FailedTo.UTC().Format(time.RFC3339))
	}
	if r := s.Offsets; r != nil {
		where := strconv.Itoa(int(r.Partition))
		if r.Topic != "" {
			where = r.Topic + "/" + where
		}
		add("offsets", fmt.Sprintf("%d-%d of partition %s", r.From, r.To, where))
	}
	if len(s.States) > 0 {
		st := make([]string, len(s.States))
		for i, x := range s.States {
			st[i] = string(x)
		}
		add("states", strings.Join(st, ", "))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	out := strings.Join(parts, ", ")
	if len(out) > wire.MaxErrorLen {
		out = clip(out)
	}
	return out
}

// clipList names up to 5 items of xs and how many more there are.
func clipList(xs []string) string {
	const n = 5
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:n], ", ") + fmt.Sprintf(" and %d more", len(xs)-n)
}

// clip bounds a string quoted in an error or a ledger entry.
func clip(s string) string {
	const n = 300
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
