package wire

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// DeadLetterTopic names the dead-letter topic of a topic for a consumer
// group: "<topic>.<group>.dlt". A failure belongs to one group.
func DeadLetterTopic(topic, group string) string { return topic + "." + group + ".dlt" }

// ReplayTopic names the topic dead letters of a topic are sent back to
// for one consumer group: "<topic>.<group>.replay". Only that group reads
// it, besides topic, and hands its records to topic's handlers, so a
// replay reaches the group that failed the record and no other.
func ReplayTopic(topic, group string) string { return topic + "." + group + ".replay" }

// RetryTopic names retry topic n (from 1) of topic for a consumer group:
// "<topic>.<group>.retry-<n>".
func RetryTopic(topic, group string, n int) string {
	return topic + "." + group + ".retry-" + strconv.Itoa(n)
}

// SplitTopicGroup splits "<topic>.<group>", the name of a derived topic
// less its suffix (".dlt", ".replay", ".retry-<n>"), into the topic and
// the group. Both may hold dots: the topic is the longest prefix ending
// before a dot that exists (exists), else the name up to the last dot, so
// that orders.v2's derived topics are not read as orders'. ok is false
// when either part would be empty.
func SplitTopicGroup(base string, exists func(string) bool) (topic, group string, ok bool) {
	dot := strings.LastIndex(base, ".")
	if dot <= 0 || dot == len(base)-1 {
		return "", "", false
	}
	for i := len(base) - 2; i > 0; i-- {
		if base[i] == '.' && exists(base[:i]) {
			dot = i
			break
		}
	}
	return base[:dot], base[dot+1:], true
}

// ErrTopicName is wrapped by the error of a topic name, given or derived,
// that Kafka refuses (see ValidTopicName).
var ErrTopicName = errors.New("wire: invalid topic name")

// topicName is what Kafka accepts as a topic name, "." and ".." aside.
var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// ValidTopicName checks name against Kafka's rules for topic names: 1 to
// 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', and not "." or "..".
// Every topic evbus names, given or derived (dead-letter, replay and retry
// topics), is checked with it before it is used; its error wraps
// ErrTopicName.
func ValidTopicName(name string) error {
	if !topicName.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%w %q (%d characters): Kafka takes 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', and not \".\" or \"..\"", ErrTopicName, name, len(name))
	}
	return nil
}

// validDerived checks a topic name derived from a topic and group.
func validDerived(kind, name, group string) error {
	if err := ValidTopicName(name); err != nil {
		return fmt.Errorf("%w; it is the %s topic of group %q: use a shorter topic or group name", err, kind, group)
	}
	return nil
}

// ValidDeadLetterTopics checks the names of the dead-letter and replay
// topics of topic for group (DeadLetterTopic, ReplayTopic).
func ValidDeadLetterTopics(topic, group string) error {
	if err := validDerived("dead-letter", DeadLetterTopic(topic, group), group); err != nil {
		return err
	}
	return validDerived("replay", ReplayTopic(topic, group), group)
}
