package bus_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/wire"
)

// CreateTopics checks every name it would create, derived ones included,
// before it creates any: a dead-letter topic longer than Kafka allows is
// refused, naming it, and nothing is created.
func TestCreateTopicsRefusesDerivedNamesKafkaRefuses(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	topic, group := strings.Repeat("t", 200), strings.Repeat("g", 60)
	dlt := wire.DeadLetterTopic(topic, group)
	if len(dlt) != 265 {
		t.Fatalf("dead-letter topic of %d characters, want 265", len(dlt))
	}
	err := bus.CreateTopics(ctx, e.adm, bus.TopicSpec{Name: topic, DeadLetterGroups: []string{group}})
	if !errors.Is(err, wire.ErrTopicName) || !strings.Contains(err.Error(), dlt) || !strings.Contains(err.Error(), "249 characters") {
		t.Fatalf("CreateTopics: %v, want wire.ErrTopicName naming %s and the rule", err, dlt)
	}
	details, err := e.adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := details[topic]; ok && d.Err == nil {
		t.Errorf("CreateTopics created %s although its dead-letter topic is refused", topic)
	}

}
