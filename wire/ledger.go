package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// LedgerTopic names the dead-letter ledger of a consumer group:
// "<group>.dlt-ledger", a compacted topic (cleanup.policy=compact) keyed by
// DeadLetterID. No dead-letter, replay or retry topic name ends in
// ".dlt-ledger", so it never names one of them.
func LedgerTopic(group string) string { return group + ".dlt-ledger" }

// ValidLedgerTopic checks the name of group's ledger topic (LedgerTopic);
// its error wraps ErrTopicName.
func ValidLedgerTopic(group string) error {
	if group == "" {
		return fmt.Errorf("%w: empty consumer group: a ledger belongs to one group", ErrTopicName)
	}
	return validDerived("ledger", LedgerTopic(group), group)
}

// LedgerVersion is the version of the ledger record's JSON form that this
// package writes and reads.
const LedgerVersion = 1

// MaxLedgerEntries bounds a dead letter's history: each record carries the
// whole of it, and stays well under Kafka's default 1 MiB record limit.
const MaxLedgerEntries = 128

// LedgerState is a dead letter's state in its group's ledger. A dead letter
// with no ledger record is LedgerOpen.
type LedgerState string

// The states of a dead letter.
const (
	LedgerOpen        LedgerState = "open"         // dead-lettered, nothing done yet
	LedgerReplaying   LedgerState = "replaying"    // sent back to the group; its outcome is awaited
	LedgerResolved    LedgerState = "resolved"     // a replay of it was handled
	LedgerFailedAgain LedgerState = "failed-again" // a replay of it failed again
	LedgerParked      LedgerState = "parked"       // held back: replayed only when asked by id
	LedgerDiscarded   LedgerState = "discarded"    // given up on; the record stays in Kafka
)

// LedgerEntryKind is what an entry of a dead letter's history records: an
// operator's action or the outcome of a replay.
type LedgerEntryKind string

// The entry kinds: actions of an operator (or of a tool on their behalf),
// and outcomes the consumer records.
const (
	ActionReplay   LedgerEntryKind = "replay"  // sent back to the group that failed it
	ActionDiscard  LedgerEntryKind = "discard" // given up on
	ActionPark     LedgerEntryKind = "park"    // held back from bulk replays
	ActionReveal   LedgerEntryKind = "reveal"  // hidden values of it were shown to an operator; the state stays
	OutcomeHandled LedgerEntryKind = "handled" // a replayed record was handled
	OutcomeFailed  LedgerEntryKind = "failed"  // a replayed record failed again
)

// ledgerMoves is the state machine: for each entry kind, the states it is
// legal in and the state it leads to ("" keeps the state).
var ledgerMoves = map[LedgerEntryKind]struct {
	from []LedgerState
	to   LedgerState
}{
	ActionReplay:   {[]LedgerState{LedgerOpen, LedgerResolved, LedgerFailedAgain, LedgerParked, LedgerDiscarded}, LedgerReplaying},
	ActionDiscard:  {[]LedgerState{LedgerOpen, LedgerFailedAgain, LedgerParked}, LedgerDiscarded},
	ActionPark:     {[]LedgerState{LedgerOpen, LedgerReplaying, LedgerFailedAgain}, LedgerParked},
	ActionReveal:   {[]LedgerState{LedgerOpen, LedgerReplaying, LedgerResolved, LedgerFailedAgain, LedgerParked, LedgerDiscarded}, ""},
	OutcomeHandled: {[]LedgerState{LedgerReplaying, LedgerParked}, LedgerResolved},
	OutcomeFailed:  {[]LedgerState{LedgerReplaying}, LedgerFailedAgain},
}

// ErrLedgerTransition is wrapped by the error of an entry its dead letter's
// state does not allow (LedgerTransition).
var ErrLedgerTransition = errors.New("wire: illegal ledger transition")

// LedgerTransition returns the state an entry of kind k leads to from
// state from, or an error wrapping ErrLedgerTransition that names both
// and the states k is legal in.
func LedgerTransition(from LedgerState, k LedgerEntryKind) (LedgerState, error) {
	m, ok := ledgerMoves[k]
	if !ok {
		return "", fmt.Errorf("%w: unknown entry kind %q: want replay, discard, park, reveal, handled or failed", ErrLedgerTransition, k)
	}
	if !validState(from) {
		return "", fmt.Errorf("%w: unknown state %q", ErrLedgerTransition, from)
	}
	for _, s := range m.from {
		if s == from {
			if m.to == "" {
				return from, nil
			}
			return m.to, nil
		}
	}
	legal := make([]string, len(m.from))
	for i, s := range m.from {
		legal[i] = string(s)
	}
	return "", fmt.Errorf("%w: %s a dead letter in state %s: legal in %s", ErrLedgerTransition, k, from, strings.Join(legal, ", "))
}

func validState(s LedgerState) bool {
	switch s {
	case LedgerOpen, LedgerReplaying, LedgerResolved, LedgerFailedAgain, LedgerParked, LedgerDiscarded:
		return true
	}
	return false
}

// LedgerEntry is one step of a dead letter's history. The caller fills
// Kind, At, Actor and what the kind needs; AppendLedgerEntry sets Seq,
// From and To.
type LedgerEntry struct {
	Seq  int64           `json:"seq"`  // 1 for the first entry, then one more each
	Kind LedgerEntryKind `json:"kind"` // required
	At   time.Time       `json:"at"`   // required; written in RFC 3339 UTC with milliseconds
	// Actor is who did it: the operator's name for an action, the
	// consumer (e.g. "consumer billing/host-1") for an outcome. Required.
	Actor string `json:"actor"`
	// Reason is why; required for discard, park and reveal. At most
	// MaxErrorLen bytes.
	Reason string `json:"reason,omitempty"`
	// Operation names the bulk action the entry is part of (one id shared
	// by every dead letter a replay of a fingerprint touches), so an
	// interrupted one can be resumed.
	Operation string `json:"operation,omitempty"`
	// Selection says how the operator chose the records, e.g.
	// "fingerprint 3f9a…" or "offsets 10-20".
	Selection string `json:"selection,omitempty"`
	// Record is the other record the entry is about, "<topic>/<partition>/<offset>":
	// the replayed record of a replay or an outcome, or the new dead
	// letter of a replay that failed again.
	Record string `json:"record,omitempty"`
	// Fields are the field paths a reveal showed.
	Fields []string `json:"fields,omitempty"`
	// Error is the error text of a failed outcome, at most MaxErrorLen bytes.
	Error string      `json:"error,omitempty"`
	From  LedgerState `json:"from"` // the dead letter's state before the entry
	To    LedgerState `json:"to"`   // its state after
}

// LedgerRecord is the value of a ledger record: a dead letter's current
// state and its whole history, since compaction keeps only the latest
// record of each key.
type LedgerRecord struct {
	Version int    `json:"version"` // LedgerVersion
	ID      string `json:"id"`      // the dead letter's DeadLetterID; equal to the record key
	Group   string `json:"group"`   // the consumer group whose ledger it is
	// State is the To of the last entry.
	State LedgerState `json:"state"`
	// Seq is the Seq of the last entry (the history's length): a writer
	// writes Seq+1 on top of the record it read.
	Seq     int64         `json:"seq"`
	History []LedgerEntry `json:"history"`
}

// Replays counts the replay actions in the history: how often the dead
// letter was sent back.
func (r LedgerRecord) Replays() int {
	n := 0
	for _, e := range r.History {
		if e.Kind == ActionReplay {
			n++
		}
	}
	return n
}

// NewLedgerRecord returns the record of a dead letter nothing has happened
// to yet: state open, no history. id is a DeadLetterID.
func NewLedgerRecord(group, id string) LedgerRecord {
	return LedgerRecord{Version: LedgerVersion, ID: id, Group: group, State: LedgerOpen}
}

// AppendLedgerEntry returns r with e appended to its history, after the
// state machine (LedgerTransition): e's Seq, From and To are set, and so
// are r's State and Seq. r itself is left as it was. An entry its state
// does not allow, or that lacks what its kind needs, is refused with an
// error naming what is wrong.
func AppendLedgerEntry(r LedgerRecord, e LedgerEntry) (LedgerRecord, error) {
	if err := checkEntry(e); err != nil {
		return r, fmt.Errorf("wire: ledger entry for %s: %w", r.ID, err)
	}
	if len(r.History) >= MaxLedgerEntries {
		return r, fmt.Errorf("wire: ledger entry for %s: its history holds %d entries, the most a record carries", r.ID, MaxLedgerEntries)
	}
	to, err := LedgerTransition(r.State, e.Kind)
	if err != nil {
		return r, fmt.Errorf("%w (dead letter %s)", err, r.ID)
	}
	e.Seq, e.From, e.To = r.Seq+1, r.State, to
	e.At = e.At.UTC().Truncate(time.Millisecond)
	e.Fields = append([]string(nil), e.Fields...)
	out := r
	out.History = append(append(make([]LedgerEntry, 0, len(r.History)+1), r.History...), e)
	out.State, out.Seq = to, e.Seq
	return out, nil
}

// checkEntry checks what the caller of AppendLedgerEntry fills.
func checkEntry(e LedgerEntry) error {
	switch {
	case e.At.IsZero():
		return fmt.Errorf("%s: no time (At)", e.Kind)
	case e.Actor == "":
		return fmt.Errorf("%s: no actor: say who acts", e.Kind)
	case e.Reason == "" && (e.Kind == ActionDiscard || e.Kind == ActionPark || e.Kind == ActionReveal):
		return fmt.Errorf("%s: no reason: say why", e.Kind)
	case len(e.Reason) > MaxErrorLen, len(e.Error) > MaxErrorLen, len(e.Selection) > MaxErrorLen:
		return fmt.Errorf("%s: reason, error or selection longer than %d bytes", e.Kind, MaxErrorLen)
	}
	return nil
}

// ErrLedgerRecord is wrapped by the error of a ledger record that does not
// parse or breaks the contract (ParseLedgerRecord).
var ErrLedgerRecord = errors.New("wire: not a ledger record")

// AppendLedgerValue appends the JSON form of r, the value of its ledger
// record, to dst.
func AppendLedgerValue(dst []byte, r LedgerRecord) ([]byte, error) {
	if err := checkLedger(r); err != nil {
		return dst, fmt.Errorf("wire: AppendLedgerValue: %w", err)
	}
	b, err := json.Marshal(ledgerJSON(r))
	if err != nil {
		return dst, fmt.Errorf("wire: AppendLedgerValue: %w", err)
	}
	return append(dst, b...), nil
}

// ledgerJSON writes times in RFC 3339 UTC with milliseconds.
func ledgerJSON(r LedgerRecord) any {
	type entry struct {
		LedgerEntry
		At string `json:"at"`
	}
	type record struct {
		LedgerRecord
		History []entry `json:"history"`
	}
	out := record{LedgerRecord: r, History: make([]entry, len(r.History))}
	for i, e := range r.History {
		out.History[i] = entry{e, string(formatTime(e.At))}
	}
	return out
}

// LedgerKafkaRecord builds the Kafka record of r: to LedgerTopic(r.Group),
// keyed by r.ID, its value AppendLedgerValue's.
func LedgerKafkaRecord(r LedgerRecord) (*kgo.Record, error) {
	v, err := AppendLedgerValue(nil, r)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: LedgerTopic(r.Group), Key: []byte(r.ID), Value: v}, nil
}

// ParseLedgerRecord reads a ledger record from its key and value. A value
// that is not the JSON of a LedgerRecord of a known version, whose id is
// not its key, or whose history does not follow the state machine from
// open to its state, is refused with an error wrapping ErrLedgerRecord that
// names what is wrong. Unknown fields are ignored: a later version adds
// fields without breaking readers.
func ParseLedgerRecord(key, value []byte) (LedgerRecord, error) {
	// One pass in the common case; the record's version is checked before
	// any other error is reported, so a record of a later version gets
	// "upgrade", not a field's type error.
	var v struct {
		Version *int `json:"version"` // shadows r's, to tell a missing one
		LedgerRecord
	}
	err := json.Unmarshal(value, &v)
	if err != nil || v.Version == nil || *v.Version != LedgerVersion {
		var probe struct {
			Version *int `json:"version"`
		}
		if err := json.Unmarshal(value, &probe); err != nil {
			return LedgerRecord{}, fmt.Errorf("%w: key %q: value is not a JSON object: %v", ErrLedgerRecord, clip(key), err)
		}
		switch {
		case probe.Version == nil:
			return LedgerRecord{}, fmt.Errorf("%w: key %q: no version field", ErrLedgerRecord, clip(key))
		case *probe.Version != LedgerVersion:
			return LedgerRecord{}, fmt.Errorf("%w: key %q: version %d: this reader knows version %d: upgrade evbus", ErrLedgerRecord, clip(key), *probe.Version, LedgerVersion)
		}
		return LedgerRecord{}, fmt.Errorf("%w: key %q: %v", ErrLedgerRecord, clip(key), err)
	}
	r := v.LedgerRecord
	r.Version = *v.Version
	if r.ID != string(key) {
		return LedgerRecord{}, fmt.Errorf("%w: key %q: id %q is not the key", ErrLedgerRecord, clip(key), clip([]byte(r.ID)))
	}
	if err := checkLedger(r); err != nil {
		return LedgerRecord{}, fmt.Errorf("%w: key %q: %v", ErrLedgerRecord, clip(key), err)
	}
	return r, nil
}

// checkLedger checks a record against the contract: its id, group, and a
// history that the state machine leads from open to its state.
func checkLedger(r LedgerRecord) error {
	if r.Version != LedgerVersion {
		return fmt.Errorf("version %d, want %d", r.Version, LedgerVersion)
	}
	if r.Group == "" {
		return errors.New("no group")
	}
	if err := checkDeadLetterID(r.ID, r.Group); err != nil {
		return err
	}
	if len(r.History) > MaxLedgerEntries {
		return fmt.Errorf("%d history entries, more than %d", len(r.History), MaxLedgerEntries)
	}
	if r.Seq != int64(len(r.History)) {
		return fmt.Errorf("seq %d with %d history entries", r.Seq, len(r.History))
	}
	state := LedgerOpen
	for i, e := range r.History {
		if e.Seq != int64(i+1) {
			return fmt.Errorf("history entry %d has seq %d", i+1, e.Seq)
		}
		if e.From != state {
			return fmt.Errorf("history entry %d: from %q, but the state was %s", e.Seq, e.From, state)
		}
		if err := checkEntry(e); err != nil {
			return fmt.Errorf("history entry %d: %w", e.Seq, err)
		}
		to, err := LedgerTransition(state, e.Kind)
		if err != nil {
			return fmt.Errorf("history entry %d: %w", e.Seq, err)
		}
		if e.To != to {
			return fmt.Errorf("history entry %d: %s from %s leads to %s, not %q", e.Seq, e.Kind, state, to, e.To)
		}
		state = to
	}
	if r.State != state {
		return fmt.Errorf("state %q, but the history leads to %s", r.State, state)
	}
	return nil
}

// checkDeadLetterID checks the form of a DeadLetterID of group's:
// "<topic>/<partition>/<offset>", topic a dead-letter topic of group.
func checkDeadLetterID(id, group string) error {
	topic, rest, ok1 := strings.Cut(id, "/")
	p, o, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 {
		return fmt.Errorf("id %q: want <topic>/<partition>/<offset>", clip([]byte(id)))
	}
	if err := ValidTopicName(topic); err != nil {
		return fmt.Errorf("id %q: %w", clip([]byte(id)), err)
	}
	if !strings.HasSuffix(topic, DeadLetterTopic("", group)) {
		return fmt.Errorf("id %q: %s is not a dead-letter topic of group %q (<topic>.%s.dlt)", clip([]byte(id)), topic, clip([]byte(group)), clip([]byte(group)))
	}
	if n, err := strconv.ParseInt(p, 10, 32); err != nil || n < 0 || strconv.FormatInt(n, 10) != p {
		return fmt.Errorf("id %q: partition %q: want a number from 0", clip([]byte(id)), p)
	}
	if n, err := strconv.ParseInt(o, 10, 64); err != nil || n < 0 || strconv.FormatInt(n, 10) != o {
		return fmt.Errorf("id %q: offset %q: want a number from 0", clip([]byte(id)), o)
	}
	return nil
}

// clip bounds hostile bytes quoted in an error.
func clip(b []byte) string {
	const n = 300
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
