package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// autoCreate creates the topics a client asks to have created on first use
// (a Metadata request with AllowAutoTopicCreation) the way CreateTopics
// does, so that they are saved to the data dir at once.
//
// kfake's own auto-creation makes such a topic in memory and saves it only
// at Close: after a crash the topic is forgotten while its records stay on
// disk, and when it is created again the old records shadow the new ones at
// the same offsets.
//
// The Metadata request goes on without auto-creation and answers "unknown
// topic"; the client asks again, as it does for any topic being created,
// and by then the topic exists.
type autoCreate struct {
	kafka *kfake.Cluster

	mu      sync.Mutex
	closed  bool
	pending sync.WaitGroup // creations under way; Close waits for them
}

func (a *autoCreate) install() {
	a.kafka.ControlKey(kmsg.Metadata.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		m := req.(*kmsg.MetadataRequest)
		if !m.AllowAutoTopicCreation {
			return nil, nil, false
		}
		m.AllowAutoTopicCreation = false
		var topics []string
		for _, t := range m.Topics {
			if t.Topic != nil {
				topics = append(topics, *t.Topic)
			}
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.closed || len(topics) == 0 {
			return nil, nil, false
		}
		// Control functions run on kfake's request loop, which
		// CreateTopic waits for: create after this request is done.
		a.pending.Add(1)
		go func() {
			defer a.pending.Done()
			for _, t := range topics {
				a.kafka.CreateTopic(t, -1, nil) //nolint:errcheck // an existing topic is what the client wants
			}
		}()
		return nil, nil, false // not handled: kfake answers the request as usual
	})
}

// close stops new creations and waits for those under way, which need
// kfake's request loop to still run.
func (a *autoCreate) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.pending.Wait()
}

// kfakeLogger hands kfake's logs to slog. It also keeps the errors kfake
// logs while closing: kfake's Close logs a failure to save its state rather
// than returning it, and Stack.Close must not report a clean stop then.
type kfakeLogger struct {
	log     *slog.Logger
	closing atomic.Bool
	mu      sync.Mutex
	errs    []error
}

func (l *kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
		if l.closing.Load() {
			l.mu.Lock()
			l.errs = append(l.errs, fmt.Errorf("devstack: kafka: "+format, args...))
			l.mu.Unlock()
		}
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	case kfake.LogLevelInfo:
		sl = slog.LevelInfo
	default:
		sl = slog.LevelDebug
	}
	if ctx := context.Background(); l.log.Enabled(ctx, sl) {
		l.log.Log(ctx, sl, fmt.Sprintf(format, args...))
	}
}

func (l *kfakeLogger) closeErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.errs...)
}
