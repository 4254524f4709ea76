package ipc

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/internal/testmsg"
)

// recordHandler is a slog.Handler that keeps every record, with the
// attributes of WithAttrs.
type recordHandler struct {
	mu   *sync.Mutex
	recs *[]slog.Record
}

func newRecordHandler() recordHandler {
	return recordHandler{mu: new(sync.Mutex), recs: new([]slog.Record)}
}

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h recordHandler) WithGroup(string) slog.Handler            { return h }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.recs = append(*h.recs, r.Clone())
	return nil
}

// find returns the attributes of the records with message msg.
func (h recordHandler) find(msg string) []map[string]slog.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]slog.Value
	for _, r := range *h.recs {
		if r.Message != msg {
			continue
		}
		m := map[string]slog.Value{"level": slog.StringValue(r.Level.String())}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value
			return true
		})
		out = append(out, m)
	}
	return out
}

// TestLogEvents: connection and pool life events and errors reach
// Config.Logger with the same attributes (conn, peer, side, pool; err and
// cause on a close), on both sides: a call opens a connection, a silent
// socket is dropped by the first-packet rule, a socket beyond
// MaxAcceptedConnections is rejected, and the client's Stop closes its
// connection.
func TestLogEvents(t *testing.T) {
	sh, ch := newRecordHandler(), newRecordHandler()
	d := startDoorServer(t, Config{Logger: slog.New(sh), MaxAcceptedConnections: 2})
	addr := d.Addr().String()
	client, err := NewService(Config{Protocol: peerProtocol(false), Logger: slog.New(ch)})
	require.NoError(t, err)
	require.NoError(t, client.Start())
	_, err = Call[testmsg.Request, testmsg.Request](context.Background(), client, addr, &testmsg.Request{}, 0)
	require.NoError(t, err)

	silent := dialRaw(t, addr)
	d.await(t, "the silent socket", func() bool { return d.opened == 2 })
	rejected := dialRaw(t, addr)
	expectClosed(t, rejected)
	d.clk.Advance(DefaultFirstPacketTimeout)
	expectClosed(t, silent)
	d.await(t, "the silent socket's drop", func() bool { return len(d.stops) == 1 })
	require.NoError(t, client.Stop(context.Background()))
	d.await(t, "the client's connection to close", func() bool { return len(d.stops) == 2 })

	opened := sh.find("ipc: connection opened")
	require.Len(t, opened, 2)
	for _, a := range opened {
		require.Equal(t, "accepted", a[logSide].String())
		require.NotZero(t, a[logConn].Uint64())
		require.NotEmpty(t, a[logPeer].String())
		require.Equal(t, "DEBUG", a["level"].String())
	}
	closed := sh.find("ipc: connection closed")
	require.Len(t, closed, 2)
	var timeouts int
	for _, a := range closed {
		err, _ := a[logErr].Any().(error)
		require.Error(t, err)
		if errors.Is(err, ErrFirstPacketTimeout) {
			timeouts++
			require.Equal(t, "timeout", a[logCause].String())
			require.Equal(t, "INFO", a["level"].String())
		}
		require.Equal(t, "accepted", a[logSide].String())
		require.NotZero(t, a[logConn].Uint64())
	}
	require.Equal(t, 1, timeouts)
	limit := sh.find("reactor: accepted-connection limit reached")
	require.Len(t, limit, 1)
	require.Equal(t, int64(2), limit[0]["limit"].Int64())
	require.Equal(t, "WARN", limit[0]["level"].String())
	require.Len(t, sh.find("reactor: connection rejected"), 1)

	c := ch.find("ipc: connection opened")
	require.Len(t, c, 1)
	require.Equal(t, "dialed", c[0][logSide].String())
	require.Equal(t, addr, c[0][logPool].String())
	require.Equal(t, addr, c[0][logPeer].String())
	started := ch.find("ipc: pool ConnectionStart")
	require.Len(t, started, 1)
	require.Equal(t, addr, started[0][logPool].String())
	require.Equal(t, c[0][logConn].Uint64(), started[0][logConn].Uint64())
	cc := ch.find("ipc: connection closed")
	require.Len(t, cc, 1)
	require.Equal(t, "local", cc[0][logCause].String())
	require.Equal(t, addr, cc[0][logPool].String())
}
