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

// cpuMeter measures the CPU time (user + system) of this process (the
// relay, the writers and the embedded broker) and of the PostgreSQL
// server's processes (those pg_stat_activity lists: backends and
// background workers; a connection opened meanwhile counts whole), from
// /proc. Elsewhere than Linux it measures nothing.
type cpuMeter struct {
	db    sqldb.Querier
	at    map[int]time.Duration // CPU time at the start, by pid
	start time.Time
}

func startCPU(b *testing.B, db sqldb.Querier) *cpuMeter {
	b.Helper()
	m := &cpuMeter{db: db, at: map[int]time.Duration{}}
	for _, pid := range m.pids(b) {
		m.at[pid] = procCPU(pid)
	}
	m.start = time.Now()
	return m
}

// pids returns this process's pid, then the server's.
func (m *cpuMeter) pids(b *testing.B) []int {
	pids := []int{os.Getpid()}
	rows, err := m.db.Query(context.Background(), "SELECT pid FROM pg_stat_activity")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// procCPU reads a process's CPU time from /proc/<pid>/stat: utime and
// stime are fields 14 and 15, in clock ticks (100 per second on Linux).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // the command may hold spaces
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// report adds the CPU used since startCPU per event (named unit), by this process and
// by the server, and how many of the machine's cores they kept busy.
func (m *cpuMeter) report(b *testing.B, events int, unit string) {
	wall := time.Since(m.start)
	var self, pg time.Duration
	for i, pid := range m.pids(b) {
		d := procCPU(pid) - m.at[pid]
		if i == 0 {
			self = d
		} else {
			pg += d
		}
	}
	if self == 0 {
		return
	}
	b.ReportMetric(float64(self.Microseconds())/float64(events), "go-cpu-µs/"+unit)
	b.ReportMetric(float64(pg.Microseconds())/float64(events), "pg-cpu-µs/"+unit)
	b.ReportMetric((self+pg).Seconds()/wall.Seconds(), "cores")
}
