package axis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"lienthong/adapters/axis"
	"lienthong/adapters/axis/axissim"
)

var errNotWellFormed = errors.New("test: package is not well-formed") // permanent

// memAcceptor stands in for the hub's accept path: idempotent on
// (systemID, axisDocID), as the Acceptor contract requires.
type memAcceptor struct {
	mu    sync.Mutex           // guards all fields
	ids   map[[2]string]string // (systemID, axisDocID) -> document id
	raws  map[[2]string][]byte // what was accepted
	calls int                  // AcceptFromAxis calls
	errs  map[string][]error   // axisDocID -> errors to return first
}

func newMemAcceptor() *memAcceptor {
	return &memAcceptor{ids: map[[2]string]string{}, raws: map[[2]string][]byte{}, errs: map[string][]error{}}
}

func (a *memAcceptor) AcceptFromAxis(_ context.Context, systemID, axisDocID string, raw []byte) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if q := a.errs[axisDocID]; len(q) > 0 {
		a.errs[axisDocID] = q[1:]
		return "", q[0]
	}
	key := [2]string{systemID, axisDocID}
	if id, ok := a.ids[key]; ok {
		return id, nil
	}
	id := fmt.Sprintf("doc-%d", len(a.ids)+1)
	a.ids[key] = id
	a.raws[key] = slices.Clone(raw)
	return id, nil
}

func (a *memAcceptor) snapshot() (calls, docs int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls, len(a.ids)
}

func newPoller(e *env, t *testing.T, acc axis.Acceptor) *axis.Poller {
	return &axis.Poller{
		Client:      e.client(t, 0, func(cfg *axis.Config) { cfg.MaxRetries = -1 }),
		Acceptor:    acc,
		Interval:    10 * time.Millisecond,
		IsPermanent: func(err error) bool { return errors.Is(err, errNotWellFormed) },
	}
}

func TestPollerAcceptsAndMarksDone(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	acc := newMemAcceptor()
	p := newPoller(e, t, acc)
	doc := edocTo(organH41, organNA)
	st := statusFor(organH41, organNA, "03")
	docID := e.sim.Inject(organNA, axis.MessageTypeEdoc, doc)
	stID := e.sim.Inject(organNA, axis.MessageTypeStatus, st)
	e.sim.DuplicateNext(axis.OpGetReceivedEdocList, 1)

	res, err := p.PollOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res != (axis.PollResult{Listed: 2, Accepted: 2}) {
		t.Fatalf("result = %+v", res)
	}
	if calls, docs := acc.snapshot(); calls != 2 || docs != 2 {
		t.Fatalf("acceptor calls=%d docs=%d; a duplicated list entry was taken twice", calls, docs)
	}
	if !bytes.Equal(acc.raws[[2]string{"lt.quochoi", docID}], doc) || !bytes.Equal(acc.raws[[2]string{"lt.quochoi", stID}], st) {
		t.Fatal("accepted bytes differ from the injected ones")
	}
	updates := e.sim.StatusUpdates()
	if !slices.Equal(updates[docID], []string{"done"}) || !slices.Equal(updates[stID], []string{"done"}) {
		t.Fatalf("status updates = %v", updates)
	}
	if res, err := p.PollOnce(ctx); err != nil || res != (axis.PollResult{}) {
		t.Fatalf("second poll: %+v, %v", res, err)
	}
	e.assertNoRefusals(t)
}

// TestPollerCrashBetweenAcceptAndUpdate is edxml.md §14 item 32's last case.
func TestPollerCrashBetweenAcceptAndUpdate(t *testing.T) {
	for _, test := range []struct {
		name  string
		fault axissim.Fault
	}{
		{"updateStatus refused", axissim.Fault{ErrorCode: axissim.CodeSimulated}},
		{"updateStatus HTTP 500", axissim.Fault{HTTPStatus: 500}},
	} {
		t.Run(test.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			acc := newMemAcceptor()
			p := newPoller(e, t, acc)
			axisID := e.sim.Inject(organNA, axis.MessageTypeEdoc, edocTo(organG22, organNA))
			e.sim.FailNext(axis.OpUpdateStatus, 1, test.fault)

			res, err := p.PollOnce(ctx)
			if err == nil || res != (axis.PollResult{Listed: 1, Deferred: 1}) {
				t.Fatalf("first poll: %+v, %v", res, err)
			}
			if len(e.sim.Pending(organNA)) != 1 {
				t.Fatal("package left the queue without updateStatus(done)")
			}
			first := acc.ids[[2]string{"lt.quochoi", axisID}]

			res, err = p.PollOnce(ctx)
			if err != nil || res != (axis.PollResult{Listed: 1, Accepted: 1}) {
				t.Fatalf("second poll: %+v, %v", res, err)
			}
			calls, docs := acc.snapshot()
			if calls != 2 || docs != 1 || acc.ids[[2]string{"lt.quochoi", axisID}] != first {
				t.Fatalf("calls=%d docs=%d: the repeat was not folded into the first accept", calls, docs)
			}
			if got := e.sim.StatusUpdates()[axisID]; !slices.Equal(got, []string{"done"}) {
				t.Fatalf("status updates = %v", got)
			}
			if len(e.sim.Pending(organNA)) != 0 {
				t.Fatal("still pending")
			}
		})
	}
}

func TestPollerErrorPaths(t *testing.T) {
	ctx := context.Background()
	t.Run("permanent refusal is marked fail", func(t *testing.T) {
		e := newEnv(t)
		acc := newMemAcceptor()
		id := e.sim.Inject(organNA, axis.MessageTypeEdoc, []byte("1212<?xml version=\"1.0\"?><edXML/>"))
		acc.errs[id] = []error{fmt.Errorf("accept: %w", errNotWellFormed)}
		res, err := newPoller(e, t, acc).PollOnce(ctx)
		if err != nil || res != (axis.PollResult{Listed: 1, Failed: 1}) {
			t.Fatalf("%+v, %v", res, err)
		}
		if got := e.sim.StatusUpdates()[id]; !slices.Equal(got, []string{"fail"}) {
			t.Fatalf("status updates = %v", got)
		}
		if got := e.sim.FailReasons()[id]; got != "accept: test: package is not well-formed" {
			t.Fatalf("fail reason = %q", got)
		}
		e.assertNoRefusals(t)
	})
	t.Run("transient accept error is retried next poll", func(t *testing.T) {
		e := newEnv(t)
		acc := newMemAcceptor()
		id := e.sim.Inject(organNA, axis.MessageTypeEdoc, edocTo(organG22, organNA))
		acc.errs[id] = []error{errors.New("test: database unavailable")}
		p := newPoller(e, t, acc)
		if res, err := p.PollOnce(ctx); err == nil || res.Deferred != 1 {
			t.Fatalf("%+v, %v", res, err)
		}
		if _, ok := e.sim.StatusUpdates()[id]; ok {
			t.Fatal("updateStatus called after a transient error")
		}
		if res, err := p.PollOnce(ctx); err != nil || res.Accepted != 1 {
			t.Fatalf("%+v, %v", res, err)
		}
	})
	t.Run("nil IsPermanent never marks fail", func(t *testing.T) {
		e := newEnv(t)
		acc := newMemAcceptor()
		id := e.sim.Inject(organNA, axis.MessageTypeEdoc, edocTo(organG22, organNA))
		acc.errs[id] = []error{errNotWellFormed}
		p := newPoller(e, t, acc)
		p.IsPermanent = nil
		if res, _ := p.PollOnce(ctx); res.Deferred != 1 || len(e.sim.StatusUpdates()) != 0 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("getEdoc failure defers, list failure reported", func(t *testing.T) {
		e := newEnv(t)
		acc := newMemAcceptor()
		e.sim.Inject(organNA, axis.MessageTypeEdoc, edocTo(organG22, organNA))
		e.sim.FailNext(axis.OpGetReceivedEdocList, 1, axissim.Fault{HTTPStatus: 500}) // the edoc list
		e.sim.FailNext(axis.OpGetEdoc, 1, axissim.Fault{HTTPStatus: 500})
		p := newPoller(e, t, acc)
		res, err := p.PollOnce(ctx)
		if err == nil || res.Listed != 0 {
			t.Fatalf("%+v, %v", res, err)
		}
		res, err = p.PollOnce(ctx)
		if err == nil || res != (axis.PollResult{Listed: 1, Deferred: 1}) {
			t.Fatalf("%+v, %v", res, err)
		}
		if calls, _ := acc.snapshot(); calls != 0 {
			t.Fatal("accepted without bytes")
		}
		if res, err = p.PollOnce(ctx); err != nil || res.Accepted != 1 {
			t.Fatalf("%+v, %v", res, err)
		}
	})
}

func TestPollerRun(t *testing.T) {
	e := newEnv(t)
	acc := newMemAcceptor()
	p := newPoller(e, t, acc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for i := range 3 {
		e.sim.Inject(organNA, axis.MessageTypeEdoc, edocTo(organG22, organNA))
		e.sim.Inject(organNA, axis.MessageTypeStatus, statusFor(organG22, organNA, fmt.Sprintf("0%d", i+1)))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.sim.Pending(organNA)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("poller did not drain the queue")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, docs := acc.snapshot(); docs != 6 {
		t.Fatalf("accepted %d, want 6", docs)
	}
	if err := (&axis.Poller{}).Run(context.Background()); err == nil {
		t.Fatal("Run without Client accepted")
	}
	e.assertNoRefusals(t)
}
