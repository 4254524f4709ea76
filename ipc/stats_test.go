package ipc_test

import (
	"context"
	"encoding/json"
	"expvar"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/clock"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// TestStats counts what a client and a server did: 50 calls answered, one
// canceled while its response was held, one connection each side, then
// the client's stop closing it (local on the client, by the peer on the
// server).
func TestStats(t *testing.T) {
	held := make(chan ipc.Context, 1)
	serverClosed := make(chan error, 1)
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *callMsg) {
		if m.N == 1000 {
			held <- ctx
			return
		}
		_ = ctx.Respond(m)
	})
	server := startCallService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0",
		ConnectionStop: func(_ ipc.ConnInfo, err error) { serverClosed <- err }})
	cp := ipc.NewProtocol()
	ipc.MustRegister[callMsg](cp, 1, nil)
	client := startCallService(t, ipc.Config{Protocol: cp})
	addr := server.Addr().String()

	const calls = 50
	for i := range calls {
		_, err := ipc.Call[callMsg, callMsg](context.Background(), client, addr, &callMsg{N: uint64(i), Data: make([]byte, 100)}, 0)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := ipc.Call[callMsg, callMsg](ctx, client, addr, &callMsg{N: 1000}, 0)
		res <- err
	}()
	<-held
	cancel()
	require.ErrorIs(t, <-res, ipc.ErrCanceled)

	cs := client.Stats()
	require.Equal(t, ipc.Completions{OK: calls, Canceled: 1}, cs.Completions)
	require.Equal(t, uint64(calls+1), cs.MessagesSent)
	require.Equal(t, uint64(calls), cs.MessagesReceived)
	require.Equal(t, uint64(1), cs.Cancels)
	require.Equal(t, int64(0), cs.InFlight)
	require.Equal(t, ipc.ConnectionCounts{Dialed: 1}, cs.Connections)
	require.Equal(t, uint64(1), cs.Connections.Open())
	require.Greater(t, cs.BytesSent, uint64(calls*100))
	require.Len(t, cs.Pools, 1)
	require.Equal(t, addr, cs.Pools[0].Name)
	require.Equal(t, map[string]ipc.Traffic{addr: cs.Traffic}, cs.PoolTraffic)
	require.Equal(t, 1, cs.Pools[0].Active)
	require.Len(t, cs.Conns, 1)
	c := cs.Conns[0]
	require.Equal(t, addr, c.Pool)
	require.Equal(t, cs.BytesSent, c.BytesSent)
	require.Equal(t, cs.MessagesReceived, c.MessagesReceived)

	ss := server.Stats()
	require.Equal(t, uint64(calls+1), ss.MessagesReceived)
	require.Equal(t, uint64(calls), ss.MessagesSent)
	require.Equal(t, ipc.Completions{OK: calls}, ss.Completions)
	require.Equal(t, ipc.ConnectionCounts{Accepted: 1}, ss.Connections)
	require.Len(t, ss.Conns, 1)
	require.Equal(t, "", ss.Conns[0].Pool)
	require.Equal(t, cs.BytesSent, ss.BytesReceived)

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	require.NoError(t, client.Stop(stopCtx))
	<-serverClosed
	cs = client.Stats()
	require.Equal(t, ipc.ConnectionCounts{Dialed: 1, ClosedLocal: 1}, cs.Connections)
	require.Empty(t, cs.Conns)
	ss = server.Stats()
	require.Equal(t, ipc.ConnectionCounts{Accepted: 1, ClosedByPeer: 1}, ss.Connections)
	require.Empty(t, ss.Conns)
}

// TestStatsKeepAlive: an idle client's KeepAlive packets are counted on
// both sides.
func TestStatsKeepAlive(t *testing.T) {
	// The client's keepalive timer runs on a manual clock, so pings go out
	// only when the test moves time: no real-time race with the flood
	// limit on a loaded machine. The dead-peer check is off: the test moves
	// time faster than the server's answers may arrive.
	clk := clock.NewManual(time.Unix(1_000_000, 0))
	const ka = 10 * time.Second
	server, client := callPair(t, echoCall, ipc.Config{KeepAlive: ka, DeadPeerTimeout: -1, Clock: clk})
	addr := server.Addr().String()
	_, err := ipc.Call[callMsg, callMsg](context.Background(), client, addr, &callMsg{}, 0)
	require.NoError(t, err)
	// Move time a keepalive period at a time until the server has counted
	// three pings. Each step waits for a timer to be armed, moves time, waits
	// for the timer to be re-armed (the tick has run and counted its ping, if
	// it sent one), then waits until the server has counted every ping the
	// client sent. Without that last wait the steps outrun a loaded server
	// and the client sends more than MaxKeepAlives pings in one window.
	deadline := time.Now().Add(30 * time.Second)
	timeout := make(chan struct{})
	tm := time.AfterFunc(time.Until(deadline), func() { close(timeout) })
	defer tm.Stop()
	for server.Stats().KeepAlivesReceived < 3 {
		require.True(t, clk.WaitPending(1, timeout), "no timer armed")
		rearmed := clk.Scheduled()
		clk.Advance(ka)
		select {
		case <-rearmed:
		case <-timeout:
			require.Fail(t, "the keepalive timer was not re-armed")
		}
		sent := client.Stats().KeepAlivesSent
		for server.Stats().KeepAlivesReceived < sent {
			select {
			case <-timeout:
				require.Fail(t, "ping not counted", "the server counted %d of %d pings", server.Stats().KeepAlivesReceived, sent)
			case <-time.After(time.Millisecond): // poll the server's counter
			}
		}
	}
	require.GreaterOrEqual(t, client.Stats().KeepAlivesSent, uint64(3))
	st := client.Stats()
	require.Len(t, st.Conns, 1, "client %+v server %+v", st, server.Stats())
	require.Zero(t, st.Connections.ClosedByPeer)
	require.Equal(t, st.KeepAlivesSent, st.Conns[0].KeepAlivesSent)
}

// TestPublishExpvar: the service's Stats appear as JSON under the name;
// a name can be published once.
func TestPublishExpvar(t *testing.T) {
	server, client := callPair(t, echoCall, ipc.Config{})
	_, err := ipc.Call[callMsg, callMsg](context.Background(), client, server.Addr().String(), &callMsg{}, 0)
	require.NoError(t, err)
	// expvar names are process-wide and cannot be removed: a name of its
	// own per run, so that -count=N runs it N times.
	name := fmt.Sprintf("ipc-test-client-%d", expvarRuns.Add(1))
	require.NoError(t, client.PublishExpvar(name))
	require.ErrorIs(t, client.PublishExpvar(name), ipc.ErrInvalidConfig)
	var got ipc.Stats
	require.NoError(t, json.Unmarshal([]byte(expvar.Get(name).String()), &got))
	require.Equal(t, uint64(1), got.Completions.OK)
	require.Equal(t, uint64(1), got.Connections.Dialed)
}

// expvarRuns numbers the runs of TestPublishExpvar.
var expvarRuns atomic.Int64
