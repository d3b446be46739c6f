package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name string
	// Partitions and ReplicationFactor: -1 (or 0) takes the broker's default.
	Partitions        int32
	ReplicationFactor int16
	// Configs are topic configs, such as "min.insync.replicas": "2".
	Configs map[string]string
	// DeadLetterGroups are the consumer groups whose dead-letter topics
	// (DeadLetterTopic(Name, group)) and replay topics (ReplayTopic(Name,
	// group), which the group's consumers read besides the topic) are
	// created beside the topic, with the same partitions, replication and
	// configs.
	DeadLetterGroups []string
}

// DeadLetterTopic names the dead-letter topic of a topic for a consumer
// group: "<topic>.<group>.dlt". A failure belongs to one group.
func DeadLetterTopic(topic, group string) string { return topic + "." + group + ".dlt" }

// ReplayTopic names the topic dead letters of a topic are sent back to
// for one consumer group: "<topic>.<group>.replay". Only that group reads
// it, so a replay reaches the group that failed the record and no other.
func ReplayTopic(topic, group string) string { return topic + "." + group + ".replay" }

// CreateTopics creates each topic (and its dead-letter topics) that does
// not exist yet. Topics that exist already are left as they are.
func CreateTopics(ctx context.Context, adm *kadm.Client, specs ...TopicSpec) error {
	for _, s := range specs {
		if !topicName.MatchString(s.Name) {
			return fmt.Errorf("bus: topic %q: want 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'", s.Name)
		}
		names := []string{s.Name}
		for _, g := range s.DeadLetterGroups {
			names = append(names, DeadLetterTopic(s.Name, g), ReplayTopic(s.Name, g))
		}
		partitions, rf := s.Partitions, s.ReplicationFactor
		if partitions == 0 {
			partitions = -1
		}
		if rf == 0 {
			rf = -1
		}
		configs := make(map[string]*string, len(s.Configs))
		for k, v := range s.Configs {
			configs[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopics(ctx, partitions, rf, configs, names...)
		if err != nil {
			return fmt.Errorf("bus: create topics %s: %w", strings.Join(names, ", "), err)
		}
		for _, name := range names {
			r, ok := resp[name]
			if !ok {
				return fmt.Errorf("bus: create topic %s: no answer from the broker", name)
			}
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("bus: create topic %s: %w %s", name, r.Err, r.ErrMessage)
			}
		}
	}
	return nil
}

// CheckTopics returns an error wrapping ErrTopicMissing that lists the
// topics that do not exist, so a service fails at start and not at its
// first publish.
func CheckTopics(ctx context.Context, adm *kadm.Client, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("bus: check topics: %w", err)
	}
	var missing []string
	for _, t := range topics {
		d, ok := details[t]
		if !ok || d.Err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: %s: create them first (bus.CreateTopics, or your platform's tooling)", ErrTopicMissing, strings.Join(missing, ", "))
	}
	return nil
}
