package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// actionTimeout bounds an action. It runs on even if the browser goes
// away: an action cut short is resumable, but better finished.
const actionTimeout = 10 * time.Minute

// action serves POST /groups/{group}/actions/{action}: replay, discard or
// park of one dead letter (form value id) or of a fingerprint's
// (fingerprint), or the reveal of one dead letter's value. The caller
// (requireOperator) has checked the role, the origin and the CSRF token.
func (h *Handler) action(w http.ResponseWriter, r *http.Request) {
	u := userOf(r.Context())
	kind := r.PathValue("action")
	run, known := runs[kind]
	if !known && kind != "reveal" {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("no action %q: want replay, discard, park or reveal", kind))
		return
	}
	id, fp := r.PostFormValue("id"), r.PostFormValue("fingerprint")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	group := r.PathValue("group")
	by := deadletter.Actor{Name: u.token.name() + " (console)", Reason: reason}

	var sel deadletter.Selection
	back := ""
	switch {
	case id != "" && fp == "":
		sel.IDs, back = []string{id}, letterPath(group, id)
	case fp != "" && id == "" && kind != "reveal":
		sel.Fingerprint, back = fp, fingerprintPath(group, fp)
	default:
		h.actionFailed(w, r, groupPath(group), http.StatusBadRequest, "name one dead letter (id) or one fingerprint (fingerprint); a reveal takes an id")
		return
	}
	if reason == "" && kind != "replay" {
		h.actionFailed(w, r, back, http.StatusBadRequest, kind+" needs a reason: the ledger records why")
		return
	}

	m, release, err := h.manager(r.Context(), group)
	if err != nil {
		h.kafkaError(w, r, err)
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), actionTimeout)
	defer cancel()

	if kind == "reveal" {
		h.reveal(w, r, m, id, by)
		return
	}
	rep, err := run(m, ctx, sel, by)
	msg := summary(kind, rep)
	h.logger.Info("console: action", "action", kind, "group", group, "selection", sel.String(), "user", u.token, "done", rep.Done, "err", err)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, deadletter.ErrNotFound) {
			status = http.StatusNotFound
		}
		h.actionFailed(w, r, back, status, msg+"; it stopped: "+err.Error())
		return
	}
	h.redirectWith(w, r, back, msg)
}

// runs are the actions on a selection, by the name in the path.
var runs = map[string]func(*deadletter.Manager, context.Context, deadletter.Selection, deadletter.Actor) (deadletter.Report, error){
	"replay":  (*deadletter.Manager).Replay,
	"discard": (*deadletter.Manager).Discard,
	"park":    (*deadletter.Manager).Park,
}

// reveal records that the operator sees the dead letter's value, then
// shows it in this response only.
func (h *Handler) reveal(w http.ResponseWriter, r *http.Request, m *deadletter.Manager, id string, by deadletter.Actor) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), pageTimeout)
	defer cancel()
	d, err := h.letter(ctx, r, m, id, true)
	if err != nil {
		h.kafkaError(w, r, err)
		return
	}
	fields := shownPaths(d.Value.Fields)
	if d.Value.Err != "" {
		fields = []string{"(raw value)"}
	}
	if len(fields) == 0 {
		h.actionFailed(w, r, letterPath(m.Group(), id), http.StatusBadRequest, "nothing to reveal: the value has no field that may be shown (none, or all on the never-show list)")
		return
	}
	if err := m.Reveal(ctx, id, fields, by); err != nil {
		h.actionFailed(w, r, letterPath(m.Group(), id), http.StatusBadGateway, "the reveal could not be recorded, so nothing is shown: "+err.Error())
		return
	}
	h.logger.Info("console: reveal", "group", m.Group(), "id", id, "user", userOf(r.Context()).token, "fields", len(fields))
	// The history shown includes the reveal just recorded; the value
	// decoded above stays.
	if l, err := m.Get(ctx, id); err == nil {
		d.Letter = l
	}
	h.render(w, r, http.StatusOK, "letter", d)
}

// actionForm is one of a dead letter's action forms.
type actionForm struct {
	Name, Label, Button string
	NeedsReason         bool
}

var actionForms = []actionForm{
	{"replay", "Replay it to its group", "Replay", false},
	{"park", "Park it (held back from bulk replays)", "Park", true},
	{"discard", "Discard it (nothing is deleted from Kafka)", "Discard", true},
	{"reveal", "Reveal its value to you (recorded)", "Reveal", true},
}

// summary says what an action did, in one sentence.
func summary(kind string, rep deadletter.Report) string {
	var parts []string
	done := rep.Count(deadletter.Action(kind))
	parts = append(parts, fmt.Sprintf("%s: %d dead letter%s", pastTense(kind), done, plural(done)))
	if kind == "replay" {
		if n := rep.Count(wire.ActionPark); n > 0 {
			parts = append(parts, fmt.Sprintf("%d parked by the loop guard", n))
		}
	}
	left, why := 0, ""
	for _, s := range rep.Steps {
		if s.Do == "" {
			left++
			if why == "" {
				why = s.Why
			}
		}
	}
	if left > 0 {
		parts = append(parts, fmt.Sprintf("%d left alone (%s)", left, why))
	}
	return strings.Join(parts, ", ")
}

func pastTense(kind string) string {
	switch kind {
	case "replay":
		return "replayed"
	case "discard":
		return "discarded"
	case "park":
		return "parked"
	}
	return kind
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// redirectWith sends the browser back to the console page path with msg
// shown once there; a script reads msg in the body.
func (h *Handler) redirectWith(w http.ResponseWriter, r *http.Request, path, msg string) {
	if s := userOf(r.Context()).session; s != nil {
		s.setFlash(msg)
	}
	w.Header().Set("Location", h.path(path))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusSeeOther)
	fmt.Fprintln(w, msg)
}

// actionFailed answers an action that did not happen (or not all of it):
// a browser goes back with the message, a script gets status and message.
func (h *Handler) actionFailed(w http.ResponseWriter, r *http.Request, back string, status int, msg string) {
	if userOf(r.Context()).session != nil {
		h.redirectWith(w, r, back, msg)
		return
	}
	http.Error(w, msg, status)
}
