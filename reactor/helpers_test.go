package reactor

import (
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitLong bounds every wait in these tests; generous for -race on 2 cores.
const waitLong = 30 * time.Second

// testHandler calls the hooks that are set; OnData consumes everything by
// default.
type testHandler struct {
	open     func(c *Conn)
	data     func(c *Conn, b []byte) int
	writable func(c *Conn)
	wake     func(c *Conn)
	closed   func(c *Conn, err error)
}

func (h *testHandler) OnOpen(c *Conn) {
	if h.open != nil {
		h.open(c)
	}
}

func (h *testHandler) OnData(c *Conn, b []byte) int {
	if h.data != nil {
		return h.data(c, b)
	}
	return len(b)
}

func (h *testHandler) OnWritable(c *Conn) {
	if h.writable != nil {
		h.writable(c)
	}
}

func (h *testHandler) OnWake(c *Conn) {
	if h.wake != nil {
		h.wake(c)
	}
}

func (h *testHandler) OnClose(c *Conn, err error) {
	if h.closed != nil {
		h.closed(c, err)
	}
}

// startReactor starts a reactor listening on 127.0.0.1:0 and stops it at
// cleanup.
func startReactor(t testing.TB, cfg Config, h Handler) *Reactor {
	t.Helper()
	r, err := New(cfg, h)
	require.NoError(t, err)
	require.NoError(t, r.Start("127.0.0.1:0"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		_ = r.Stop(ctx)
	})
	return r
}

// peer is a std-net listener accepting one connection.
type peer struct {
	ln    net.Listener
	conns chan net.Conn
}

func newPeer(t testing.TB) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &peer{ln: ln, conns: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(p.conns)
				return
			}
			p.conns <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for c := range p.conns {
			_ = c.Close()
		}
	})
	return p
}

func (p *peer) addr() string { return p.ln.Addr().String() }

func (p *peer) accept(t testing.TB) net.Conn {
	t.Helper()
	select {
	case c := <-p.conns:
		t.Cleanup(func() { _ = c.Close() })
		return c
	case <-time.After(waitLong):
		t.Fatal("peer: no connection")
		return nil
	}
}

func dialCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

// recv waits for a value on ch.
func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLong):
		t.Fatal("timed out waiting for event")
		var zero T
		return zero
	}
}

// onLoop runs fn on c's loop and waits for it.
func onLoop(t testing.TB, c *Conn, fn func()) {
	t.Helper()
	done := make(chan struct{})
	require.NoError(t, c.Execute(func() { fn(); close(done) }))
	recv(t, done)
}

// goid returns the current goroutine's id (test-only loop check).
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	s := strings.TrimPrefix(string(buf[:n]), "goroutine ")
	id, _ := strconv.ParseUint(s[:strings.IndexByte(s, ' ')], 10, 64)
	return id
}

// closeLog records OnClose calls per connection.
type closeLog struct {
	mu   sync.Mutex
	errs map[uint64][]error
	ch   chan error
}

func newCloseLog() *closeLog {
	return &closeLog{errs: make(map[uint64][]error), ch: make(chan error, 1024)}
}

func (l *closeLog) record(c *Conn, err error) {
	l.mu.Lock()
	l.errs[c.ID()] = append(l.errs[c.ID()], err)
	l.mu.Unlock()
	l.ch <- err
}

// readN reads exactly n bytes from c.
func readN(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitLong)))
	_, err := io.ReadFull(c, b)
	require.NoError(t, err)
	return b
}

// discardConn dials, from a one-loop reactor, a std-net peer that reads and
// discards everything.
func discardConn(t *testing.T) (*Reactor, *Conn) {
	t.Helper()
	p := newPeer(t)
	r := startReactor(t, Config{Loops: 1}, &testHandler{})
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t)
	go func() { _, _ = ioCopyDiscard(nc) }()
	return r, c
}
