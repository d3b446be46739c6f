package evbustest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// ShortSessions lets consumer groups of c use session timeouts down to
// 500 ms (brokers refuse less than 6 s by default), for tests that kill a
// member and wait for its partitions to move on. A broker restarted
// afterwards needs it again.
func ShortSessions(t testing.TB, c Cluster) {
	t.Helper()
	cl := client(t, c)
	defer cl.Close()
	resp, err := kadm.NewClient(cl).AlterBrokerConfigs(t.Context(), []kadm.AlterConfig{
		{Name: "group.min.session.timeout.ms", Value: kadm.StringPtr("500")},
	})
	if err != nil {
		t.Fatalf("evbustest: short sessions: %v", err)
	}
	for _, r := range resp {
		if r.Err != nil {
			t.Fatalf("evbustest: short sessions: %v %s", r.Err, r.ErrMessage)
		}
	}
}
