package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrNotReady wraps what Ready returns while the consumer is not connected,
// not in its group or not running.
var ErrNotReady = errors.New("consumer: not ready")

// Ready reports whether the consumer is connected to its brokers, a member
// of its group and handling records: nil when it is, else an error that
// names why not (ErrClosed once closed, else wrapping ErrNotReady): Run not
// called yet, a broker it cannot connect to (with the address and the
// cause), the group not joined yet or its session failed, Run returned. It
// never blocks: a readiness probe may call it at any rate.
func (c *Consumer) Ready() error {
	c.mu.Lock()
	started, closed := c.started, c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case !started:
		return fmt.Errorf("%w: Run has not been called", ErrNotReady)
	}
	if err := c.health.ready(c.group); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return nil
}

// reportEvery bounds how often a failure that lasts (a broker that cannot
// be reached, a failing group session) is logged: at once, then at most
// once per reportEvery with the count of failures in between.
const reportEvery = 30 * time.Second

// staleAfter is how long a failed connection attempt to a broker keeps the
// consumer not ready when nothing tries that broker again (the client
// stops dialing a broker it no longer needs).
const staleAfter = time.Minute

type phase int

const (
	phaseStarting phase = iota // Run checks the topics
	phaseRunning               // Run polls
	phaseStopped               // Run returned
)

// health is what Ready tells and what the consumer logs about its
// connections: the hooks and the assignment callback of the consumer's
// client feed it. mu guards every field below it.
type health struct {
	log *slog.Logger

	mu       sync.Mutex
	phase    phase
	stopErr  error                   // why Run returned
	brokers  map[string]*brokerState // by address
	joined   bool                    // assigned since the last group failure
	groupErr error                   // the last group session failure
	groupRep report
}

// brokerState is a broker the consumer failed to connect to, until a
// connection to it succeeds.
type brokerState struct {
	err   error     // the last attempt's error
	since time.Time // the first failure of this run of failures
	last  time.Time // the last failure
	rep   report
}

// report paces the log lines of one lasting failure.
type report struct {
	logged time.Time // zero before the first line
	count  int       // failures since the last line
}

// due counts a failure and says whether a line is due now, with how many
// failures it covers.
func (r *report) due(now time.Time) (int, bool) {
	r.count++
	if !r.logged.IsZero() && now.Sub(r.logged) < reportEvery {
		return 0, false
	}
	n := r.count
	r.logged, r.count = now, 0
	return n, true
}

func newHealth(log *slog.Logger) *health {
	return &health{log: log, brokers: make(map[string]*brokerState)}
}

var (
	_ kgo.HookBrokerConnect    = (*health)(nil)
	_ kgo.HookGroupManageError = (*health)(nil)
)

// OnBrokerConnect logs connection failures, at a bounded rate per broker,
// with the broker's address and the cause, and a line when a broker that
// failed is reachable again.
func (h *health) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return // the client is closing
	}
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	now := time.Now()
	h.mu.Lock()
	b := h.brokers[addr]
	if err == nil {
		delete(h.brokers, addr)
		h.mu.Unlock()
		if b != nil {
			h.log.Info("consumer: Kafka broker reachable again", "broker", addr, "after", now.Sub(b.since).Round(time.Millisecond))
		}
		return
	}
	if b == nil {
		b = &brokerState{since: now}
		h.brokers[addr] = b
	}
	b.err, b.last = err, now
	n, due := b.rep.due(now)
	since := b.since
	h.mu.Unlock()
	if due {
		h.log.Error("consumer: cannot connect to a Kafka broker; trying again", "broker", addr, "error", err, "failures", n, "since", since.UTC().Format(time.RFC3339))
	}
}

// OnGroupManageError logs a failed group session at a bounded rate; the
// client joins again by itself.
func (h *health) OnGroupManageError(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	h.mu.Lock()
	h.joined, h.groupErr = false, err
	n, due := h.groupRep.due(time.Now())
	h.mu.Unlock()
	if due {
		h.log.Error("consumer: group session failed; joining again", "error", err, "failures", n)
	}
}

// assigned records that the consumer joined its group (the client calls
// OnPartitionsAssigned after every join, even with nothing assigned).
func (h *health) assigned() {
	h.mu.Lock()
	rejoined := h.groupErr != nil
	h.joined, h.groupErr, h.groupRep = true, nil, report{}
	h.mu.Unlock()
	if rejoined {
		h.log.Info("consumer: joined the group again")
	}
}

func (h *health) setPhase(p phase, err error) {
	h.mu.Lock()
	h.phase, h.stopErr = p, err
	h.mu.Unlock()
}

// unreachable returns the brokers whose last connection attempt failed,
// recently, with their errors; nil when there are none.
func (h *health) unreachable() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.unreachableLocked(time.Now())
}

func (h *health) unreachableLocked(now time.Time) error {
	var out []string
	for addr, b := range h.brokers {
		if now.Sub(b.last) < staleAfter {
			out = append(out, fmt.Sprintf("cannot connect to Kafka broker %s: %v", addr, b.err))
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return errors.New(strings.Join(out, "; "))
}

// ready is Ready once Run was called.
func (h *health) ready(group string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.phase == phaseStopped {
		return fmt.Errorf("Run returned: %v", h.stopErr)
	}
	if err := h.unreachableLocked(time.Now()); err != nil {
		return err
	}
	switch {
	case h.phase == phaseStarting:
		return errors.New("starting: reading the topics' metadata")
	case h.groupErr != nil:
		return fmt.Errorf("group %s: session failed: %w", group, h.groupErr)
	case !h.joined:
		return fmt.Errorf("group %s not joined yet", group)
	}
	return nil
}
