package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// health is what Ready reports of a relay, and when each lasting failure
// was last logged. mu guards every field.
type health struct {
	mu            sync.Mutex
	running, ran  bool
	session       error   // the database's last failure on the session; nil once it answered again
	work          []error // the same in each shard's batches, by shard
	kafka         error   // Kafka's
	dbOK, kafkaOK bool    // each answered since Run started
	stuck         map[int][]StuckRow
	logged        map[string]time.Time // by concern: when its lasting failure was last logged
}

func (h *health) start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		return errors.New("outbox: Run: the relay is running already")
	}
	h.running = true
	h.session, h.kafka, h.dbOK, h.kafkaOK = nil, nil, false, false
	clear(h.work)
	return nil
}

func (h *health) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running, h.ran = false, true
}

func (h *health) setStuck(shard int, rows []StuckRow) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(rows) == 0 {
		delete(h.stuck, shard)
	} else {
		h.stuck[shard] = rows
	}
}

// kafkaCheck is how often the relay checks that Kafka answers while it
// does, and kafkaRecheck while it does not.
const (
	kafkaCheck   = 5 * time.Second
	kafkaRecheck = time.Second
)

// watchKafka checks until ctx is done that a broker answers, so that an
// unreachable Kafka is logged and shows in Ready even while the relay has
// nothing to publish.
func (r *Relay) watchKafka(ctx context.Context) {
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, r.cfg.ackTimeout)
		err := r.cl.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		every := kafkaCheck
		if err != nil {
			r.fail(&r.health.kafka, "kafka", fmt.Errorf("outbox: relay: Kafka unreachable at %s: %w", strings.Join(r.seeds, ","), err))
			every = kafkaRecheck
		} else {
			r.ok(&r.health.kafka, "kafka")
		}
		sleep(ctx, every)
	}
}

// fail records err in *p, for Ready, and logs it at ERROR: at once, then
// at most once a logEvery while concern keeps failing.
func (r *Relay) fail(p *error, concern string, err error) {
	h := &r.health
	h.mu.Lock()
	*p = err
	now := time.Now()
	last, failing := h.logged[concern]
	log := !failing || now.Sub(last) >= r.logEvery
	if log {
		h.logged[concern] = now
	}
	h.mu.Unlock()
	if log {
		r.ocfg.log.Error("outbox: relay: "+concern+" failing", "table", r.ocfg.table, "relay", r.cfg.name, "err", err)
	}
}

// ok clears *p, and logs that concern answers again when its failure was
// logged.
func (r *Relay) ok(p *error, concern string) {
	h := &r.health
	h.mu.Lock()
	*p = nil
	again := true
	if concern == "kafka" {
		h.kafkaOK = true
	} else {
		h.dbOK = true
		again = h.session == nil && !slices.ContainsFunc(h.work, func(err error) bool { return err != nil })
	}
	if _, failing := h.logged[concern]; failing && again {
		delete(h.logged, concern)
	} else {
		again = false
	}
	h.mu.Unlock()
	if again {
		r.ocfg.log.Info("outbox: relay: "+concern+" answers again", "table", r.ocfg.table, "relay", r.cfg.name)
	}
}

// Ready returns nil when the relay runs, the database and Kafka answer
// it, and every row it reads can be published; else an error that says
// why: not started or stopped, the database or Kafka unreachable (naming
// the brokers), a row stuck. A standby relay, which holds no shard, is
// ready when it could take one. Ready does not block: it reports what
// the relay last saw, for a readiness probe.
func (r *Relay) Ready() error {
	h := &r.health
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.running:
	case h.ran:
		return errors.New("outbox: relay stopped: Run returned")
	default:
		return errors.New("outbox: relay not started: call Run")
	}
	if h.session != nil {
		return h.session
	}
	for _, err := range h.work {
		if err != nil {
			return err
		}
	}
	switch {
	case !h.dbOK:
		return errors.New("outbox: relay: the database has not answered yet")
	case h.kafka != nil:
		return h.kafka
	case !h.kafkaOK:
		return fmt.Errorf("outbox: relay: Kafka (%s) has not answered yet", strings.Join(r.seeds, ","))
	}
	shards := make([]int, 0, len(h.stuck))
	for s := range h.stuck {
		shards = append(shards, s)
	}
	slices.Sort(shards)
	for _, s := range shards {
		rows := h.stuck[s]
		x := rows[0]
		return fmt.Errorf("outbox: relay: %d rows cannot be published; the first, row %d of shard %d (topic %s, key %q), holds back the later rows of its key: %s",
			len(rows), x.ID, s, x.Topic, x.Key, x.Reason)
	}
	return nil
}
