package consumer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/wire"
)

// A handler whose dead-letter, replay or retry topic Kafka would refuse
// makes Run fail before it joins the group, naming the derived topic: not
// at the first record that needs that topic.
func TestRunRefusesDerivedTopicNamesKafkaRefuses(t *testing.T) {
	e := start(t)
	type Long struct {
		ID string `avro:"id"`
	}
	long := strings.Repeat("t", 200)
	group := strings.Repeat("g", 60)
	e.topics(1, long)
	longer := strings.Repeat("r", 240)
	e.topics(1, longer, longer+".g.replay", longer+".g.dlt")

	for _, tc := range []struct {
		name, topic, group, derived string
		opts                        []consumer.HandlerOption
	}{
		{"dead-letter", long, group, wire.DeadLetterTopic(long, group), nil},
		{"retry", longer, "g", wire.RetryTopic(longer, "g", 1), []consumer.HandlerOption{consumer.RetryTopics(time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.derived) <= 249 {
				t.Fatalf("derived name of %d characters: the case needs more than 249", len(tc.derived))
			}
			c := e.consumer(tc.group)
			typ := bus.Event[Long](tc.topic, func(l *Long) string { return l.ID })
			consumer.Handle(c, typ, func(context.Context, *Long, bus.Meta) error { return nil }, tc.opts...)
			ctx, cancel := context.WithTimeout(t.Context(), guard)
			defer cancel()
			err := c.Run(ctx)
			if !errors.Is(err, consumer.ErrRegistration) || !errors.Is(err, wire.ErrTopicName) {
				t.Fatalf("Run: %v, want ErrRegistration and wire.ErrTopicName", err)
			}
			for _, want := range []string{tc.derived, "249 characters", tc.name} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Run's error does not name %q: %v", want, err)
				}
			}
		})
	}
}
