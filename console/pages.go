package console

import (
	"cmp"
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/wire"
)

// pageTimeout bounds what a page waits for Kafka or a database.
const pageTimeout = 10 * time.Second

// groupRow is a consumer group on the groups page.
type groupRow struct {
	Name        string
	DeadLetters int64 // records in its dead-letter topics
	Topics      []string
	Consumer    bool // Kafka knows a consumer group of this name
}

// groupsPage lists the consumer groups and those with dead-letter topics.
func (h *Handler) groupsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	rows, err := h.listGroups(ctx)
	if err != nil {
		h.logger.Error("console: groups", "err", err)
		h.fail(w, r, http.StatusBadGateway, "Kafka: "+err.Error())
		return
	}
	h.render(w, r, http.StatusOK, "groups", rows)
}

func (h *Handler) listGroups(ctx context.Context) ([]groupRow, error) {
	topics, err := h.adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*groupRow)
	row := func(name string) *groupRow {
		if byName[name] == nil {
			byName[name] = &groupRow{Name: name}
		}
		return byName[name]
	}
	exists := func(t string) bool { _, ok := topics[t]; return ok }
	dlts := make(map[string]*groupRow) // dead-letter topic -> its group's row
	for name := range topics {
		base, ok := strings.CutSuffix(name, ".dlt")
		if !ok {
			continue
		}
		topic, group, ok := wire.SplitTopicGroup(base, exists)
		if !ok {
			continue
		}
		g := row(group)
		g.Topics = append(g.Topics, topic)
		dlts[name] = g
	}
	if len(dlts) > 0 {
		names := slices.Collect(maps.Keys(dlts))
		starts, err := h.adm.ListStartOffsets(ctx, names...)
		if err != nil {
			return nil, err
		}
		ends, err := h.adm.ListEndOffsets(ctx, names...)
		if err != nil {
			return nil, err
		}
		for name, g := range dlts {
			for p, e := range ends[name] {
				if s, ok := starts.Lookup(name, p); ok && e.Err == nil && s.Err == nil {
					g.DeadLetters += e.Offset - s.Offset
				}
			}
		}
	}
	listed, err := h.adm.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range listed.Groups() {
		row(g).Consumer = true
	}
	out := make([]groupRow, 0, len(byName))
	for _, g := range byName {
		slices.Sort(g.Topics)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b groupRow) int {
		return cmp.Or(cmp.Compare(b.DeadLetters, a.DeadLetters), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

type lagData struct {
	Group string
	Rows  []PartitionLag
	Total int64
}

func (h *Handler) lagPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	g := r.PathValue("group")
	rows, err := GroupLag(ctx, h.cl, g)
	if err != nil {
		h.logger.Error("console: lag", "group", g, "err", err)
		h.fail(w, r, http.StatusBadGateway, err.Error())
		return
	}
	d := lagData{Group: g, Rows: rows}
	for _, l := range rows {
		d.Total += l.Records
	}
	h.render(w, r, http.StatusOK, "lag", d)
}

type outboxData struct {
	Configured    bool
	Table         string
	Status        outbox.Status
	HolderUnknown bool
	Err           string
}

func (h *Handler) outboxPage(w http.ResponseWriter, r *http.Request) {
	d := outboxData{Configured: h.outbox.Status != nil, Table: h.outbox.Table, HolderUnknown: h.outbox.HolderUnknown}
	status := http.StatusOK
	if d.Configured {
		ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
		defer cancel()
		st, err := h.outbox.Status(ctx)
		if err != nil {
			h.logger.Error("console: outbox status", "err", err)
			d.Err, status = err.Error(), http.StatusBadGateway
		}
		d.Status = st
	}
	h.render(w, r, status, "outbox", d)
}
