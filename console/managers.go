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

// managerSlot is a group's Manager, or its creation under way (ready
// open).
type managerSlot struct {
	ready chan struct{}
	m     *deadletter.Manager
	err   error
}

var errClosed = errors.New("console: the handler is closed")

// get returns group's Manager, creating it on first use. A group without
// any dead-letter topic gets a Manager that is not kept, so that names
// that are no group's cost nothing after the request.
func (h *Handler) manager(ctx context.Context, group string) (m *deadletter.Manager, release func(), err error) {
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
		if s.err != nil {
			return nil, nil, s.err
		}
		return s.m, func() {}, nil
	}
	s := &managerSlot{ready: make(chan struct{})}
	ms.byName[group] = s
	ms.mu.Unlock()

	// Created with a context of its own: a request given up on must not
	// fail the others waiting for the same group.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pageTimeout)
	s.m, s.err = deadletter.NewManager(cctx, h.cl, group)
	cancel()
	keep := s.err == nil && len(s.m.DeadLetterTopics()) > 0
	ms.mu.Lock()
	if !keep || ms.closed {
		delete(ms.byName, group)
	}
	closed := ms.closed
	ms.mu.Unlock()
	close(s.ready)
	if s.err != nil {
		return nil, nil, s.err
	}
	if !keep || closed {
		return s.m, s.m.Close, nil
	}
	return s.m, func() {}, nil
}

// closeAll closes every Manager; later requests get errClosed.
func (ms *managers) closeAll() {
	ms.mu.Lock()
	ms.closed = true
	slots := ms.byName
	ms.byName = nil
	ms.mu.Unlock()
	for _, s := range slots {
		<-s.ready
		if s.m != nil {
			s.m.Close()
		}
	}
}
