package ipc_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// processCPU returns the CPU time (user + system) the process has used.
func processCPU(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestIdleServiceUsesNoCPU: once traffic stops, a server and a client with
// an open connection between them (busy polling on, the default) go quiet:
// over an idle window the whole process uses a small fraction of one CPU.
// A loop that kept polling would use the whole window. The bound is on CPU
// time, which other processes on the machine do not inflate; the window's
// length only sets the scale.
func TestIdleServiceUsesNoCPU(t *testing.T) {
	server, client := callPair(t, echoCall, ipc.Config{})
	addr := server.Addr().String()
	for i := range 100 {
		_, err := ipc.Call[callMsg, callMsg](context.Background(), client, addr, &callMsg{N: uint64(i)}, 0)
		require.NoError(t, err)
	}
	const window = 500 * time.Millisecond
	idle := time.NewTimer(window)
	defer idle.Stop()
	before := processCPU(t)
	<-idle.C
	used := processCPU(t) - before
	t.Logf("CPU used by the idle process over %v: %v", window, used)
	require.Less(t, used, window/10, "an idle service keeps using CPU")
}
