package outbox_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evbus/evbus/sqldb"
)

// cpuMeter reads the CPU time (user + system) of this process (the
// relay, the writers and the embedded broker) and of every process of the
// PostgreSQL server, from /proc. Elsewhere than Linux it measures nothing.
type cpuMeter struct {
	pids       []int // this process, then the server's
	self, pg   time.Duration
	start, end time.Time
}

// startCPU starts measuring: the server's processes are those
// pg_stat_activity lists (backends and background workers), read once,
// so connections opened later are not counted.
func startCPU(b *testing.B, db sqldb.Querier) *cpuMeter {
	b.Helper()
	m := &cpuMeter{pids: []int{os.Getpid()}}
	rows, err := db.Query(context.Background(), "SELECT pid FROM pg_stat_activity")
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		m.pids = append(m.pids, pid)
	}
	rows.Close()
	m.self, m.pg = m.read()
	m.start = time.Now()
	return m
}

func (m *cpuMeter) read() (self, pg time.Duration) {
	for i, pid := range m.pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces): state is
		// field 3, utime and stime fields 14 and 15, in clock ticks
		// (100 per second on Linux).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		d := time.Duration(u+s) * 10 * time.Millisecond
		if i == 0 {
			self += d
		} else {
			pg += d
		}
	}
	return self, pg
}

// report adds the CPU used since startCPU per event, for this process
// and for the server, and how many of the machine's cores they kept busy.
func (m *cpuMeter) report(b *testing.B, events int) {
	self, pg := m.read()
	self, pg = self-m.self, pg-m.pg
	if self == 0 {
		return
	}
	wall := time.Since(m.start)
	b.ReportMetric(float64(self.Microseconds())/float64(events), "go-cpu-µs/event")
	b.ReportMetric(float64(pg.Microseconds())/float64(events), "pg-cpu-µs/event")
	b.ReportMetric((self+pg).Seconds()/wall.Seconds(), "cores")
}
