package wire_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/evbus/evbus/wire"
)

// The derived topic names are contract: other languages' tools find a
// group's dead-letter, replay and retry topics by them.
func TestDerivedTopicNames(t *testing.T) {
	for got, want := range map[string]string{
		wire.DeadLetterTopic("orders", "billing"): "orders.billing.dlt",
		wire.ReplayTopic("orders", "billing"):     "orders.billing.replay",
		wire.RetryTopic("orders", "billing", 2):   "orders.billing.retry-2",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}

func TestValidTopicName(t *testing.T) {
	for _, name := range []string{"", ".", "..", "bad name", strings.Repeat("x", 250)} {
		if err := wire.ValidTopicName(name); !errors.Is(err, wire.ErrTopicName) {
			t.Errorf("ValidTopicName(%q): %v, want ErrTopicName", name, err)
		}
	}
	for _, name := range []string{"a", "...", "orders.billing.dlt", "A-b_c.9", strings.Repeat("x", 249)} {
		if err := wire.ValidTopicName(name); err != nil {
			t.Errorf("ValidTopicName(%q): %v", name, err)
		}
	}
}

// A derived name Kafka refuses is refused, naming the group and the fix;
// the given topic's own length leaves room for both derived names.
func TestValidDeadLetterTopics(t *testing.T) {
	topic, group := strings.Repeat("t", 200), strings.Repeat("g", 41)
	if err := wire.ValidDeadLetterTopics(topic, group); err != nil {
		t.Fatalf("%d+%d characters: %v", len(topic), len(group), err)
	}
	err := wire.ValidDeadLetterTopics(topic, group+"g")
	if !errors.Is(err, wire.ErrTopicName) || !strings.Contains(err.Error(), "replay topic of group") {
		t.Fatalf("a replay topic of 250 characters: %v, want ErrTopicName naming the replay topic", err)
	}
	if err := wire.ValidDeadLetterTopics("orders", "bad group"); !errors.Is(err, wire.ErrTopicName) || !strings.Contains(err.Error(), "dead-letter topic of group") {
		t.Fatalf("a group with a space: %v, want ErrTopicName naming the dead-letter topic", err)
	}
}

func TestSplitTopicGroup(t *testing.T) {
	exists := func(name string) bool { return name == "orders" || name == "orders.v2" }
	for _, c := range []struct{ base, topic, group string }{
		{"orders.billing", "orders", "billing"},
		{"orders.com.acme.ship", "orders", "com.acme.ship"},
		{"orders.v2.billing", "orders.v2", "billing"},
		{"payments.eu.billing", "payments.eu", "billing"}, // no prefix exists: up to the last dot
	} {
		if topic, group, ok := wire.SplitTopicGroup(c.base, exists); !ok || topic != c.topic || group != c.group {
			t.Errorf("SplitTopicGroup(%q) = %q, %q, %v; want %q, %q", c.base, topic, group, ok, c.topic, c.group)
		}
	}
	for _, base := range []string{"", "orders", ".billing", "orders."} {
		if _, _, ok := wire.SplitTopicGroup(base, exists); ok {
			t.Errorf("SplitTopicGroup(%q): ok", base)
		}
	}
}
