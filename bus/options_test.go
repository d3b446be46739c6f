package bus_test

import (
	"reflect"
	"testing"

	"github.com/evbus/evbus/bus"
)

// NewEncoder takes the options an encoder uses and no others: Source and
// Types are EncoderOptions, which NewPublisher takes too; Telemetry and
// SkipTopicCheck, which only sending uses, are PublisherOptions alone, so
// passing them to NewEncoder does not compile instead of being ignored.
func TestEncoderOptions(t *testing.T) {
	encoderOption := reflect.TypeFor[bus.EncoderOption]()
	publisherOption := reflect.TypeFor[bus.PublisherOption]()
	for _, c := range []struct {
		name    string
		fn      any
		encoder bool
	}{
		{"Source", bus.Source, true},
		{"Types", bus.Types, true},
		{"Telemetry", bus.Telemetry, false},
		{"SkipTopicCheck", bus.SkipTopicCheck, false},
	} {
		out := reflect.TypeOf(c.fn).Out(0)
		if !out.Implements(publisherOption) {
			t.Errorf("%s returns %v, which NewPublisher does not take", c.name, out)
		}
		if got := out.Implements(encoderOption); got != c.encoder {
			t.Errorf("%s returns %v: NewEncoder takes it: %v, want %v", c.name, out, got, c.encoder)
		}
	}
	if ne := reflect.TypeOf(bus.NewEncoder); ne.In(ne.NumIn()-1).Elem() != encoderOption {
		t.Errorf("NewEncoder takes ...%v, want ...bus.EncoderOption", ne.In(ne.NumIn()-1).Elem())
	}
}
