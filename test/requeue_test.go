package test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// rqProxy forwards connections to a target, except the first one, which
// it swallows: it reads and counts the bytes and never writes, until the
// test cuts it.
type rqProxy struct {
	*tcpProxy
	signal *plSignal

	mu      sync.Mutex // guards first and swallow
	first   net.Conn   // the swallowed connection
	swallow int64      // bytes read from it
}

func newRQProxy(t testing.TB, target string) *rqProxy {
	t.Helper()
	p := &rqProxy{signal: newPLSignal()}
	p.tcpProxy = newTCPProxy(t, target)
	p.start(p.serve)
	return p
}

func (p *rqProxy) serve(in net.Conn) {
	p.mu.Lock()
	first := p.first == nil
	if first {
		p.first = in
	}
	p.mu.Unlock()
	if !first {
		p.forward(in)
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := in.Read(buf)
		p.mu.Lock()
		p.swallow += int64(n)
		p.mu.Unlock()
		p.signal.notify()
		if err != nil {
			return
		}
	}
}

// waitSwallowed waits until the swallowed connection has delivered n bytes.
func (p *rqProxy) waitSwallowed(t testing.TB, n int64) {
	t.Helper()
	p.signal.waitFor(t, "bytes on the swallowed connection", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.swallow >= n
	})
}

// cut closes the swallowed connection.
func (p *rqProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.first.Close()
}

// TestRequeueKeepsSendOrder backs docs/architecture.md §5.1: the messages
// a closed connection held go back to the front of the pool's queue in
// send order, whatever writer slots they had. The pool's first connection
// reaches a peer that reads everything and answers nothing (rqProxy). Ten
// one-way messages go out first and free their writer slots in order, so
// the free list (LIFO) hands the next requests slots 9, 8, ..., 0, 10, ...:
// slot order is no longer send order. Then K idempotent requests are
// written and wait; the peer cuts the connection; the pool redials, and
// the echo server behind the proxy must receive the K requests exactly in
// send order, each once, and each request completes once, successfully.
func TestRequeueKeepsSendOrder(t *testing.T) {
	const (
		k    = 40
		size = 200
	)
	var (
		mu    sync.Mutex
		order []uint32
	)
	server := startService(t, ipc.Config{
		Protocol: plEchoProto(func(_ ipc.Context, m *testmsg.Message) {
			mu.Lock()
			order = append(order, m.Idx)
			mu.Unlock()
		}),
		Listen: "127.0.0.1:0",
	})
	proxy := newRQProxy(t, server.Addr().String())
	addr := proxy.addr()
	client := startService(t, ipc.Config{
		Protocol:     plClientProto(),
		ReconnectMin: time.Millisecond,
		ReconnectMax: 10 * time.Millisecond,
	})

	// One-way messages: written (handed to the socket) and completed, in
	// order, on the swallowed connection.
	oneWay := make(chan error, 10)
	for i := range 10 {
		require.NoError(t, client.Send(addr, testmsg.New(1000+i, 10), 0, func(err error) { oneWay <- err }))
	}
	for _, err := range stRecv(t, oneWay, 10, "the one-way messages") {
		require.NoError(t, err)
	}
	proxy.mu.Lock()
	before := proxy.swallow
	proxy.mu.Unlock()

	results := make(chan error, 2*k)
	for i := range k {
		require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(i, size), ipc.Idempotent,
			func(req, resp *testmsg.Message, err error) {
				if err == nil {
					err = testmsg.Verify(resp, size)
				}
				results <- err
			}))
	}
	// All K requests written: each is more than size bytes on the wire.
	proxy.waitSwallowed(t, before+int64(k*size))
	proxy.cut()

	for _, err := range stRecv(t, results, k, "the requests") {
		require.NoError(t, err)
	}
	mu.Lock()
	got := append([]uint32(nil), order...)
	mu.Unlock()
	want := make([]uint32, k)
	for i := range want {
		want[i] = uint32(i)
	}
	require.Equal(t, want, got, "the resent requests left their send order")
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.Equal(t, uint64(2), st.Connects, "connections opened")
	require.NoError(t, client.Stop(t.Context()))
	require.Empty(t, results, "a request completed twice")
}
