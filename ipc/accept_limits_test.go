package ipc

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/internal/clock"
	"github.com/ipcframe/ipcframe/internal/testcert"
	"github.com/ipcframe/ipcframe/internal/testmsg"
)

// doorServer is a server under test at the door: it counts the
// connections that open and close, and the closes by cause.
type doorServer struct {
	*Service
	clk *clock.Manual

	mu      sync.Mutex
	opened  int
	stops   map[uint64]error // by connection ID
	waiters []doorWaiter
}

type doorWaiter struct {
	cond func() bool
	done chan struct{}
}

func startDoorServer(t *testing.T, cfg Config) *doorServer {
	t.Helper()
	d := &doorServer{clk: clock.NewManual(time.Unix(1_000_000, 0)), stops: map[uint64]error{}}
	cfg.Protocol, cfg.Listen, cfg.Clock = peerProtocol(true), "127.0.0.1:0", d.clk
	cfg.ConnectionStart = func(ConnInfo) { d.update(func() { d.opened++ }) }
	cfg.ConnectionStop = func(ci ConnInfo, err error) { d.update(func() { d.stops[ci.ID] = err }) }
	s, err := NewService(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, s.Stop(ctx))
	})
	d.Service = s
	return d
}

// update changes the counts (on an event loop) and wakes the waiters
// whose condition now holds.
func (d *doorServer) update(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f()
	k := 0
	for _, w := range d.waiters {
		if w.cond() {
			close(w.done)
		} else {
			d.waiters[k] = w
			k++
		}
	}
	d.waiters = d.waiters[:k]
}

// await blocks until cond (called under the lock) holds.
func (d *doorServer) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	w := doorWaiter{cond: cond, done: make(chan struct{})}
	d.mu.Lock()
	if cond() {
		d.mu.Unlock()
		return
	}
	d.waiters = append(d.waiters, w)
	d.mu.Unlock()
	select {
	case <-w.done:
	case <-time.After(5 * time.Minute): // a hang guard, not a bound
		t.Fatalf("timed out waiting for %s", what)
	}
}

// stopsMatching counts closes whose error matches target.
func (d *doorServer) stopsMatching(target error) (n int) {
	for _, err := range d.stops {
		if errors.Is(err, target) {
			n++
		}
	}
	return n
}

// steadyCaller keeps calling the server through one connection from
// another service until stop, counting calls and the first error.
type steadyCaller struct {
	client *Service
	calls  atomic.Int64
	tick   chan struct{} // signaled after each call
	errMu  sync.Mutex
	err    error
	stop   chan struct{}
	done   chan struct{}
}

func startSteadyCaller(t *testing.T, addr string) *steadyCaller {
	t.Helper()
	client, err := NewService(Config{Protocol: peerProtocol(false)})
	require.NoError(t, err)
	require.NoError(t, client.Start())
	sc := &steadyCaller{client: client, tick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(sc.done)
		req := &testmsg.Request{Str: make([]byte, 1024)}
		for {
			select {
			case <-sc.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := Call[testmsg.Request, testmsg.Request](ctx, client, addr, req, 0)
			cancel()
			if err != nil {
				sc.errMu.Lock()
				sc.err = err
				sc.errMu.Unlock()
				return
			}
			sc.calls.Add(1)
			select {
			case sc.tick <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		sc.finish()
		_ = client.Stop(context.Background())
	})
	// The caller's connection is open and has been used.
	sc.waitCalls(t, 1)
	return sc
}

// waitCalls waits until at least n calls completed since the start, or the
// caller failed.
func (sc *steadyCaller) waitCalls(t *testing.T, n int64) {
	t.Helper()
	for sc.calls.Load() < n {
		select {
		case <-sc.tick:
		case <-sc.done:
			sc.errMu.Lock()
			defer sc.errMu.Unlock()
			t.Fatalf("the steady caller stopped: %v", sc.err)
		}
	}
}

// finish stops the caller and returns its first error.
func (sc *steadyCaller) finish() error {
	select {
	case <-sc.stop:
	default:
		close(sc.stop)
	}
	<-sc.done
	sc.errMu.Lock()
	defer sc.errMu.Unlock()
	return sc.err
}

// TestSilentSocketsDropped: 10,000 sockets that connect and never send are
// each closed with ErrFirstPacketTimeout once FirstPacketTimeout passes
// (a manual clock), and counted; a client calling all along is served
// throughout, and its connection is never closed. The sockets come from a
// peer process (peerproc_test.go), so that this process needs one
// descriptor per socket, not two.
func TestSilentSocketsDropped(t *testing.T) {
	n := 10_000
	if lim := raiseFileLimit(); lim < uint64(n)+1000 {
		// Fewer, on a small limit: still thousands on any usual one.
		n = max(int(lim)-1000, 100)
		t.Logf("open-file limit %d: %d silent sockets", lim, n)
	}
	d := startDoorServer(t, Config{})
	addr := d.Addr().String()
	caller := startSteadyCaller(t, addr)

	peer := startPeer(t, "silent", addr, strconv.Itoa(n))
	require.Equal(t, strconv.Itoa(n), peer.expect(t, "ready"))
	d.await(t, "the silent sockets to open", func() bool { return d.opened == n+1 })
	before := caller.calls.Load()
	caller.waitCalls(t, before+10) // served while they are open

	d.clk.Advance(DefaultFirstPacketTimeout)
	d.await(t, "the silent sockets to be dropped", func() bool { return len(d.stops) == n })
	after := caller.calls.Load()
	caller.waitCalls(t, after+10) // and once they are gone
	require.NoError(t, caller.finish())

	d.mu.Lock()
	require.Equal(t, n, d.stopsMatching(ErrFirstPacketTimeout), "closes with ErrFirstPacketTimeout")
	d.mu.Unlock()
	st := d.Stats()
	require.Equal(t, uint64(n), st.Connections.FirstPacketTimeouts)
	require.Equal(t, uint64(n), st.Connections.ClosedTimeout)
	require.Equal(t, uint64(n+1), st.Connections.Accepted)
	require.Equal(t, uint64(1), st.Connections.Open(), "the caller's connection")
	cs := caller.client.Stats().Connections
	require.Equal(t, uint64(1), cs.Dialed)
	require.Equal(t, uint64(1), cs.Open())
}

// TestFirstPacketRule: the first-packet timer of an accepted connection
// starts when it opens, and a complete packet stops it; a partial packet
// does not (a slowloris socket is dropped too); a dialed connection that
// has nothing to send opens with a KeepAlive, which keeps it; and with TLS
// the timer starts at the end of the handshake, which TLSHandshakeTimeout
// bounds: a socket silent from the start is dropped by the handshake
// timeout, one silent after its handshake by the first-packet timeout.
func TestFirstPacketRule(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		d := startDoorServer(t, Config{})
		addr := d.Addr().String()
		partial := dialRaw(t, addr)
		_, err := partial.Write([]byte{packetTypeKeepAlive, 0}) // half a header
		require.NoError(t, err)
		pinged := dialRaw(t, addr)
		_, err = pinged.Write(keepAlivePacket)
		require.NoError(t, err)
		// The server's window hello, then its answer: the ping was read
		// (reading the hello alone would not prove it).
		got := readFull(t, pinged, len(helloPacket)+len(keepAlivePacket))
		require.Equal(t, keepAlivePacket, got[len(helloPacket):], "the answer to the ping")
		d.await(t, "two connections", func() bool { return d.opened == 2 })

		d.clk.Advance(DefaultFirstPacketTimeout)
		expectClosed(t, partial)
		d.await(t, "a drop", func() bool { return len(d.stops) >= 1 })
		d.mu.Lock()
		require.Len(t, d.stops, 1)
		require.Equal(t, 1, d.stopsMatching(ErrFirstPacketTimeout))
		d.mu.Unlock()
		require.Equal(t, uint64(1), d.Stats().Connections.Open())
	})
	t.Run("raw", func(t *testing.T) {
		heard := make(chan struct{}, 1)
		d := startDoorServer(t, Config{
			RawStart: RoleAccepted,
			RawData: func(_ Conn, b []byte) int {
				select {
				case heard <- struct{}{}:
				default:
				}
				return len(b)
			},
		})
		addr := d.Addr().String()
		spoke := dialRaw(t, addr)
		silent := dialRaw(t, addr)
		d.await(t, "two connections", func() bool { return d.opened == 2 })
		_, err := spoke.Write([]byte("hello")) // raw bytes, not a packet
		require.NoError(t, err)
		<-heard // RawData ran: the bytes were read
		d.clk.Advance(DefaultFirstPacketTimeout)
		expectClosed(t, silent)
		d.await(t, "one drop", func() bool { return len(d.stops) == 1 })
		d.mu.Lock()
		require.Equal(t, 1, d.stopsMatching(ErrFirstPacketTimeout))
		d.mu.Unlock()
		require.Equal(t, uint64(1), d.Stats().Connections.Open(), "the one that spoke raw bytes")
	})
	t.Run("opening KeepAlive", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = ln.Close() })
		// Without the window extension: with it, the window hello is the
		// pool's first packet (docs/protocol.md §7b) and no KeepAlive is
		// needed.
		idle, err := NewService(Config{Protocol: peerProtocol(false), MessageWindow: -1})
		require.NoError(t, err)
		require.NoError(t, idle.Start())
		t.Cleanup(func() { _ = idle.Stop(context.Background()) })
		require.NoError(t, idle.CreatePool(ln.Addr().String(), PoolOptions{}))
		c, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Minute))) // a hang guard
		got := make([]byte, len(keepAlivePacket))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		require.Equal(t, keepAlivePacket, got, "the pool's first packet")
	})
	t.Run("tls", func(t *testing.T) {
		ca := testcert.NewCA("door CA")
		hsFailed := make(chan error, 1)
		d := startDoorServer(t, Config{
			TLSServer:           &tls.Config{Certificates: []tls.Certificate{ca.Issue(testcert.Leaf{})}},
			TLSHandshakeTimeout: 2 * DefaultFirstPacketTimeout,
			TLSHandshakeFailed:  func(_ string, err error) { hsFailed <- err },
		})
		addr := d.Addr().String()
		raw := dialRaw(t, addr) // never starts its handshake
		tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = tc.Close() })
		d.await(t, "the TLS connection to open", func() bool { return d.opened == 1 })

		d.clk.Advance(DefaultFirstPacketTimeout) // the TLS connection's first packet is due
		d.await(t, "the TLS connection to be dropped", func() bool { return len(d.stops) == 1 })
		d.mu.Lock()
		require.Equal(t, 1, d.stopsMatching(ErrFirstPacketTimeout))
		d.mu.Unlock()
		require.Empty(t, hsFailed, "the raw socket is still within its handshake time")

		d.clk.Advance(DefaultFirstPacketTimeout) // the raw socket's handshake is due
		expectClosed(t, raw)
		require.ErrorIs(t, <-hsFailed, ErrTLSHandshakeTimeout)
	})
}

// TestAcceptLimitFlood: with MaxAcceptedConnections reached, a flood of
// connection attempts is closed at once and counted, the connections
// already open are served throughout, and a place that frees up is taken
// by the next connection.
func TestAcceptLimitFlood(t *testing.T) {
	const limit, flood = 3, 1000
	d := startDoorServer(t, Config{MaxAcceptedConnections: limit})
	addr := d.Addr().String()
	caller := startSteadyCaller(t, addr)
	held := []net.Conn{dialRaw(t, addr), dialRaw(t, addr)}
	d.await(t, "the limit to fill", func() bool { return d.opened == limit })

	var rejected atomic.Int64
	require.NoError(t, dialMany(flood, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard
		if _, err := c.Read(make([]byte, 1)); peerClosed(err) {
			rejected.Add(1)
		}
		return nil
	}))
	require.Equal(t, int64(flood), rejected.Load(), "attempts closed at once")
	before := caller.calls.Load()
	caller.waitCalls(t, before+10)
	st := d.Stats().Connections
	require.Equal(t, uint64(flood), st.Rejected)
	require.Equal(t, uint64(limit), st.Accepted)
	require.Equal(t, uint64(limit), st.Open())

	require.NoError(t, held[0].Close())
	d.await(t, "the freed place", func() bool { return len(d.stops) == 1 })
	dialRaw(t, addr)
	d.await(t, "a new connection in the freed place", func() bool { return d.opened == limit+1 })
	require.NoError(t, caller.finish())
	require.Equal(t, uint64(flood), d.Stats().Connections.Rejected)
}

// dialRaw opens a plain TCP connection to addr, closed when the test ends.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Minute))) // a hang guard
	return c
}

// readFull reads n bytes from c.
func readFull(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	require.NoError(t, err)
	return b
}

// expectClosed reads from c until the peer closes it.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_, err := io.Copy(io.Discard, c)
	if err == nil || peerClosed(err) {
		return
	}
	t.Fatalf("connection not closed by the peer: %v", err)
}

// peerClosed reports a read error that means the peer closed.
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}
