package deadletter

import (
	"errors"
	"fmt"

	"github.com/evbus/evbus/wire"
)

// Option changes what Read and Groups read, or tells the caller how the
// read goes. An option only records its value; Read and Groups check them.
type Option func(*config)

type config struct {
	topic    string
	progress func(read, total int)
	skipped  func(error)
}

// Topic reads only the dead letters of topic (the original topic, not the
// dead-letter topic). Default: those of every topic.
func Topic(topic string) Option { return func(c *config) { c.topic = topic } }

// Progress calls fn after each record read with how many were read and
// how many the read holds in all. It runs on the reading goroutine: keep
// it short. Default: none.
func Progress(fn func(read, total int)) Option { return func(c *config) { c.progress = fn } }

// Skipped calls fn with the error of each record of a dead-letter topic
// that is not a dead-letter record (wire.ParseDeadLetter refuses it); such
// records are left out. Default: they are left out silently.
func Skipped(fn func(err error)) Option { return func(c *config) { c.skipped = fn } }

// newConfig checks the options of the function named fn.
func newConfig(fn string, opts []Option) (config, error) {
	var c config
	for i, o := range opts {
		if o == nil {
			return c, fmt.Errorf("deadletter: %s: option %d is nil", fn, i+1)
		}
		o(&c)
	}
	if c.topic != "" {
		if err := wire.ValidTopicName(c.topic); err != nil {
			return c, fmt.Errorf("deadletter: Topic(%q): %w", c.topic, err)
		}
	}
	return c, nil
}

// ErrNoTopic is wrapped by the error of a read that finds no dead-letter
// topic to read (see NoTopicError).
var ErrNoTopic = errors.New("deadletter: no dead-letter topic")

// NoTopicError says that no dead-letter topic matches what was asked
// for, and which groups have one.
type NoTopicError struct {
	Group        string   // the group asked for; "" for every group
	Topic        string   // the topic asked for (Topic); "" for every topic
	TopicMissing bool     // Topic does not exist at all
	Groups       []string // the groups with a dead-letter topic (of Topic, when set), sorted
}

func (e *NoTopicError) Error() string {
	switch {
	case e.TopicMissing:
		return fmt.Sprintf("deadletter: topic %q does not exist", e.Topic)
	case e.Group != "" && e.Topic != "":
		return fmt.Sprintf("deadletter: group %s has no dead-letter topic of %s (%s)", e.Group, e.Topic, wire.DeadLetterTopic(e.Topic, e.Group))
	case e.Group != "":
		return fmt.Sprintf("deadletter: group %s has no dead-letter topic (<topic>.%s.dlt)", e.Group, e.Group)
	case e.Topic != "":
		return fmt.Sprintf("deadletter: topic %s has no dead-letter topic (%s.<group>.dlt)", e.Topic, e.Topic)
	}
	return "deadletter: no dead-letter topic (<topic>.<group>.dlt)"
}

// Unwrap makes the error match ErrNoTopic.
func (e *NoTopicError) Unwrap() error { return ErrNoTopic }
