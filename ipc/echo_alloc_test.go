package ipc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// echoAllocMsg is the recyclable 1 KiB payload of TestEchoZeroAllocs.
type echoAllocMsg struct {
	ipc.Recyclable
	Data []byte
}

func (m *echoAllocMsg) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// TestEchoZeroAllocs backs the claim of docs/tuning.md ("Zero allocations
// with Recyclable") at the ipc level: a request/response round trip of a
// recyclable 1 KiB message through two Services over a loopback socket,
// with the callback built once, allocates nothing in steady state, client
// and server together. testing.AllocsPerRun counts every allocation of the
// process during the round, on the event loops too; the test's own part
// (a send and a receive on a buffered channel) allocates nothing.
//
// The request is sent from the test goroutine, so every round crosses
// goroutines twice (send → client loop, completion → test): the path whose
// wake-ups could allocate.
//
// The "logger" case gives both services a real slog handler at Info
// level: logging costs nothing per message either (docs/tuning.md,
// Logger).
func TestEchoZeroAllocs(t *testing.T) {
	t.Run("nil logger", func(t *testing.T) { testEchoZeroAllocs(t, nil) })
	t.Run("logger", func(t *testing.T) {
		testEchoZeroAllocs(t, slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	})
}

func testEchoZeroAllocs(t *testing.T, logger *slog.Logger) {
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *echoAllocMsg) { _ = ctx.Respond(m) })
	server := startTestService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", Logger: logger})
	cp := ipc.NewProtocol()
	ipc.MustRegister[echoAllocMsg](cp, 1, nil)
	client := startTestService(t, ipc.Config{Protocol: cp, Logger: logger})
	addr := server.Addr().String()

	done := make(chan error, 1)
	var size int
	cb := func(req, resp *echoAllocMsg, err error) {
		if err == nil && len(resp.Data) != size {
			err = errShortEcho
		}
		done <- err
	}
	m := &echoAllocMsg{Data: make([]byte, 1024)}
	size = len(m.Data)
	allocs := roundAllocs(t, func() error {
		if err := ipc.SendRequest(client, addr, m, 0, cb); err != nil {
			return err
		}
		return <-done // a hang is caught by go test -timeout
	})
	t.Logf("allocations per echo, client and server: %v", allocs)
	require.Zero(t, allocs, "allocations per echo, client and server")
}

// roundAllocs runs round 100 times (to connect and fill the pools), then
// returns its allocations per run (testing.AllocsPerRun, 500 runs); the
// test fails if a round returned an error.
func roundAllocs(t *testing.T, round func() error) float64 {
	t.Helper()
	var failed error
	run := func() {
		if err := round(); err != nil {
			failed = err
		}
	}
	for range 100 {
		run()
	}
	require.NoError(t, failed)
	allocs := testing.AllocsPerRun(500, run)
	require.NoError(t, failed)
	return allocs
}

var errShortEcho = errors.New("echo of the wrong size")

// startTestService starts a service and stops it, draining, when the test
// ends.
func startTestService(tb testing.TB, cfg ipc.Config) *ipc.Service {
	tb.Helper()
	s, err := ipc.NewService(cfg)
	require.NoError(tb, err)
	require.NoError(tb, s.Start())
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(tb, s.Stop(ctx))
	})
	return s
}
