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
// response is checked byte-exact against its request; every send completes
// exactly once.
func chainedEcho(t *testing.T, client *ipc.Service, addr string, total, initial int) {
	t.Helper()
	sizes := testmsg.Table15
	var (
		mu              sync.Mutex
		sent, completed int
		errs            []error
		done            = make(chan struct{})
	)
	var send func()
	cb := func(req, resp *testmsg.Message, err error) {
		mu.Lock()
		defer mu.Unlock()
		completed++
		switch {
		case err != nil:
			errs = append(errs, err)
		case resp == nil:
			errs = append(errs, fmt.Errorf("request %d: nil response", req.Idx))
		case resp.Idx != req.Idx:
			errs = append(errs, fmt.Errorf("request %d answered by %d", req.Idx, resp.Idx))
		default:
			if err := testmsg.Verify(resp, sizes[int(resp.Idx)%len(sizes)]); err != nil {
				errs = append(errs, err)
			}
		}
		if sent < total {
			send()
		}
		if completed == total {
			close(done)
		}
	}
	send = func() { // mu held
		idx := sent
		sent++
		if err := ipc.SendRequest(client, addr, testmsg.New(idx, sizes[idx%len(sizes)]), 0, cb); err != nil {
			errs = append(errs, err)
			completed++
		}
	}
	mu.Lock()
	for range initial {
		send()
	}
	mu.Unlock()
	wait(t, done, fmt.Sprintf("%d echoed requests", total))
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, errs)
	require.Equal(t, total, completed)
	require.Equal(t, total, sent)
}
