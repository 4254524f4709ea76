package test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// Keepalive and connection-close conformance scenarios, ported from
// SolidFrame mprpc's keepalive_fail 0/1, keepalive_success and
// connection_close, with the timeouts scaled from seconds to milliseconds,
// plus the client's dead-peer timeout (an ipcframe addition, design §4.6).
//
// Identifiers of this file start with "ka"; it shares pool_test.go's "pl"
// helpers.

// kaStops records the errors connections closed with (ConnectionStop).
type kaStops struct {
	*plSignal
	mu   sync.Mutex
	errs []error
}

func newKAStops() *kaStops { return &kaStops{plSignal: newPLSignal()} }

func (s *kaStops) add(_ ipc.ConnInfo, err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	s.notify()
}

func (s *kaStops) list() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// first waits for the first stop and returns its error.
func (s *kaStops) first(t testing.TB, what string) error {
	t.Helper()
	s.waitFor(t, what, func() bool { return len(s.list()) > 0 })
	return s.list()[0]
}

// kaEcho sends one request of n bytes and requires its echo.
func kaEcho(t testing.TB, client *ipc.Service, addr string, idx, n int) {
	t.Helper()
	kaEchoFlags(t, client, addr, idx, n, 0)
}

func kaEchoFlags(t testing.TB, client *ipc.Service, addr string, idx, n int, flags ipc.Flags) {
	t.Helper()
	done := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(idx, n), flags,
		func(req, resp *testmsg.Message, err error) {
			if err == nil {
				err = testmsg.Verify(resp, n)
			}
			done <- err
		}))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(deadline):
		t.Fatalf("request %d: no echo", idx)
	}
}

// TestKeepAliveFlood ports keepalive_fail 0: the server answers at most
// MaxKeepAlives 4 pings per 60 ms inactivity window; a client pinging
// every 10 ms sends about 6, so after one echoed request the idle
// connection is closed by the server with ErrKeepAliveFlood.
func TestKeepAliveFlood(t *testing.T) {
	stops := newKAStops()
	server := startService(t, ipc.Config{
		Protocol:          plEchoProto(nil),
		Listen:            "127.0.0.1:0",
		InactivityTimeout: 60 * time.Millisecond,
		MaxKeepAlives:     4,
		MaxMultiplex:      6,
		ConnectionStop:    stops.add,
	})
	client := startService(t, ipc.Config{
		Protocol:     plClientProto(),
		KeepAlive:    10 * time.Millisecond,
		MaxMultiplex: 6,
	})
	kaEcho(t, client, server.Addr().String(), 0, 1000)
	err := stops.first(t, "the server to close the connection")
	require.ErrorIs(t, err, ipc.ErrKeepAliveFlood)
	var ce *ipc.ConnError
	require.ErrorAs(t, err, &ce)
}

// TestKeepAliveInactivity ports keepalive_fail 1: the server's inactivity
// window (20 ms) is far shorter than the client's ping interval (100 ms),
// so after one echoed request the server closes the idle connection with
// ErrInactivity.
func TestKeepAliveInactivity(t *testing.T) {
	stops := newKAStops()
	server := startService(t, ipc.Config{
		Protocol:          plEchoProto(nil),
		Listen:            "127.0.0.1:0",
		InactivityTimeout: 20 * time.Millisecond,
		MaxKeepAlives:     4,
		ConnectionStop:    stops.add,
	})
	clientStops := newKAStops()
	client := startService(t, ipc.Config{
		Protocol:       plClientProto(),
		KeepAlive:      100 * time.Millisecond,
		ConnectionStop: clientStops.add,
	})
	// Idempotent: should a loaded machine delay the request past the first
	// 20 ms window, the server's close resends it on a new connection.
	kaEchoFlags(t, client, server.Addr().String(), 0, 100, ipc.Idempotent)
	err := stops.first(t, "the server to close the connection")
	require.ErrorIs(t, err, ipc.ErrInactivity)
	require.NotErrorIs(t, err, ipc.ErrKeepAliveFlood)
	// The client sees its connection closed by the peer.
	err = clientStops.first(t, "the client's connection to close")
	require.ErrorIs(t, err, ipc.ErrConnectionClosed)
}

// TestKeepAliveSuccess ports keepalive_success 0, and also checks what the
// original did not: the connection survives. The server allows 8 pings per
// 40 ms window; the client pings every 10 ms of silence (about 5 per
// window). A request, 200 ms of idle time (time passing is the scenario),
// then another request: both are answered on the same connection, and no
// connection closed meanwhile.
//
// The client's DeadPeerTimeout is 500 ms rather than the default 3×KeepAlive
// (30 ms), so that a scheduling hiccup under -race cannot close it: the
// server's ping answers, not the dead-peer check, are under test.
func TestKeepAliveSuccess(t *testing.T) {
	stops := newKAStops()
	server := startService(t, ipc.Config{
		Protocol:          plEchoProto(nil),
		Listen:            "127.0.0.1:0",
		InactivityTimeout: 40 * time.Millisecond,
		MaxKeepAlives:     8,
		ConnectionStop:    stops.add,
	})
	clientStops := newKAStops()
	events := newPLEvents()
	client := startService(t, ipc.Config{
		Protocol:        plClientProto(),
		KeepAlive:       10 * time.Millisecond,
		DeadPeerTimeout: 500 * time.Millisecond,
		ConnectionStop:  clientStops.add,
		PoolEvent:       events.add,
	})
	addr := server.Addr().String()
	kaEcho(t, client, addr, 0, 1000)

	idle := time.NewTimer(200 * time.Millisecond)
	defer idle.Stop()
	select {
	case <-idle.C:
	case <-stops.ch:
		t.Fatalf("the server closed the idle connection: %v", stops.list())
	case <-clientStops.ch:
		t.Fatalf("the client closed the idle connection: %v", clientStops.list())
	}

	kaEcho(t, client, addr, 1, 1000)
	require.Empty(t, stops.list(), "the server closed a connection")
	require.Empty(t, clientStops.list(), "the client closed a connection")
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.Equal(t, uint64(1), st.Connects, "the connection was replaced")
	require.Zero(t, st.Disconnects)
	require.Equal(t, 1, events.count(ipc.PoolConnectionStart))
}

// TestKeepAliveDeadPeer: a peer that accepts and reads but never writes.
// The client pings every 10 ms and, having received nothing for 50 ms,
// closes the connection with ErrDeadPeer; the request it had written and
// was waiting on (not idempotent, so not resent) fails with ErrConnection.
func TestKeepAliveDeadPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg     sync.WaitGroup
		connMu sync.Mutex
		conns  []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		connMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connMu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			connMu.Lock()
			conns = append(conns, nc)
			connMu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, nc) // never answers
			}()
		}
	}()

	stops := newKAStops()
	client := startService(t, ipc.Config{
		Protocol:        plClientProto(),
		KeepAlive:       10 * time.Millisecond,
		DeadPeerTimeout: 50 * time.Millisecond,
		ConnectionStop:  stops.add,
	})
	result := make(chan error, 2)
	start := time.Now()
	require.NoError(t, ipc.SendRequest(client, ln.Addr().String(), testmsg.New(0, 1000), 0,
		func(req, resp *testmsg.Message, err error) {
			if resp != nil {
				err = errors.New("a response from a silent peer")
			}
			result <- err
		}))
	select {
	case err := <-result:
		require.ErrorIs(t, err, ipc.ErrConnection)
		require.ErrorIs(t, err, ipc.ErrDeadPeer)
		var me *ipc.MessageError
		require.ErrorAs(t, err, &me)
		require.True(t, me.Started)
	case <-time.After(deadline):
		t.Fatal("the request never completed")
	}
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "closed before DeadPeerTimeout")
	err = stops.first(t, "the client's connection to close")
	require.ErrorIs(t, err, ipc.ErrDeadPeer)
	var ce *ipc.ConnError
	require.ErrorAs(t, err, &ce)
	select {
	case err := <-result:
		t.Fatalf("extra completion: %v", err)
	default:
	}
}

// TestKeepAliveInterval: a dialed connection pings once it has been silent
// (nothing sent or received) for KeepAlive, not on a fixed grid: against a
// peer that answers each ping 3 ms late, pings are about KeepAlive + 3 ms
// apart, not 2×KeepAlive (a ping answered after the grid point used to be
// skipped until the next one). The peer is a raw socket that records the
// pings.
func TestKeepAliveInterval(t *testing.T) {
	const (
		keepAlive = 10 * time.Millisecond
		answer    = 3 * time.Millisecond
		pings     = 9
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	got := make(chan []time.Time, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer nc.Close()
		var ts []time.Time
		hdr := make([]byte, 4)
		_ = nc.SetReadDeadline(time.Now().Add(deadline))
		for len(ts) < pings {
			if _, err := io.ReadFull(nc, hdr); err != nil {
				break
			}
			if _, err := io.CopyN(io.Discard, nc, int64(hdr[2])|int64(hdr[3])<<8|int64(hdr[1]&1)<<16); err != nil {
				break
			}
			if hdr[0] == 2 { // KeepAlive
				ts = append(ts, time.Now())
				time.Sleep(answer) // the peer's latency, simulated
				if _, err := nc.Write([]byte{2, 0, 0, 0}); err != nil {
					break
				}
			}
		}
		got <- ts
	}()
	client := startService(t, ipc.Config{
		Protocol:        plClientProto(),
		KeepAlive:       keepAlive,
		DeadPeerTimeout: time.Second,
	})
	require.NoError(t, client.CreatePool(ln.Addr().String(), ipc.PoolOptions{}))
	var ts []time.Time
	select {
	case ts = <-got:
	case <-time.After(deadline):
		t.Fatal("no pings")
	}
	require.Len(t, ts, pings)
	mean := ts[len(ts)-1].Sub(ts[0]) / time.Duration(len(ts)-1)
	t.Logf("mean interval between pings %v (KeepAlive %v, answers %v late)", mean, keepAlive, answer)
	require.GreaterOrEqual(t, mean, keepAlive+answer-time.Millisecond)
	require.Less(t, mean, keepAlive+answer+5*time.Millisecond, "pings are late: silence of up to 2×KeepAlive")
}

// kaLogout is connection_close's Logout request and response.
type kaLogout struct{ Seq uint32 }

// Serde implements serde.Type.
func (m *kaLogout) Serde(v *serde.Visitor) { v.Uint32(&m.Seq) }

// TestConnectionClose ports connection_close: a 16384000-byte request is
// echoed; then the client sends a Logout request on that connection (its
// handle from ConnectionStart) with CloseAfter; once the Logout response
// arrives the connection closes, and the client's ConnectionStop sees both
// replies already delivered.
func TestConnectionClose(t *testing.T) {
	const size = 16384000
	serverProto := plEchoProto(nil)
	ipc.MustRegister(serverProto, 2, func(ctx ipc.Context, m *kaLogout) {
		_ = ctx.Respond(&kaLogout{Seq: m.Seq + 1})
	})
	serverStops := newKAStops()
	server := startService(t, ipc.Config{Protocol: serverProto, Listen: "127.0.0.1:0", ConnectionStop: serverStops.add})
	addr := server.Addr().String()

	clientProto := plClientProto()
	ipc.MustRegister[kaLogout](clientProto, 2, nil)
	var (
		mu      sync.Mutex
		replies []string // in arrival order
		atStop  = -1     // replies seen when the connection stopped
		stopErr error
	)
	note := func(s string) {
		mu.Lock()
		replies = append(replies, s)
		mu.Unlock()
	}
	conns := make(chan ipc.Conn, 4)
	stopped := make(chan struct{})
	events := newPLEvents()
	client := startService(t, ipc.Config{
		Protocol:        clientProto,
		ConnectionStart: func(info ipc.ConnInfo) { conns <- info.Conn },
		ConnectionStop: func(_ ipc.ConnInfo, err error) {
			mu.Lock()
			defer mu.Unlock()
			if atStop < 0 {
				atStop, stopErr = len(replies), err
				close(stopped)
			}
		},
		PoolEvent: events.add,
	})

	var errs plErrs
	logoutDone := make(chan struct{})
	require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(1, size), 0,
		func(req, resp *testmsg.Message, err error) {
			if err == nil {
				err = testmsg.Verify(resp, size)
			}
			if err != nil {
				errs.add(err)
				close(logoutDone)
				return
			}
			note("echo")
			var conn ipc.Conn
			select {
			case conn = <-conns:
			default:
				errs.add(errors.New("no ConnectionStart before the response"))
				close(logoutDone)
				return
			}
			err = ipc.SendRequestTo(client, conn, &kaLogout{Seq: 41}, ipc.CloseAfter,
				func(req, resp *kaLogout, err error) {
					if err == nil && resp.Seq != 42 {
						err = errors.New("bad Logout response")
					}
					if err != nil {
						errs.add(err)
					} else {
						note("logout")
					}
					close(logoutDone)
				})
			if err != nil {
				errs.add(err)
				close(logoutDone)
			}
		}))
	wait(t, logoutDone, "the Logout response")
	wait(t, stopped, "the connection to close")
	errs.check(t)
	mu.Lock()
	require.Equal(t, []string{"echo", "logout"}, replies)
	require.Equal(t, 2, atStop, "the connection stopped before both replies")
	require.ErrorIs(t, stopErr, ipc.ErrConnectionClosed)
	mu.Unlock()
	// The server sees the close too, and the pool does not reconnect
	// (nothing is queued).
	require.ErrorIs(t, serverStops.first(t, "the server's side to close"), ipc.ErrConnectionClosed)
	events.waitCount(t, ipc.PoolDisconnected, 1)
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.Equal(t, uint64(1), st.Connects)
	require.Equal(t, uint64(1), st.Disconnects)
	require.Zero(t, st.Pending)
	require.Len(t, conns, 0, "a second connection opened")
}
