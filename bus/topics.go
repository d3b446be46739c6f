package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/evbus/evbus/wire"
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
	// (wire.DeadLetterTopic(Name, group)) and replay topics
	// (wire.ReplayTopic(Name, group), which the group's consumers read besides the topic) are
	// created beside the topic, with the same partitions, replication and
	// configs.
	DeadLetterGroups []string
}

// DeadLetterHeadroom is how many bytes more than its topic a dead-letter or
// replay topic made by CreateTopics accepts: room for the headers a
// consumer adds when it dead-letters a record, so a record as large as its
// topic allows still fits and never stalls its partition.
const DeadLetterHeadroom = 64 << 10

// CreateTopics creates each topic (and its dead-letter and replay topics)
// that does not exist yet. Topics that exist already are left as they are.
// The dead-letter and replay topics get the topic's partitions,
// replication and configs, but a max.message.bytes DeadLetterHeadroom
// larger than the topic's.
//
// Every name, derived ones included, is checked (wire.ValidTopicName) before
// any topic is created.
func CreateTopics(ctx context.Context, adm *kadm.Client, specs ...TopicSpec) error {
	if err := checkAdmin("CreateTopics", ctx, adm); err != nil {
		return err
	}
	for _, s := range specs {
		if err := wire.ValidTopicName(s.Name); err != nil {
			return err
		}
		for _, g := range s.DeadLetterGroups {
			if err := wire.ValidDeadLetterTopics(s.Name, g); err != nil {
				return err
			}
		}
	}
	for _, s := range specs {
		partitions, rf := s.Partitions, s.ReplicationFactor
		if partitions == 0 {
			partitions = -1
		}
		if rf == 0 {
			rf = -1
		}
		configs := make(map[string]*string, len(s.Configs)+1)
		for k, v := range s.Configs {
			configs[k] = kadm.StringPtr(v)
		}
		if err := createTopics(ctx, adm, partitions, rf, configs, s.Name); err != nil {
			return err
		}
		if len(s.DeadLetterGroups) == 0 {
			continue
		}
		// The topic's limit as the broker applies it: its own config or
		// the broker's default.
		limits, err := TopicMaxBytes(ctx, adm, s.Name)
		if err != nil {
			return err
		}
		if limit, ok := limits[s.Name]; ok {
			configs["max.message.bytes"] = kadm.StringPtr(strconv.Itoa(limit + DeadLetterHeadroom))
		}
		names := make([]string, 0, 2*len(s.DeadLetterGroups))
		for _, g := range s.DeadLetterGroups {
			names = append(names, wire.DeadLetterTopic(s.Name, g), wire.ReplayTopic(s.Name, g))
		}
		if err := createTopics(ctx, adm, partitions, rf, configs, names...); err != nil {
			return err
		}
	}
	return nil
}

// createTopics creates the named topics; those that exist already are no
// error.
func createTopics(ctx context.Context, adm *kadm.Client, partitions int32, rf int16, configs map[string]*string, names ...string) error {
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
	return nil
}

// checkAdmin checks the arguments every admin call needs.
func checkAdmin(fn string, ctx context.Context, adm *kadm.Client) error {
	switch {
	case ctx == nil:
		return fmt.Errorf("bus: %s: nil context", fn)
	case adm == nil:
		return fmt.Errorf("bus: %s: nil admin client: pass kadm.NewClient(cl)", fn)
	}
	return nil
}

// TopicMaxBytes returns the largest record batch each topic accepts (its
// max.message.bytes, from the topic's config or the broker's default).
// Topics the broker does not describe are left out.
func TopicMaxBytes(ctx context.Context, adm *kadm.Client, topics ...string) (map[string]int, error) {
	if err := checkAdmin("TopicMaxBytes", ctx, adm); err != nil {
		return nil, err
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("bus: topic configs: %w", err)
	}
	limits := make(map[string]int, len(topics))
	for _, rc := range configs {
		if rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" || c.Value == nil {
				continue
			}
			if limit, err := strconv.Atoi(*c.Value); err == nil {
				limits[rc.Name] = limit
			}
		}
	}
	return limits, nil
}

// CheckTopics returns an error wrapping ErrTopicMissing that lists the
// topics that do not exist, so a service fails at start and not at its
// first publish.
func CheckTopics(ctx context.Context, adm *kadm.Client, topics ...string) error {
	if err := checkAdmin("CheckTopics", ctx, adm); err != nil {
		return err
	}
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
