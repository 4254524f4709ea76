package test

import (
	"context"
	"testing"
	"time"

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
