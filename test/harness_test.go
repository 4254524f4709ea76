package test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// deadline is the generous bound every scenario waits for its events.
const deadline = 120 * time.Second

// startService starts a service and stops it when the test ends.
func startService(t testing.TB, cfg ipc.Config) *ipc.Service {
	t.Helper()
	s, err := ipc.NewService(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, s.Stop(ctx))
	})
	return s
}

// wait blocks until ch is closed or the deadline passes.
func wait(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// chainedEcho runs SolidFrame's basic scenario against an echo server at
// addr: initial requests are sent, each response triggers one more request,
// until total (sizes from testmsg.Table15 by index) have been echoed. Every
// response is checked byte-exact against its request. It returns once
// every request index completed; call quiet on the result once nothing
// more can happen to check that none completed twice.
func chainedEcho(t *testing.T, client *ipc.Service, addr string, total, initial int) *echoRun {
	t.Helper()
	sizes := testmsg.Table15
	r := chainRequests(t, client, addr, sizes, total, initial, func(idx uint32, resp *testmsg.Message, err error) error {
		switch {
		case err != nil:
			return fmt.Errorf("request %d: %w", idx, err)
		case resp == nil:
			return fmt.Errorf("request %d: nil response", idx)
		case resp.Idx != idx:
			return fmt.Errorf("request %d answered by %d", idx, resp.Idx)
		}
		return testmsg.Verify(resp, sizes[int(resp.Idx)%len(sizes)])
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(t, r.errs)
	require.Equal(t, total, r.sent)
	return r
}

// chainRequests sends total requests (sizes by index) from client to dest,
// initial at once and one more per completion, judges each completion with
// check, and returns once every request index completed.
func chainRequests(t *testing.T, client *ipc.Service, dest string, sizes []int, total, initial int, check func(idx uint32, resp *testmsg.Message, err error) error) *echoRun {
	t.Helper()
	r := &echoRun{total: total, counts: map[uint32]int{}}
	done := make(chan struct{})
	var send func()
	cb := func(req, resp *testmsg.Message, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.counts[req.Idx]++
		if e := check(req.Idx, resp, err); e != nil {
			r.errs = append(r.errs, e)
		}
		if r.sent < total {
			send()
		}
		if len(r.counts) == total && r.counts[req.Idx] == 1 {
			close(done) // the last index completed for the first time
		}
	}
	send = func() { // r.mu held
		idx := r.sent
		r.sent++
		if err := ipc.SendRequest(client, dest, testmsg.New(idx, sizes[idx%len(sizes)]), 0, cb); err != nil {
			r.errs = append(r.errs, fmt.Errorf("send %d: %w", idx, err))
		}
	}
	r.mu.Lock()
	for range initial {
		send()
	}
	r.mu.Unlock()
	wait(t, done, fmt.Sprintf("%d chained requests", total))
	return r
}

// echoRun is the record of one chainedEcho: completions per request index.
type echoRun struct {
	total  int
	mu     sync.Mutex
	sent   int
	counts map[uint32]int
	errs   []error
}

// quiet stops client (waiting for it) and checks, now that nothing can
// complete any more, that every request completed exactly once and
// nothing failed.
func (r *echoRun) quiet(t testing.TB, client *ipc.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, client.Stop(ctx))
	r.once(t)
}

// once checks, once the sender has stopped, that every request completed
// exactly once and that none failed its check.
func (r *echoRun) once(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(t, r.errs)
	for idx := range r.total {
		require.Equal(t, 1, r.counts[uint32(idx)], "request %d completions", idx)
	}
	require.Len(t, r.counts, r.total)
}
