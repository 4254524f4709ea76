package test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// The engine's SOCKS5 client (Config.Proxy, PoolOptions.Proxy) against
// real Debian servers (microsocks, dante; socks5server_test.go) and a fake
// one that answers garbage.

// variantProxy sends the client through proxy.
func variantProxy(proxy *ipc.SOCKS5) variant {
	return func(_ *testing.T, _, client *ipc.Config) { client.Proxy = proxy }
}

// TestSOCKS5ClientServerBasic runs clientserver_basic (Table15 once, 10
// in flight) through real SOCKS5 servers: microsocks without and with a
// password, dante, and TLS end to end through the proxy (the certificate
// is checked against the destination's name, not the proxy's).
func TestSOCKS5ClientServerBasic(t *testing.T) {
	const total = 15
	t.Run("microsocks", func(t *testing.T) {
		s := startMicrosocks(t, socks5Options{})
		runClientServerBasic(t, 1, total, variantProxy(&ipc.SOCKS5{Addr: s.Addr}))
	})
	t.Run("microsocks password", func(t *testing.T) {
		s := startMicrosocks(t, socks5Options{User: "alice", Pass: "secret"})
		runClientServerBasic(t, 2, total, variantProxy(&ipc.SOCKS5{Addr: s.Addr, Username: "alice", Password: "secret"}))
	})
	t.Run("dante", func(t *testing.T) {
		s := startDante(t, socks5Options{})
		runClientServerBasic(t, 2, total, variantProxy(&ipc.SOCKS5{Addr: s.Addr}))
	})
	t.Run("dante TLS", func(t *testing.T) {
		s := startDante(t, socks5Options{})
		runClientServerBasic(t, 1, total, func(t *testing.T, server, client *ipc.Config) {
			variantSecure(t, server, client)
			client.Proxy = &ipc.SOCKS5{Addr: s.Addr}
		})
	})
}

// localhostEcho starts echo servers on 127.0.0.1 and, where the host has
// IPv6, on ::1 with the same port, so that "localhost:port" reaches one
// whichever address a resolver puts first. It returns the port.
func localhostEcho(t *testing.T) int {
	t.Helper()
	v4, _ := echoServer(t)
	port := v4.Addr().(*net.TCPAddr).Port
	if l, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port))); err == nil {
		l.Close()
		p := ipc.NewProtocol()
		ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) { _ = ctx.Respond(m) })
		startService(t, ipc.Config{Protocol: p, Listen: net.JoinHostPort("::1", strconv.Itoa(port))})
	}
	return port
}

// TestSOCKS5Resolution: by default the proxy resolves the destination
// name (the client's resolver is never asked); with ResolveLocally the
// client resolves it and the proxy gets an address.
func TestSOCKS5Resolution(t *testing.T) {
	port := localhostEcho(t)
	proxy := startMicrosocks(t, socks5Options{})
	var asked atomic.Int32
	resolver := ipc.ResolverFunc(func(ctx context.Context, name string) ([]string, error) {
		asked.Add(1)
		if name != "echo.invalid:"+strconv.Itoa(port) {
			return nil, errors.New("unexpected name " + name)
		}
		return []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, nil
	})
	cp := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](cp, 1, nil)

	t.Run("by the proxy", func(t *testing.T) {
		asked.Store(0)
		client := startService(t, ipc.Config{Protocol: cp, Resolver: resolver, Proxy: &ipc.SOCKS5{Addr: proxy.Addr}})
		echoOnce(t, client, "localhost:"+strconv.Itoa(port), 1)
		require.Zero(t, asked.Load(), "the client resolved the name")
	})
	t.Run("locally", func(t *testing.T) {
		asked.Store(0)
		client := startService(t, ipc.Config{Protocol: cp, Resolver: resolver, Proxy: &ipc.SOCKS5{Addr: proxy.Addr, ResolveLocally: true}})
		// The proxy could not resolve this name: only the local resolver
		// knows it.
		echoOnce(t, client, "echo.invalid:"+strconv.Itoa(port), 2)
		require.Equal(t, int32(1), asked.Load())
	})
}

// proxyFailure sends a one-shot request through a client whose proxy
// fails, and returns the request's completion error and the pool's first
// connect failure. Each is checked to be the only one of its kind.
func proxyFailure(t *testing.T, proxy *ipc.SOCKS5, dest string) (msgErr, dialErr error) {
	t.Helper()
	failures := make(chan error, 100)
	cp := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](cp, 1, nil)
	client := startService(t, ipc.Config{
		Protocol:     cp,
		Proxy:        proxy,
		ReconnectMin: time.Hour, // one attempt: the first failure is the one checked
		ReconnectMax: time.Hour,
		PoolEvent: func(e ipc.PoolEvent) {
			if e.Kind == ipc.PoolConnectFailed {
				failures <- e.Err
			}
		},
	})
	done := make(chan error, 2)
	require.NoError(t, ipc.SendRequest(client, dest, testmsg.New(0, 100), ipc.OneShot,
		func(_, _ *testmsg.Message, err error) { done <- err }))
	select {
	case msgErr = <-done:
	case <-time.After(deadline):
		t.Fatal("the one-shot request did not complete")
	}
	dialErr = <-failures // sent before the message failed
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, client.Stop(ctx))
	require.Empty(t, done, "the request completed twice")
	require.ErrorIs(t, msgErr, ipc.ErrConnection)
	return msgErr, dialErr
}

// TestSOCKS5Refused: dante's rules refuse the destination; the attempt
// fails with ErrProxyRefused naming the reply, and the queued one-shot
// request fails with it.
func TestSOCKS5Refused(t *testing.T) {
	server, _ := echoServer(t)
	port := server.Addr().(*net.TCPAddr).Port
	s := startDante(t, socks5Options{Deny: []string{"127.0.0.1/32 port = " + strconv.Itoa(port)}})
	msgErr, dialErr := proxyFailure(t, &ipc.SOCKS5{Addr: s.Addr}, server.Addr().String())
	for _, err := range []error{msgErr, dialErr} {
		require.ErrorIs(t, err, ipc.ErrProxyRefused)
		require.ErrorIs(t, err, ipc.ErrProxy)
		require.Contains(t, err.Error(), "not allowed by ruleset")
	}
}

// TestSOCKS5WrongCredentials: microsocks wants a password; a wrong one,
// and none, fail the attempt with ErrProxyAuth.
func TestSOCKS5WrongCredentials(t *testing.T) {
	server, _ := echoServer(t)
	s := startMicrosocks(t, socks5Options{User: "alice", Pass: "secret"})
	for _, cfg := range []*ipc.SOCKS5{
		{Addr: s.Addr, Username: "alice", Password: "wrong"},
		{Addr: s.Addr},
	} {
		msgErr, dialErr := proxyFailure(t, cfg, server.Addr().String())
		require.ErrorIs(t, msgErr, ipc.ErrProxyAuth)
		require.ErrorIs(t, dialErr, ipc.ErrProxyAuth)
	}
}

// httpAnswer is what a web server mistaken for a proxy answers.
var httpAnswer = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

// fakeProxy accepts connections and answers the first bytes each sends
// with answer; with a nil answer it never answers (it reads until the
// client gives up).
func fakeProxy(t *testing.T, answer []byte) string {
	t.Helper()
	p := newTCPProxy(t, "")
	p.start(func(c net.Conn) {
		defer c.Close()
		if answer == nil {
			_, _ = io.Copy(io.Discard, c)
			return
		}
		buf := make([]byte, 512)
		if _, err := c.Read(buf); err == nil {
			_, _ = c.Write(answer)
		}
	})
	return p.addr()
}

// TestSOCKS5Garbage: a proxy that answers bytes that are not SOCKS5 fails
// the attempt with ErrProxyProtocol.
func TestSOCKS5Garbage(t *testing.T) {
	server, _ := echoServer(t)
	msgErr, dialErr := proxyFailure(t, &ipc.SOCKS5{Addr: fakeProxy(t, httpAnswer)}, server.Addr().String())
	require.ErrorIs(t, msgErr, ipc.ErrProxyProtocol)
	require.ErrorIs(t, dialErr, ipc.ErrProxyProtocol)
}

// TestSOCKS5HandshakeTimeout: a proxy that accepts and never answers
// cannot hold the attempt beyond DialTimeout: it fails as a timeout.
func TestSOCKS5HandshakeTimeout(t *testing.T) {
	server, _ := echoServer(t)
	proxy := fakeProxy(t, nil)
	failures := make(chan error, 10)
	cp := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](cp, 1, nil)
	client := startService(t, ipc.Config{
		Protocol:     cp,
		Proxy:        &ipc.SOCKS5{Addr: proxy},
		DialTimeout:  100 * time.Millisecond,
		ReconnectMin: time.Hour,
		ReconnectMax: time.Hour,
		PoolEvent: func(e ipc.PoolEvent) {
			if e.Kind == ipc.PoolConnectFailed {
				failures <- e.Err
			}
		},
	})
	require.NoError(t, client.CreatePool(server.Addr().String(), ipc.PoolOptions{}))
	var err error
	select {
	case err = <-failures:
	case <-time.After(deadline):
		t.Fatal("the attempt never ended")
	}
	require.ErrorIs(t, err, ipc.ErrProxy)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var te interface{ Timeout() bool }
	require.ErrorAs(t, err, &te)
	require.True(t, te.Timeout())
}

// TestSOCKS5PoolOverride: a pool's options override the service's proxy:
// the service's proxy answers garbage, one pool goes through a real proxy,
// another connects directly.
func TestSOCKS5PoolOverride(t *testing.T) {
	server, _ := echoServer(t)
	real := startMicrosocks(t, socks5Options{})
	cp := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](cp, 1, nil)
	client := startService(t, ipc.Config{Protocol: cp, Proxy: &ipc.SOCKS5{Addr: fakeProxy(t, httpAnswer)}})
	port := strconv.Itoa(server.Addr().(*net.TCPAddr).Port)
	viaProxy, direct := "127.0.0.1:"+port, "localhost:"+port
	require.NoError(t, client.CreatePool(viaProxy, ipc.PoolOptions{Proxy: &ipc.SOCKS5{Addr: real.Addr}}))
	require.NoError(t, client.CreatePool(direct, ipc.PoolOptions{Direct: true}))
	echoOnce(t, client, viaProxy, 1)
	echoOnce(t, client, direct, 2)
	require.ErrorIs(t, client.CreatePool("x:1", ipc.PoolOptions{Direct: true, Proxy: &ipc.SOCKS5{Addr: real.Addr}}), ipc.ErrInvalidConfig)
	require.ErrorIs(t, client.CreatePool("y:1", ipc.PoolOptions{Proxy: &ipc.SOCKS5{Addr: "no port"}}), ipc.ErrInvalidConfig)
}

// TestSOCKS5ProxyDies: the proxy process is killed while a transfer runs
// through it. Idempotent requests are resent through a new proxy
// connection once the proxy is back, and each completes exactly once with
// its echo. The server withholds the answer to request 0 the first time,
// so at least that one is waiting for its response when the proxy dies.
func TestSOCKS5ProxyDies(t *testing.T) {
	proxy := startMicrosocks(t, socks5Options{})
	sizes := []int{100, 4 << 20, 8 << 20, 4 << 20, 16 << 10}
	var fail errOnce
	seen := make([]atomic.Int32, len(sizes))
	firstZero := make(chan struct{})
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) {
		if n := seen[m.Idx].Add(1); m.Idx == 0 && n == 1 {
			close(firstZero) // no answer: the proxy dies now
			return
		}
		fail.set(testmsg.Verify(m, sizes[m.Idx]))
		fail.set(ctx.Respond(m))
	})
	server := startService(t, ipc.Config{Protocol: p, Listen: "127.0.0.1:0"})

	cp := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](cp, 1, nil)
	client := startService(t, ipc.Config{
		Protocol:     cp,
		Proxy:        &ipc.SOCKS5{Addr: proxy.Addr},
		ReconnectMin: time.Millisecond,
		ReconnectMax: 20 * time.Millisecond,
	})
	var mu sync.Mutex
	counts := make([]int, len(sizes))
	var errs []error
	remaining := len(sizes)
	allDone := make(chan struct{})
	for i, size := range sizes {
		require.NoError(t, ipc.SendRequest(client, server.Addr().String(), testmsg.New(i, size), ipc.Idempotent,
			func(req, resp *testmsg.Message, err error) {
				if err == nil {
					err = testmsg.Verify(resp, sizes[req.Idx])
				}
				mu.Lock()
				defer mu.Unlock()
				counts[req.Idx]++
				if err != nil {
					errs = append(errs, err)
				}
				if counts[req.Idx] == 1 {
					if remaining--; remaining == 0 {
						close(allDone)
					}
				}
			}))
	}
	wait(t, firstZero, "request 0 on the server")
	proxy.Kill()
	proxy.Restart(t)
	wait(t, allDone, "every request after the proxy's restart")

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, client.Stop(ctx))
	fail.check(t)
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, errs)
	for i, n := range counts {
		require.Equal(t, 1, n, "request %d completions", i)
	}
	require.Equal(t, int32(2), seen[0].Load(), "request 0 reached the server again through the new proxy connection")
	st := client.Stats()
	require.GreaterOrEqual(t, st.Resends, uint64(1))
	require.GreaterOrEqual(t, st.Connections.Dialed, uint64(2))
}
