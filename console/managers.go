package console

import (
	"context"
	"errors"
	"sync"

	"github.com/evbus/evbus/deadletter"
)

// managers holds one deadletter.Manager per group, created on the first
// page of the group and kept: a Manager follows its group, so later pages
// read only what was written since.
type managers struct {
	mu     sync.Mutex // guards byName and closed
	byName map[string]*managerSlot
	closed bool
}

// maxManagers bounds the Managers kept; past it, a group's pages read its
// dead letters anew on each request.
const maxManagers = 256

// managerSlot is a group's Manager, or its creation under way (ready
// open). Its fields are written before ready is closed.
type managerSlot struct {
	ready  chan struct{}
	m      *deadletter.Manager
	err    error
	shared bool // kept in byName: its users must not close it
}

var errClosed = errors.New("console: the handler is closed")

// manager returns group's Manager and what to call when done with it. The
// first request of a group creates it; it is kept when the group has a
// dead-letter topic, so that names that are no group's cost nothing after
// their request.
func (h *Handler) manager(ctx context.Context, group string) (*deadletter.Manager, func(), error) {
	ms := &h.managers
	ms.mu.Lock()
	if ms.closed {
		ms.mu.Unlock()
		return nil, nil, errClosed
	}
	if s, ok := ms.byName[group]; ok {
		ms.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		}
		switch {
		case s.err != nil:
			return nil, nil, s.err
		case s.shared:
			return s.m, func() {}, nil
		}
		return h.ownManager(ctx, group)
	}
	if len(ms.byName) >= maxManagers {
		ms.mu.Unlock()
		return h.ownManager(ctx, group)
	}
	s := &managerSlot{ready: make(chan struct{})}
	ms.byName[group] = s
	ms.mu.Unlock()

	// Created with a context of its own: a request given up on must not
	// fail the others waiting for the same group.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pageTimeout)
	s.m, s.err = deadletter.NewManager(cctx, h.cl, group)
	cancel()
	s.shared = s.err == nil && len(s.m.DeadLetterTopics()) > 0
	ms.mu.Lock()
	if !s.shared && !ms.closed {
		delete(ms.byName, group)
	}
	ms.mu.Unlock()
	close(s.ready)
	switch {
	case s.err != nil:
		return nil, nil, s.err
	case s.shared:
		return s.m, func() {}, nil // closeAll closes it
	}
	return s.m, s.m.Close, nil
}

// ownManager returns a Manager for this request alone. Its first read is
// bounded by pageTimeout, as a kept Manager's is: the request's own
// context has no deadline.
func (h *Handler) ownManager(ctx context.Context, group string) (*deadletter.Manager, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, pageTimeout)
	defer cancel()
	m, err := deadletter.NewManager(ctx, h.cl, group)
	if err != nil {
		return nil, nil, err
	}
	return m, m.Close, nil
}

// closeAll closes every kept Manager; later requests get errClosed.
func (ms *managers) closeAll() {
	ms.mu.Lock()
	ms.closed = true
	slots := ms.byName
	ms.byName = nil
	ms.mu.Unlock()
	for _, s := range slots {
		<-s.ready
		if s.shared {
			s.m.Close()
		}
	}
}
