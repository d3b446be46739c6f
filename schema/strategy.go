package schema

import (
	"fmt"
	"strings"
)

// Strategy names the registry subject a topic's event type is registered
// under.
type Strategy int

const (
	// TopicRecordName is "<topic>-<record full name>": one topic carries
	// several event types of one aggregate, each evolving on its own. The
	// default.
	TopicRecordName Strategy = iota
	// TopicName is "<topic>-value": one schema per topic (a record, or a
	// union that references each event type).
	TopicName
	// RecordName is "<record full name>": one event type evolves alike on
	// every topic that carries it.
	RecordName
)

func (s Strategy) String() string {
	switch s {
	case TopicRecordName:
		return "TopicRecordNameStrategy"
	case TopicName:
		return "TopicNameStrategy"
	case RecordName:
		return "RecordNameStrategy"
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// ParseStrategy accepts the Confluent class names (with or without the
// package) and the short names topic-record, topic, record.
func ParseStrategy(s string) (Strategy, error) {
	name := strings.ToLower(s[strings.LastIndex(s, ".")+1:])
	switch name {
	case "topicrecordnamestrategy", "topic-record", "topicrecord":
		return TopicRecordName, nil
	case "topicnamestrategy", "topic":
		return TopicName, nil
	case "recordnamestrategy", "record":
		return RecordName, nil
	}
	return 0, fmt.Errorf("schema: subject strategy %q: want TopicRecordNameStrategy, TopicNameStrategy or RecordNameStrategy", s)
}

// Subject returns the subject for values of record fullName on topic.
func (s Strategy) Subject(topic, fullName string) (string, error) {
	switch s {
	case TopicName:
		if topic == "" {
			return "", fmt.Errorf("schema: %v needs a topic", s)
		}
		return topic + "-value", nil
	case TopicRecordName, RecordName:
		if fullName == "" {
			return "", fmt.Errorf("schema: %v needs a named schema (record, enum or fixed) at the top level", s)
		}
		if s == RecordName {
			return fullName, nil
		}
		if topic == "" {
			return "", fmt.Errorf("schema: %v needs a topic", s)
		}
		return topic + "-" + fullName, nil
	}
	return "", fmt.Errorf("schema: unknown subject strategy %d", int(s))
}
