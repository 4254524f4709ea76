package test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/clock"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// Keepalive and connection-close conformance scenarios, ported from
// SolidFrame mprpc's keepalive_fail 0/1, keepalive_success and
// connection_close, plus the client's dead-peer timeout (an ipcframe
// addition, design §4.6).
//
// Time is a clock.Manual passed as ipc.Config.Clock: the test moves it and
// waits on events (a peer's packets, a timer re-armed, a connection
// stopping), so no scenario sleeps or bounds a real duration. Where the
// side under test needs an exact peer, the peer is a raw socket
// (kaRawConn) that reads and writes packets by hand.
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
	done := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(idx, n), 0,
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

// kaClock is the scenarios' manual clock.
type kaClock struct{ *clock.Manual }

func newKAClock() kaClock { return kaClock{clock.NewManual(time.Unix(1_000_000, 0))} }

// armed waits until n timers are scheduled on the clock: the engine has
// armed (or re-armed, after they fired) the timers under test.
func (c kaClock) armed(t testing.TB, n int, what string) {
	t.Helper()
	stop := make(chan struct{})
	tm := time.AfterFunc(deadline, func() { close(stop) })
	defer tm.Stop()
	if !c.WaitPending(n, stop) {
		t.Fatalf("timed out waiting for %d timers (%s); %d scheduled", n, what, c.Pending())
	}
}

// step moves the clock by d and waits until the n timers scheduled before
// have been re-armed: the timer functions that fell due have run on their
// loops (each re-arms its loop's clock timer last).
func (c kaClock) step(t testing.TB, d time.Duration, what string) {
	t.Helper()
	n := c.Pending()
	c.Advance(d)
	c.armed(t, n, what)
}

// kaRawConn is a hand-driven peer: a raw TCP connection that reads and
// writes packets.
type kaRawConn struct {
	t  testing.TB
	nc net.Conn
}

var kaPing = []byte{2, 0, 0, 0}

func kaDialRaw(t testing.TB, addr string) *kaRawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(deadline)))
	return &kaRawConn{t: t, nc: nc}
}

func (r *kaRawConn) write(b []byte) {
	r.t.Helper()
	_, err := r.nc.Write(b)
	require.NoError(r.t, err)
}

// readPacket returns the type of the next packet (its payload is
// skipped), or the read error.
func kaReadPacket(nc net.Conn) (byte, error) {
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(nc, hdr); err != nil {
		return 0, err
	}
	size := int64(hdr[2]) | int64(hdr[3])<<8 | int64(hdr[1]&1)<<16
	_, err := io.CopyN(io.Discard, nc, size)
	return hdr[0], err
}

// expectPing reads the next packet and requires a KeepAlive.
func (r *kaRawConn) expectPing() {
	r.t.Helper()
	typ, err := kaReadPacket(r.nc)
	require.NoError(r.t, err)
	require.Equal(r.t, byte(2), typ, "a KeepAlive packet")
}

// expectClosed requires the peer to close the connection (EOF or reset,
// never a timeout).
func (r *kaRawConn) expectClosed() {
	r.t.Helper()
	_, err := kaReadPacket(r.nc)
	require.Error(r.t, err)
	var ne net.Error
	require.False(r.t, errors.As(err, &ne) && ne.Timeout(), "the peer never closed: %v", err)
}

// TestKeepAliveFlood ports keepalive_fail 0: an accepted connection
// answers at most MaxKeepAlives (4) pings per InactivityTimeout window.
// The pinging client is a raw socket: four pings are answered, the window
// passes, four more are answered, and the fifth of the window closes the
// connection with ErrKeepAliveFlood.
func TestKeepAliveFlood(t *testing.T) {
	clk := newKAClock()
	stops := newKAStops()
	server := startService(t, ipc.Config{
		Protocol:          plEchoProto(nil),
		Listen:            "127.0.0.1:0",
		InactivityTimeout: 60 * time.Second,
		MaxKeepAlives:     4,
		ConnectionStop:    stops.add,
		Clock:             clk,
	})
	peer := kaDialRaw(t, server.Addr().String())
	clk.armed(t, 1, "the server's inactivity window")
	for range 4 {
		peer.write(kaPing)
		peer.expectPing()
	}
	clk.step(t, 60*time.Second, "the next window") // pings arrived: the window resets
	require.Empty(t, stops.list())
	for range 4 {
		peer.write(kaPing)
		peer.expectPing()
	}
	peer.write(kaPing)
	peer.expectClosed()
	err := stops.first(t, "the server to close the connection")
	require.ErrorIs(t, err, ipc.ErrKeepAliveFlood)
	var ce *ipc.ConnError
	require.ErrorAs(t, err, &ce)
	require.Len(t, stops.list(), 1)
}

// TestKeepAliveInactivity ports keepalive_fail 1: an accepted connection
// closes with ErrInactivity once a whole InactivityTimeout window passes
// without a byte received, and not while bytes keep arriving. The client
// is a raw socket that pings in the first window only.
func TestKeepAliveInactivity(t *testing.T) {
	clk := newKAClock()
	stops := newKAStops()
	server := startService(t, ipc.Config{
		Protocol:          plEchoProto(nil),
		Listen:            "127.0.0.1:0",
		InactivityTimeout: 20 * time.Second,
		MaxKeepAlives:     4,
		ConnectionStop:    stops.add,
		Clock:             clk,
	})
	peer := kaDialRaw(t, server.Addr().String())
	clk.armed(t, 1, "the server's inactivity window")
	peer.write(kaPing)
	peer.expectPing() // received in the first window
	clk.step(t, 20*time.Second, "the second window")
	require.Empty(t, stops.list(), "closed although a byte arrived in the window")
	peer.write(kaPing)
	peer.expectPing() // still open
	clk.step(t, 20*time.Second, "the third window")
	require.Empty(t, stops.list(), "closed although a byte arrived in the window")

	clk.Advance(20 * time.Second) // a whole window of silence
	peer.expectClosed()
	err := stops.first(t, "the server to close the connection")
	require.ErrorIs(t, err, ipc.ErrInactivity)
	require.NotErrorIs(t, err, ipc.ErrKeepAliveFlood)
	require.Len(t, stops.list(), 1)
}

// TestKeepAliveSuccess ports keepalive_success 0, and also checks what the
// original did not: the connection survives. The server allows 8 pings per
// 40 s window; the client pings after 10 s of silence (4 per window) and
// would declare the peer dead after 30 s (the default 3×KeepAlive). A
// request, 200 s of idle time, then another request: both are answered on
// the same connection, and no connection closed meanwhile.
//
// Each step moves the clock 10 s, then waits for the step's ping, the
// server's answer and the client's reading of it: kaTap forwards the
// packets, counts the pings and follows each answer with a kaNote message
// whose handler tells the test that the client has read the answer (at the
// same clock reading, so it changes no timing). The client's silence then
// reaches KeepAlive exactly at each step: one ping per step.
func TestKeepAliveSuccess(t *testing.T) {
	clk := newKAClock()
	stops := newKAStops()
	server := startService(t, ipc.Config{
		Protocol:          plEchoProto(nil),
		Listen:            "127.0.0.1:0",
		InactivityTimeout: 40 * time.Second,
		MaxKeepAlives:     8,
		ConnectionStop:    stops.add,
		Clock:             clk,
	})
	tap := newKATap(t, server.Addr().String())
	clientStops := newKAStops()
	events := newPLEvents()
	notes := make(chan uint32, 64)
	proto := plClientProto()
	ipc.MustRegister(proto, 3, func(_ ipc.Context, m *kaNote) { notes <- m.Seq })
	client := startService(t, ipc.Config{
		Protocol:       proto,
		KeepAlive:      10 * time.Second,
		ConnectionStop: clientStops.add,
		PoolEvent:      events.add,
		Clock:          clk,
	})
	addr := tap.addr()
	kaEcho(t, client, addr, 0, 1000)
	clk.armed(t, 2, "the client's keepalive and the server's window")

	for i := range 20 {
		clk.step(t, 10*time.Second, "the keepalive timers")
		tap.waitAnswered(t, i+1)
		select {
		case <-notes: // the client has read the answer
		case <-time.After(deadline):
			t.Fatalf("step %d: the client never read the answer", i)
		}
		require.Empty(t, stops.list(), "the server closed the idle connection")
		require.Empty(t, clientStops.list(), "the client closed the idle connection")
	}
	require.Equal(t, 20, tap.pings(), "one ping per 10 s of silence")

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
// The client pings every 10 s of silence and, having received nothing for
// 50 s, closes the connection with ErrDeadPeer, not earlier; the request
// it had written and was waiting on (not idempotent, so not resent) fails
// with ErrConnection. The peer saw the four pings before the close.
func TestKeepAliveDeadPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	pings := make(chan int, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			pings <- -1
			return
		}
		defer nc.Close()
		_ = nc.SetReadDeadline(time.Now().Add(deadline))
		n := 0
		for {
			typ, err := kaReadPacket(nc) // never answers
			if err != nil {
				pings <- n
				return
			}
			if typ == 2 {
				n++
			}
		}
	}()

	clk := newKAClock()
	stops := newKAStops()
	client := startService(t, ipc.Config{
		Protocol:        plClientProto(),
		KeepAlive:       10 * time.Second,
		DeadPeerTimeout: 50 * time.Second,
		ConnectionStop:  stops.add,
		Clock:           clk,
	})
	result := make(chan error, 2)
	require.NoError(t, ipc.SendRequest(client, ln.Addr().String(), testmsg.New(0, 1000), 0,
		func(req, resp *testmsg.Message, err error) {
			if resp != nil {
				err = errors.New("a response from a silent peer")
			}
			result <- err
		}))
	clk.armed(t, 1, "the client's keepalive")
	for range 4 { // 40 s of silence: pings, no close (the tick re-arms)
		clk.step(t, 10*time.Second, "the keepalive timer")
	}
	require.Empty(t, stops.list(), "closed before DeadPeerTimeout")
	require.Empty(t, result)

	clk.Advance(10 * time.Second) // 50 s
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
	err = stops.first(t, "the client's connection to close")
	require.ErrorIs(t, err, ipc.ErrDeadPeer)
	var ce *ipc.ConnError
	require.ErrorAs(t, err, &ce)
	select {
	case n := <-pings:
		require.Equal(t, 4, n, "pings the peer received before the close")
	case <-time.After(deadline):
		t.Fatal("the peer never saw the close")
	}
	require.Empty(t, result, "extra completion")
	require.Len(t, stops.list(), 1)
}

// kaNote is a one-way message the raw peer of TestKeepAliveInterval sends
// right after each ping answer: its handler proves to the test that the
// client has read the answer.
type kaNote struct{ Seq uint32 }

// Serde implements serde.Type.
func (m *kaNote) Serde(v *serde.Visitor) { v.Uint32(&m.Seq) }

// kaNotePacket is a Data packet carrying kaNote{Seq: 7} as type id 3 from
// the peer's writer slot 100, which no real peer of these tests uses
// (flags StartedSend|OnPeer, sender 101, 0).
var kaNotePacket = []byte{
	0x01, 0x00, 0x16, 0x00, // Data, 22 bytes
	0x02, 0x09, 0x64, 0x09, 0x00, // NewMessage, slot 100, 9 bytes
	0x02, 0x10, 0x04, 0x00, 0x01, 0x65, 0x00, 0x00, 0x00,
	0x05, 0x09, 0x64, 0x03, 0x00, // EndMessage, slot 100, 3 bytes
	0x03, 0x01, 0x07,
}

// TestKeepAliveInterval: a dialed connection pings once it has been silent
// (nothing sent or received) for KeepAlive, not on a fixed grid: against a
// peer that answers each ping 3 s late, pings are exactly KeepAlive + 3 s
// apart, not 2×KeepAlive (a ping answered after the grid point used to be
// skipped until the next one). The peer is a raw socket; the clock reading
// at each ping is the proof.
func TestKeepAliveInterval(t *testing.T) {
	const (
		keepAlive = 10 * time.Second
		answer    = 3 * time.Second
		rounds    = 5
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })

	clk := newKAClock()
	notes := make(chan uint32, rounds)
	proto := plClientProto()
	ipc.MustRegister(proto, 3, func(_ ipc.Context, m *kaNote) { notes <- m.Seq })
	client := startService(t, ipc.Config{
		Protocol:        proto,
		KeepAlive:       keepAlive,
		DeadPeerTimeout: time.Hour,
		Clock:           clk,
	})
	require.NoError(t, client.CreatePool(ln.Addr().String(), ipc.PoolOptions{}))
	nc, err := ln.Accept()
	require.NoError(t, err)
	peer := &kaRawConn{t: t, nc: nc}
	t.Cleanup(func() { _ = nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(deadline)))
	clk.armed(t, 1, "the client's keepalive")
	start := clk.Now()

	var at []time.Duration
	clk.step(t, keepAlive, "the first ping")
	for range rounds {
		peer.expectPing()
		at = append(at, clk.Now().Sub(start))
		clk.Advance(answer) // the peer's latency; no timer is due
		peer.write(kaPing)
		peer.write(kaNotePacket)
		select {
		case seq := <-notes:
			require.Equal(t, uint32(7), seq)
		case <-time.After(deadline):
			t.Fatal("the client never read the answer")
		}
		// The tick on the old grid finds 7 s of silence and re-arms for
		// the remaining 3 s.
		next, ok := clk.Next()
		require.True(t, ok)
		clk.Set(next)
		clk.armed(t, 1, "the keepalive timer")
		next, ok = clk.Next()
		require.True(t, ok)
		clk.step(t, next.Sub(clk.Now()), "the ping")
	}
	for i := 1; i < len(at); i++ {
		require.Equal(t, keepAlive+answer, at[i]-at[i-1], "interval %d (pings at %v)", i, at)
	}
}

// kaTap is a forwarding proxy between a client and a server that counts
// the KeepAlive packets going each way, and follows each one going to the
// client with kaNotePacket: TestKeepAliveSuccess waits for the server's
// answers and for the client to read them.
type kaTap struct {
	*tcpProxy
	signal *plSignal

	mu   sync.Mutex // guards up and down
	up   int        // pings client -> server
	down int        // pings server -> client
}

func newKATap(t testing.TB, target string) *kaTap {
	t.Helper()
	p := &kaTap{signal: newPLSignal()}
	p.tcpProxy = newTCPProxy(t, target)
	p.start(p.serve)
	return p
}

func (p *kaTap) serve(in net.Conn) {
	out, ok := p.dialTarget(in)
	if !ok {
		return
	}
	p.goServe(func() { p.pipe(in, out, &p.up) })
	p.pipe(out, in, &p.down)
}

// pipe forwards whole packets from src to dst and counts the pings.
func (p *kaTap) pipe(src, dst net.Conn, pings *int) {
	defer dst.Close()
	hdr := make([]byte, 4)
	buf := make([]byte, 1<<17)
	for {
		if _, err := io.ReadFull(src, hdr); err != nil {
			return
		}
		size := int(hdr[2]) | int(hdr[3])<<8 | int(hdr[1]&1)<<16
		copy(buf, hdr)
		if _, err := io.ReadFull(src, buf[4:4+size]); err != nil {
			return
		}
		if _, err := dst.Write(buf[:4+size]); err != nil {
			return
		}
		if hdr[0] == 2 && pings == &p.down {
			if _, err := dst.Write(kaNotePacket); err != nil {
				return
			}
		}
		if hdr[0] == 2 {
			p.mu.Lock()
			*pings++
			p.mu.Unlock()
			p.signal.notify()
		}
	}
}

func (p *kaTap) pings() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}

// waitAnswered waits until at least n pings have gone from the client to
// the server and every one of them has been answered.
func (p *kaTap) waitAnswered(t testing.TB, n int) {
	t.Helper()
	p.signal.waitFor(t, "the server's ping answers", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.up >= n && p.down == p.up
	})
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
