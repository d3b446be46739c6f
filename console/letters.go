package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// letterPageSize is how many dead letters a fingerprint's page lists.
const letterPageSize = 100

// stateOrder is the order pages list states in.
var stateOrder = []wire.LedgerState{wire.LedgerOpen, wire.LedgerReplaying, wire.LedgerFailedAgain, wire.LedgerParked, wire.LedgerResolved, wire.LedgerDiscarded}

type stateCount struct {
	State wire.LedgerState
	Count int
}

func stateCounts(m map[wire.LedgerState]int) []stateCount {
	var out []stateCount
	for _, s := range stateOrder {
		if m[s] > 0 {
			out = append(out, stateCount{s, m[s]})
		}
	}
	return out
}

// withManager calls page with the Manager of the request's group and a
// context bounded by pageTimeout, or answers the request with the error.
func (h *Handler) withManager(w http.ResponseWriter, r *http.Request, page func(context.Context, http.ResponseWriter, *http.Request, *deadletter.Manager)) {
	m, release, err := h.manager(r.Context(), r.PathValue("group"))
	if err != nil {
		h.kafkaError(w, r, err)
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	page(ctx, w, r, m)
}

// kafkaError answers with err: 404 for what does not exist, else 502.
func (h *Handler) kafkaError(w http.ResponseWriter, r *http.Request, err error) {
	var nt *deadletter.NoTopicError
	switch {
	case errors.As(err, &nt), errors.Is(err, deadletter.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, err.Error())
	case errors.Is(err, errClosed):
		h.fail(w, r, http.StatusServiceUnavailable, err.Error())
	default:
		h.logger.Error("console: Kafka", "path", r.URL.Path, "err", err)
		h.fail(w, r, http.StatusBadGateway, err.Error())
	}
}

type groupData struct {
	Group        string
	Fingerprints []deadletter.FingerprintGroup
	Total        int
	States       []stateCount
}

// groupPage lists a group's dead letters by fingerprint.
func (h *Handler) groupPage(w http.ResponseWriter, r *http.Request) {
	h.withManager(w, r, h.showGroup)
}

func (h *Handler) showGroup(ctx context.Context, w http.ResponseWriter, r *http.Request, m *deadletter.Manager) {
	gs, err := m.Groups(ctx)
	if err != nil {
		h.kafkaError(w, r, err)
		return
	}
	d := groupData{Group: m.Group(), Fingerprints: gs}
	all := make(map[wire.LedgerState]int)
	for _, g := range gs {
		d.Total += g.Count
		for s, n := range g.States {
			all[s] += n
		}
	}
	d.States = stateCounts(all)
	h.render(w, r, http.StatusOK, "group", d)
}

type fingerprintData struct {
	Group       string
	Fingerprint deadletter.Fingerprint
	Letters     []deadletter.Letter
	Total       int
	States      []stateCount
	Page, Pages int
	First       int // the 1-based position of the page's first letter
	Operator    bool
}

// fingerprintPage lists the dead letters of one fingerprint, a page at a
// time, oldest failure first.
func (h *Handler) fingerprintPage(w http.ResponseWriter, r *http.Request) {
	h.withManager(w, r, h.showFingerprint)
}

func (h *Handler) showFingerprint(ctx context.Context, w http.ResponseWriter, r *http.Request, m *deadletter.Manager) {
	fp := r.PathValue("fp")
	ls, err := m.List(ctx, deadletter.Selection{Fingerprint: fp})
	if err != nil {
		h.kafkaError(w, r, err)
		return
	}
	if len(ls) == 0 {
		h.fail(w, r, http.StatusNotFound, "group "+m.Group()+" has no dead letter of fingerprint "+fp)
		return
	}
	d := fingerprintData{Group: m.Group(), Fingerprint: ls[0].Fingerprint, Total: len(ls), Page: 1,
		Pages: (len(ls) + letterPageSize - 1) / letterPageSize, Operator: userOf(r.Context()).role() == Operator}
	if p, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && p > 1 {
		d.Page = min(p, d.Pages)
	}
	counts := make(map[wire.LedgerState]int)
	for _, l := range ls {
		counts[l.State]++
	}
	d.States = stateCounts(counts)
	start := (d.Page - 1) * letterPageSize
	d.Letters, d.First = ls[start:min(start+letterPageSize, len(ls))], start+1
	h.render(w, r, http.StatusOK, "fingerprint", d)
}

type headerRow struct{ Key, Value string }

type letterData struct {
	Group    string
	Letter   deadletter.Letter
	Key      string
	Headers  []headerRow
	Value    decodedValue
	Operator bool
	// Revealed: this response shows the value, after a recorded reveal.
	Revealed bool
}

// letterPage shows one dead letter: its headers, its value masked, its
// history.
func (h *Handler) letterPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		h.fail(w, r, http.StatusBadRequest, "no dead letter named: add ?id=<topic>/<partition>/<offset>")
		return
	}
	h.withManager(w, r, func(ctx context.Context, w http.ResponseWriter, r *http.Request, m *deadletter.Manager) {
		d, err := h.letter(ctx, r, m, id, false)
		if err != nil {
			h.kafkaError(w, r, err)
			return
		}
		h.render(w, r, http.StatusOK, "letter", d)
	})
}

// letter reads dead letter id of m's group for its page, its value
// decoded (and shown when reveal).
func (h *Handler) letter(ctx context.Context, r *http.Request, m *deadletter.Manager, id string, reveal bool) (letterData, error) {
	l, err := m.Get(ctx, id)
	if err != nil {
		return letterData{}, err
	}
	d := letterData{Group: m.Group(), Letter: l, Operator: userOf(r.Context()).role() == Operator, Revealed: reveal}
	if l.Record != nil {
		d.Key = headerText(l.Record.Key)
		for _, hd := range l.Record.Headers {
			d.Headers = append(d.Headers, headerRow{hd.Key, headerText(hd.Value)})
		}
		if d.Value, err = h.decodeValue(ctx, l.Record, reveal); err != nil {
			return letterData{}, err
		}
	}
	return d, nil
}

// groupPath is the page of group; its name may hold a slash.
func groupPath(group string) string { return "/groups/" + url.PathEscape(group) }

// letterPath is the page of dead letter id of group.
func letterPath(group, id string) string {
	return groupPath(group) + "/letter?id=" + url.QueryEscape(id)
}

func fingerprintPath(group, fp string) string {
	return groupPath(group) + "/fingerprints/" + url.PathEscape(fp)
}

// trimError shortens an error text for a table cell.
func trimError(s string) string {
	if len(s) <= 160 {
		return s
	}
	cut := 160
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimSpace(s[:cut]) + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
