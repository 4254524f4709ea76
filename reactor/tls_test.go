package reactor

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testcert"
	"github.com/stretchr/testify/require"
)

// tlsPair returns a server config and a client config trusting it.
func tlsPair(testing.TB) (server, client *tls.Config) {
	ca := testcert.NewCA("reactor test CA")
	cert := ca.Issue(testcert.Leaf{})
	return &tls.Config{Certificates: []tls.Certificate{cert}},
		&tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
}

// echoTLSHandler echoes from OnData and reports each close error.
func echoTLSHandler(closed chan<- error) *testHandler {
	return &testHandler{
		data: func(c *Conn, b []byte) int {
			_ = c.Write(b)
			return len(b)
		},
		closed: func(c *Conn, err error) { closed <- err },
	}
}

// requireEcho writes size random bytes to nc in pieces of piece bytes
// while reading them back, and checks they come back byte-exact.
func requireEcho(t *testing.T, nc net.Conn, size, piece int) {
	t.Helper()
	require.NoError(t, nc.SetDeadline(time.Now().Add(waitLong)))
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	readErr := make(chan error, 1)
	got := make([]byte, len(payload))
	go func() { _, err := io.ReadFull(nc, got); readErr <- err }()
	for off := 0; off < len(payload); off += piece {
		_, err := nc.Write(payload[off:min(off+piece, len(payload))])
		require.NoError(t, err)
	}
	require.NoError(t, <-readErr)
	require.True(t, bytes.Equal(payload, got), "echo differs")
	require.NoError(t, nc.SetDeadline(time.Time{}))
}

// TestTLSEchoStdClient: a std crypto/tls client's bytes come back
// byte-exact from a reactor TLS server; the client's Close (close_notify)
// closes the server side with io.EOF.
func TestTLSEchoStdClient(t *testing.T) {
	scfg, ccfg := tlsPair(t)
	closed := make(chan error, 1)
	r := startReactor(t, Config{Loops: 1, TLS: TLSConfig{Server: scfg}}, echoTLSHandler(closed))

	nc, err := tls.Dial("tcp", r.Addr().String(), ccfg)
	require.NoError(t, err)
	requireEcho(t, nc, 1<<20, 7777)
	require.NoError(t, nc.Close())
	select {
	case err := <-closed:
		require.ErrorIs(t, err, io.EOF)
	case <-time.After(waitLong):
		t.Fatal("server close timed out")
	}
}

// TestTLSDialAndCloseNotify: DialTLS between two reactors; Close sends
// close_notify, which the peer reads as a graceful end.
func TestTLSDialAndCloseNotify(t *testing.T) {
	scfg, ccfg := tlsPair(t)
	sclosed := make(chan error, 1)
	server := startReactor(t, Config{Loops: 1, TLS: TLSConfig{Server: scfg}}, echoTLSHandler(sclosed))
	echoed := make(chan []byte, 16)
	cclosed := make(chan error, 1)
	client := startReactor(t, Config{Loops: 1}, &testHandler{
		data: func(c *Conn, b []byte) int {
			echoed <- append([]byte(nil), b...)
			return len(b)
		},
		closed: func(c *Conn, err error) { cclosed <- err },
	})
	c, err := client.DialTLS(context.Background(), server.Addr().String(), ccfg, nil)
	require.NoError(t, err)
	st, ok := c.TLSConnectionState()
	require.True(t, ok)
	require.True(t, st.HandshakeComplete)
	require.Equal(t, uint16(tls.VersionTLS13), st.Version)
	require.NoError(t, c.Send(context.Background(), []byte("hello over tls")))
	var got []byte
	for len(got) < len("hello over tls") {
		select {
		case b := <-echoed:
			got = append(got, b...)
		case <-time.After(waitLong):
			t.Fatal("echo timed out")
		}
	}
	require.Equal(t, "hello over tls", string(got))
	c.Close(nil)
	select {
	case err := <-sclosed:
		require.ErrorIs(t, err, io.EOF)
		require.Contains(t, err.Error(), "close_notify")
	case <-time.After(waitLong):
		t.Fatal("server close timed out")
	}
	require.ErrorIs(t, <-cclosed, ErrClosed)
}

// TestTLSGarbageInsteadOfClientHello: the server names the failure, sends
// a TLS alert back, closes the connection, and keeps serving.
func TestTLSGarbageInsteadOfClientHello(t *testing.T) {
	scfg, ccfg := tlsPair(t)
	hsErrs := make(chan error, 4)
	closed := make(chan error, 4)
	r := startReactor(t, Config{Loops: 1, TLS: TLSConfig{Server: scfg,
		OnHandshakeError: func(_ string, err error) { hsErrs <- err }}}, echoTLSHandler(closed))
	raw, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	require.NoError(t, err)
	select {
	case err := <-hsErrs:
		require.ErrorIs(t, err, ErrTLSNotTLS)
	case <-time.After(waitLong):
		t.Fatal("no handshake error")
	}
	reply, _ := io.ReadAll(raw)
	require.Equal(t, tlsAlertUnexpected, reply, "the server answers with a TLS alert, then closes")
	require.Eventually(t, func() bool { return r.Stats().Conns == 0 }, waitLong, time.Millisecond,
		"the failed connection is left open")

	nc, err := tls.Dial("tcp", r.Addr().String(), ccfg)
	require.NoError(t, err)
	_, err = nc.Write([]byte("x"))
	require.NoError(t, err)
	b := make([]byte, 1)
	_, err = io.ReadFull(nc, b)
	require.NoError(t, err)
	require.NoError(t, nc.Close())
	require.ErrorIs(t, <-closed, io.EOF)
	select {
	case err := <-hsErrs:
		t.Fatalf("unexpected handshake error %v", err)
	default:
	}
}

// TestTLSDialPlainPort: a TLS dial to a plain reactor fails with
// ErrTLSNotTLS once the plain side closes, and neither side keeps a
// connection open.
func TestTLSDialPlainPort(t *testing.T) {
	_, ccfg := tlsPair(t)
	plain := startReactor(t, Config{Loops: 1}, &testHandler{
		data: func(c *Conn, b []byte) int { c.Abort(errors.New("not ipc")); return len(b) },
	})
	client := startReactor(t, Config{Loops: 1}, &testHandler{})
	_, err := client.DialTLS(context.Background(), plain.Addr().String(), ccfg, nil)
	require.ErrorIs(t, err, ErrDial)
	require.ErrorIs(t, err, ErrTLSNotTLS)
	for _, r := range []*Reactor{client, plain} {
		require.Eventually(t, func() bool { return r.Stats().Conns == 0 }, waitLong, time.Millisecond,
			"a connection is left open")
	}
}

// TestTLSTruncatedRecord: a peer that ends the stream inside a record
// closes the connection with ErrTLSTruncated.
func TestTLSTruncatedRecord(t *testing.T) {
	scfg, ccfg := tlsPair(t)
	closed := make(chan error, 1)
	opened := make(chan struct{})
	h := echoTLSHandler(closed)
	h.open = func(*Conn) { close(opened) }
	r := startReactor(t, Config{Loops: 1, TLS: TLSConfig{Server: scfg}}, h)
	raw, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	require.NoError(t, tls.Client(raw, ccfg).Handshake())
	<-opened
	_, err = raw.Write([]byte{23, 3, 3, 0, 100, 1, 2, 3, 4, 5})
	require.NoError(t, err)
	require.NoError(t, raw.(*net.TCPConn).CloseWrite())
	select {
	case err := <-closed:
		require.ErrorIs(t, err, ErrTLSTruncated)
	case <-time.After(waitLong):
		t.Fatal("no close")
	}
}

// TestTLSHandshakeTimeoutError: the timeout error is a timeout and a
// handshake failure.
func TestTLSHandshakeTimeoutError(t *testing.T) {
	var te interface{ Timeout() bool }
	require.ErrorAs(t, ErrTLSHandshakeTimeout, &te)
	require.True(t, te.Timeout())
	require.ErrorIs(t, ErrTLSHandshakeTimeout, ErrTLSHandshake)
	require.NotErrorIs(t, ErrTLSHandshake, ErrTLSHandshakeTimeout)
}

// TestTLSMaxHandshakes: with one handshake at a time, connections wait in
// FIFO order behind a silent peer: the handshake queued behind it (garbage
// from a second socket) fails only after the silent one ended, and a real
// client is then served.
func TestTLSMaxHandshakes(t *testing.T) {
	scfg, ccfg := tlsPair(t)
	hsErrs := make(chan string, 4)
	opened := make(chan struct{}, 1)
	h := &testHandler{open: func(*Conn) { opened <- struct{}{} }}
	r := startReactor(t, Config{Loops: 1, TLS: TLSConfig{Server: scfg, MaxHandshakes: 1,
		OnHandshakeError: func(remote string, err error) { hsErrs <- remote }}}, h)
	silent, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	garbage, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	defer garbage.Close()
	_, err = garbage.Write([]byte("not TLS at all"))
	require.NoError(t, err)
	// Both connections are in: one handshake runs, the other waits.
	queued := func() bool {
		r.hs.mu.Lock()
		defer r.hs.mu.Unlock()
		return r.hs.running == 1 && len(r.hs.queue) == 1
	}
	for end := time.Now().Add(waitLong); !queued(); runtime.Gosched() {
		require.True(t, time.Now().Before(end), "the second handshake never queued")
	}
	select {
	case remote := <-hsErrs:
		t.Fatalf("handshake of %s ended while the silent one ran", remote)
	default:
	}
	require.NoError(t, silent.Close())
	require.Equal(t, silent.LocalAddr().String(), <-hsErrs, "the silent peer's handshake ends first")
	require.Equal(t, garbage.LocalAddr().String(), <-hsErrs, "the queued one runs after it")

	nc, err := tls.Dial("tcp", r.Addr().String(), ccfg)
	require.NoError(t, err)
	defer nc.Close()
	<-opened
}

// TestTLSWriteBehindSocket: records written while gnet still buffers
// earlier ones (a peer that does not read yet) go into gnet's outbound
// buffer directly and reach the peer complete and in order.
func TestTLSWriteBehindSocket(t *testing.T) {
	const total, piece = 16 << 20, 100_000
	scfg, ccfg := tlsPair(t)
	payload := make([]byte, total)
	_, _ = rand.Read(payload)
	buffered := make(chan int, 1)
	h := &testHandler{open: func(c *Conn) {
		for off := 0; off < total; off += piece {
			if err := c.Write(payload[off:min(off+piece, total)]); err != nil {
				buffered <- -1
				return
			}
		}
		buffered <- c.gc.OutboundBuffered()
	}}
	r := startReactor(t, Config{Loops: 1, TLS: TLSConfig{Server: scfg}}, h)
	nc, err := tls.Dial("tcp", r.Addr().String(), ccfg)
	require.NoError(t, err)
	defer nc.Close()
	select {
	case n := <-buffered:
		require.Positive(t, n, "the socket took everything: nothing was written behind it")
	case <-time.After(waitLong):
		t.Fatal("server never opened")
	}
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(waitLong)))
	got := make([]byte, total)
	_, err = io.ReadFull(nc, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(payload, got), "bytes differ")
}

// trickleConn writes in pieces of n bytes, each its own system call (TCP
// sends each at once: Go sets TCP_NODELAY), so that the peer's loop sees
// records cut anywhere, headers included.
type trickleConn struct {
	net.Conn
	n int
}

func (c trickleConn) Write(b []byte) (int, error) {
	for off := 0; off < len(b); off += c.n {
		if _, err := c.Conn.Write(b[off:min(off+c.n, len(b))]); err != nil {
			return off, err
		}
	}
	return len(b), nil
}

// TestTLSRecordsInPieces: a client whose records arrive a few bytes at a
// time (handshake and application data) is served byte-exact.
func TestTLSRecordsInPieces(t *testing.T) {
	scfg, ccfg := tlsPair(t)
	closed := make(chan error, 1)
	r := startReactor(t, Config{Loops: 1, TLS: TLSConfig{Server: scfg}}, echoTLSHandler(closed))
	raw, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	nc := tls.Client(trickleConn{raw, 3}, ccfg)
	defer nc.Close()
	requireEcho(t, nc, 20_000, 5000)
}

// TestTLSNoGoroutinePerConn: once their handshakes are done, open TLS
// connections have no goroutine of their own (the handshake goroutines
// have exited and the record layer runs on the loop), and they still
// serve.
func TestTLSNoGoroutinePerConn(t *testing.T) {
	const n = 32
	scfg, ccfg := tlsPair(t)
	opened := make(chan struct{}, n)
	h := echoTLSHandler(make(chan error, n))
	h.open = func(*Conn) { opened <- struct{}{} }
	r := startReactor(t, Config{Loops: 2, TLS: TLSConfig{Server: scfg}}, h)
	before := runtime.NumGoroutine()
	conns := make([]*tls.Conn, n)
	for i := range conns {
		nc, err := tls.Dial("tcp", r.Addr().String(), ccfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = nc.Close() })
		conns[i] = nc
	}
	for range n {
		select {
		case <-opened:
		case <-time.After(waitLong):
			t.Fatal("a connection never opened")
		}
	}
	exited := make(chan struct{})
	go func() { r.hs.wait(); close(exited) }()
	select {
	case <-exited: // every handshake goroutine has returned
	case <-time.After(waitLong):
		t.Fatal("handshake goroutines still running with every handshake done")
	}
	for _, nc := range conns {
		requireEcho(t, nc, 64<<10, 16<<10)
	}
	stacks := make([]byte, 1<<20)
	stacks = stacks[:runtime.Stack(stacks, true)]
	require.NotContains(t, string(stacks), "handshake", "a handshake goroutine outlived its handshake")
	require.Less(t, runtime.NumGoroutine()-before, n/4, "goroutines grew with the connections")
}
