package ipc_test

import (
	"context"
	"runtime"
	"runtime/debug"
	"slices"
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
// over idle windows the whole process uses a small fraction of one CPU.
// A loop that kept polling would use most of every window. The bound is on
// CPU time, which other processes on the machine do not inflate; the
// windows' length only sets the scale. The process's own background work
// (the garbage collector and scavenger finishing earlier tests' memory, the
// race detector) comes in bursts, so the test first collects garbage and
// then takes the median of several windows: a burst lands in one window, a
// polling loop would fill them all (CI once saw 52 ms in a single 500 ms
// window, with the loops idle).
func TestIdleServiceUsesNoCPU(t *testing.T) {
	server, client := callPair(t, echoCall, ipc.Config{})
	addr := server.Addr().String()
	for i := range 100 {
		_, err := ipc.Call[callMsg, callMsg](context.Background(), client, addr, &callMsg{N: uint64(i)}, 0)
		require.NoError(t, err)
	}
	runtime.GC()
	debug.FreeOSMemory()
	const (
		window  = 100 * time.Millisecond
		windows = 7
	)
	used := make([]time.Duration, windows)
	for i := range used {
		idle := time.NewTimer(window)
		before := processCPU(t)
		<-idle.C
		used[i] = processCPU(t) - before
	}
	t.Logf("CPU used by the idle process in %d windows of %v: %v", windows, window, used)
	slices.Sort(used)
	require.Less(t, used[windows/2], window/10, "an idle service keeps using CPU (median window)")
}
