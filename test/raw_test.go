package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/socks5"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// rawBlob is raw_basic's blob: size bytes of a pattern that shows any
// reordering or loss.
func rawBlob(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// errOnce keeps the first error a callback on an event loop reports (no
// require there); the test checks it on its own goroutine.
type errOnce struct{ v atomic.Pointer[error] }

func (e *errOnce) set(err error) {
	if err != nil {
		e.v.CompareAndSwap(nil, &err)
	}
}

func (e *errOnce) check(t testing.TB) {
	t.Helper()
	if p := e.v.Load(); p != nil {
		t.Fatal(*p)
	}
}

// TestRawBasic ports SolidFrame's raw_basic: both sides start raw with
// 1 KiB buffers; the client sends a 100,000-byte blob raw, the server
// echoes it raw as it arrives and activates once it has it all, the client
// activates once the echo is whole; then 10 echoed requests (Table15
// indexes 0-9), sent before the activation and held meanwhile, go through
// the same connection. With TLS, the raw bytes travel inside it (the TLS
// handshake comes first, as in SolidFrame).
func TestRawBasic(t *testing.T) {
	t.Run("plain", func(t *testing.T) { runRawBasic(t, nil) })
	t.Run("TLS", func(t *testing.T) { runRawBasic(t, variantSecure) })
}

func runRawBasic(t *testing.T, v variant) {
	const blobSize = 100000
	blob := rawBlob(blobSize)
	var fail errOnce

	// Server: loop-owned state of its one connection.
	var serverGot []byte
	serverHasBlob := make(chan struct{})
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) {
		if len(serverGot) != blobSize {
			fail.set(fmt.Errorf("message %d before the raw blob was whole (%d bytes)", m.Idx, len(serverGot)))
		}
		fail.set(ctx.Respond(m))
	})
	scfg := ipc.Config{
		Protocol:   p,
		Listen:     "127.0.0.1:0",
		BufferSize: 1024,
		RawStart:   ipc.RoleAccepted,
		RawData: func(c ipc.Conn, data []byte) int {
			if len(serverGot) == blobSize {
				return 0 // packets from here on
			}
			n := min(len(data), blobSize-len(serverGot))
			serverGot = append(serverGot, data[:n]...)
			fail.set(c.SendRaw(data[:n], func(err error) { fail.set(err) }))
			if len(serverGot) == blobSize {
				close(serverHasBlob)
				fail.set(c.Activate())
			}
			return n
		},
	}

	// Client.
	var clientGot []byte
	var sentRaw atomic.Int32
	clientHasEcho := make(chan struct{})
	cp := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](cp, 1, nil)
	ccfg := ipc.Config{
		Protocol:   cp,
		BufferSize: 1024,
		RawStart:   ipc.RoleDialed,
		ConnectionStart: func(ci ipc.ConnInfo) {
			fail.set(ci.Conn.SendRaw(blob, func(err error) {
				sentRaw.Add(1)
				fail.set(err)
			}))
		},
		RawData: func(c ipc.Conn, data []byte) int {
			if len(clientGot) == blobSize {
				return 0
			}
			n := min(len(data), blobSize-len(clientGot))
			clientGot = append(clientGot, data[:n]...)
			if len(clientGot) == blobSize {
				close(clientHasEcho)
				fail.set(c.Activate())
			}
			return n
		},
	}
	v.apply(t, &scfg, &ccfg)
	server := startService(t, scfg)
	client := startService(t, ccfg)

	run := chainedEcho(t, client, server.Addr().String(), 10, 10)
	wait(t, serverHasBlob, "the blob on the server")
	wait(t, clientHasEcho, "the blob's echo")
	run.quiet(t, client)
	fail.check(t)
	require.Equal(t, blob, serverGot)
	require.Equal(t, blob, clientGot)
	require.Equal(t, int32(1), sentRaw.Load(), "SendRaw completions")
	st := client.Stats()
	require.EqualValues(t, 1, st.Connections.Dialed, "one connection carried raw bytes and messages")
}

// rawSOCKS5 is a client's SOCKS5 handshake run in raw mode by the
// application (not the engine's Config.Proxy): ConnectionStart greets the
// proxy, RawData feeds its replies to internal/socks5 and activates the
// connection once the proxy has connected it to dest.
type rawSOCKS5 struct {
	dest       string
	user, pass string
	fail       *errOnce

	mu sync.Mutex
	hs map[uint64]*socks5.Client // per connection
}

func (r *rawSOCKS5) start(ci ipc.ConnInfo) {
	host, ps, _ := net.SplitHostPort(r.dest)
	port, _ := strconv.Atoi(ps)
	hs, err := socks5.NewClient(host, uint16(port), r.user, r.pass)
	if err != nil {
		r.fail.set(err)
		return
	}
	r.mu.Lock()
	r.hs[ci.ID] = hs
	r.mu.Unlock()
	r.fail.set(ci.Conn.SendRaw(hs.Start(), nil))
}

func (r *rawSOCKS5) data(c ipc.Conn, data []byte) int {
	r.mu.Lock()
	hs := r.hs[c.ID()]
	r.mu.Unlock()
	if hs == nil || hs.Done() {
		return 0 // the destination's packets, parsed after Activate
	}
	n, out, err := hs.Feed(data)
	switch {
	case err != nil:
		_ = c.CloseWithError(err)
	case hs.Done():
		r.fail.set(c.Activate())
	case out != nil:
		r.fail.set(c.SendRaw(out, nil))
	}
	return n
}

// TestRawProxy makes SolidFrame's disabled raw_proxy real: the client
// dials a real SOCKS5 server (microsocks, with a password), speaks the
// proxy handshake itself in raw mode, activates, and the basic echo
// scenario runs through the proxy. The proxy's replies arrive in whatever
// pieces TCP delivers; what follows them is the server's.
func TestRawProxy(t *testing.T) {
	proxy := startMicrosocks(t, socks5Options{User: "alice", Pass: "secret"})
	server, _ := echoServer(t)
	var fail errOnce
	hs := &rawSOCKS5{dest: server.Addr().String(), user: "alice", pass: "secret", fail: &fail, hs: map[uint64]*socks5.Client{}}
	cp := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](cp, 1, nil)
	client := startService(t, ipc.Config{
		Protocol: cp,
		// The pool's name is the destination; its TCP connection goes to
		// the proxy.
		Resolver: ipc.ResolverFunc(func(context.Context, string) ([]string, error) {
			return []string{proxy.Addr}, nil
		}),
		RawStart:        ipc.RoleDialed,
		ConnectionStart: hs.start,
		RawData:         hs.data,
	})
	chainedEcho(t, client, hs.dest, 10, 10).quiet(t, client)
	fail.check(t)
	require.Len(t, hs.hs, 1, "one connection")
	for _, c := range hs.hs {
		require.True(t, c.Done())
	}
}

// TestRawFlood: a peer that floods raw bytes before activation is cut off
// at MaxRawBuffered with ErrRawOverflow; only that connection closes; the
// client's queued messages complete exactly once by their kind (the
// one-shot one fails with the lost connection, the others go through the
// next connection, which greets properly), and raw sends complete once.
func TestRawFlood(t *testing.T) {
	const limit = 1024
	hello := []byte("HELLO")
	stops := make(chan error, 10)
	var fail errOnce
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) { fail.set(ctx.Respond(m)) })
	server := startService(t, ipc.Config{
		Protocol:       p,
		Listen:         "127.0.0.1:0",
		RawStart:       ipc.RoleAccepted,
		MaxRawBuffered: limit,
		RawData: func(c ipc.Conn, data []byte) int {
			if len(data) < len(hello) || !bytes.Equal(data[:len(hello)], hello) {
				return 0 // wait for a greeting that never comes
			}
			fail.set(c.Activate())
			return len(hello)
		},
		ConnectionStop: func(_ ipc.ConnInfo, err error) { stops <- err },
	})

	var conns atomic.Int32
	rawDone := make(chan error, 10)
	cp := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](cp, 1, nil)
	client := startService(t, ipc.Config{
		Protocol:     cp,
		RawStart:     ipc.RoleDialed,
		ReconnectMin: 1, // the flooding connection counts as failed
		ConnectionStart: func(ci ipc.ConnInfo) {
			done := func(err error) { rawDone <- err }
			if conns.Add(1) == 1 {
				fail.set(ci.Conn.SendRaw(make([]byte, 64<<10), done))
				return
			}
			fail.set(ci.Conn.SendRaw(hello, done))
			fail.set(ci.Conn.Activate())
		},
	})
	addr := server.Addr().String()

	kinds := []struct {
		name  string
		flags ipc.Flags
	}{{"oneshot", ipc.OneShot}, {"default", 0}, {"idempotent", ipc.Idempotent}}
	type result struct {
		n   int
		err error
	}
	var mu sync.Mutex
	results := map[string]*result{}
	for _, k := range kinds {
		results[k.name] = &result{}
	}
	allDone := make(chan struct{})
	for _, k := range kinds {
		require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(0, 1000), k.flags, func(_, _ *testmsg.Message, err error) {
			mu.Lock()
			defer mu.Unlock()
			r := results[k.name]
			r.n++
			r.err = err
			for _, r := range results {
				if r.n == 0 {
					return
				}
			}
			if r.n == 1 {
				close(allDone)
			}
		}))
	}
	wait(t, allDone, "every request to complete")

	select {
	case err := <-stops:
		require.ErrorIs(t, err, ipc.ErrRawOverflow)
	case <-time.After(deadline):
		t.Fatal("no connection stop on the server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, client.Stop(ctx))
	fail.check(t)
	mu.Lock()
	defer mu.Unlock()
	for name, r := range results {
		require.Equal(t, 1, r.n, "%s completions", name)
	}
	require.ErrorIs(t, results["oneshot"].err, ipc.ErrConnection)
	require.NoError(t, results["default"].err)
	require.NoError(t, results["idempotent"].err)
	require.GreaterOrEqual(t, conns.Load(), int32(2))
	// Every raw send completed exactly once: one per connection.
	require.Len(t, rawDone, int(conns.Load()))
	for range conns.Load() {
		if err := <-rawDone; err != nil && !errors.Is(err, ipc.ErrConnectionClosed) && !errors.Is(err, ipc.ErrConnectionGone) {
			var ce *ipc.ConnError
			require.ErrorAs(t, err, &ce, "raw send failed with %v", err)
		}
	}
}
