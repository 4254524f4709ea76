package test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/internal/testcert"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// variant adjusts a server and a client Config the way SolidFrame's test
// variants do: nil is plain TCP, variantSecure ("s") TLS, variantCompress
// ("c") snappy, variantBoth ("b") TLS and snappy.
type variant func(t *testing.T, server, client *ipc.Config)

func (v variant) apply(t *testing.T, server, client *ipc.Config) {
	if v != nil {
		v(t, server, client)
	}
}

// testTLS is a CA with a server certificate for 127.0.0.1 and localhost.
type testTLS struct {
	ca     *testcert.CA
	server *tls.Config // presents the certificate
	client *tls.Config // trusts the CA; ServerName comes from the name
}

func newTestTLS(t *testing.T) *testTLS {
	ca := testcert.NewCA("ipcframe test CA")
	return &testTLS{
		ca:     ca,
		server: &tls.Config{Certificates: []tls.Certificate{ca.Issue(testcert.Leaf{})}},
		client: &tls.Config{RootCAs: ca.Pool},
	}
}

func variantSecure(t *testing.T, server, client *ipc.Config) {
	tt := newTestTLS(t)
	server.TLSServer, client.TLSClient = tt.server, tt.client
}

func variantCompress(_ *testing.T, server, client *ipc.Config) {
	server.Compression, client.Compression = compress.Snappy{}, compress.Snappy{}
}

func variantBoth(t *testing.T, server, client *ipc.Config) {
	variantSecure(t, server, client)
	variantCompress(t, server, client)
}

// TestClientServerBasicVariants runs clientserver_basic in SolidFrame's
// s (TLS), c (snappy) and b (TLS + snappy) variants, pool sizes 1 to 8.
// Each run echoes Table15 twice (30 messages, 66 MB each way) instead of
// the plain test's ten times: the scenario is the same, and twelve full
// runs under -race would take about ten minutes of the suite's CPU.
func TestClientServerBasicVariants(t *testing.T) {
	for _, v := range []struct {
		name string
		v    variant
	}{{"s", variantSecure}, {"c", variantCompress}, {"b", variantBoth}} {
		for _, conns := range []int{1, 2, 4, 8} {
			t.Run(fmt.Sprintf("%s/conns=%d", v.name, conns), func(t *testing.T) {
				runClientServerBasic(t, conns, 30, v.v)
			})
		}
	}
}

// TestClientServerSendRequestSecure runs clientserver_sendrequest over TLS.
func TestClientServerSendRequestSecure(t *testing.T) {
	runClientServerSendRequest(t, variantSecure)
}

// events collects errors from hooks running on loops or handshake
// goroutines.
type events struct {
	mu   sync.Mutex
	errs []error
	ch   chan struct{} // signalled on every add
}

func newEvents() *events { return &events{ch: make(chan struct{}, 1024)} }

func (e *events) add(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
	default:
	}
}

// waitFor waits until n errors match target and returns them.
func (e *events) waitFor(t *testing.T, target error, n int) []error {
	t.Helper()
	timeout := time.After(deadline)
	for {
		e.mu.Lock()
		var got []error
		for _, err := range e.errs {
			if errors.Is(err, target) {
				got = append(got, err)
			}
		}
		all := append([]error(nil), e.errs...)
		e.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-e.ch:
		case <-timeout:
			t.Fatalf("waiting for %d errors matching %v; got %v", n, target, all)
		}
	}
}

// tlsEchoServer starts an echo server with cfg's TLS fields; handshake
// failures go to hs, closes of opened connections to stops.
func tlsEchoServer(t *testing.T, cfg ipc.Config) (server *ipc.Service, hs, stops *events) {
	t.Helper()
	hs, stops = newEvents(), newEvents()
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) { _ = ctx.Respond(m) })
	cfg.Protocol, cfg.Listen = p, "127.0.0.1:0"
	cfg.TLSHandshakeFailed = func(_ string, err error) { hs.add(err) }
	cfg.ConnectionStop = func(_ ipc.ConnInfo, err error) { stops.add(err) }
	return startService(t, cfg), hs, stops
}

// tlsClient starts a client with cfg's TLS fields; pool events with an
// error go to failed.
func tlsClient(t *testing.T, cfg ipc.Config) (client *ipc.Service, failed *events) {
	t.Helper()
	failed = newEvents()
	p := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](p, 1, nil)
	cfg.Protocol = p
	cfg.PoolEvent = func(ev ipc.PoolEvent) {
		if ev.Err != nil && (ev.Kind == ipc.PoolConnectFailed || ev.Kind == ipc.PoolConnectionStop) {
			failed.add(ev.Err)
		}
	}
	return startService(t, cfg), failed
}

// TestTLSMutual: a client certificate from the trusted CA is accepted and
// visible to the server; one from another CA is rejected by the server
// (ErrTLSCertUntrusted) and the client's connection fails with the
// server's alert (TLS 1.3 verifies the client after the client finished).
func TestTLSMutual(t *testing.T) {
	tt := newTestTLS(t)
	var peerName sync.Map
	scfg := tt.server.Clone()
	scfg.ClientAuth, scfg.ClientCAs = tls.RequireAndVerifyClientCert, tt.ca.Pool
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) { _ = ctx.Respond(m) })
	hs := newEvents()
	server := startService(t, ipc.Config{Protocol: p, Listen: "127.0.0.1:0", TLSServer: scfg,
		TLSHandshakeFailed: func(_ string, err error) { hs.add(err) },
		ConnectionStart: func(info ipc.ConnInfo) {
			if st, ok := info.Conn.TLSState(); ok && len(st.PeerCertificates) > 0 {
				peerName.Store(st.PeerCertificates[0].Subject.CommonName, true)
			}
		}})
	addr := server.Addr().String()

	t.Run("accept", func(t *testing.T) {
		ccfg := tt.client.Clone()
		ccfg.Certificates = []tls.Certificate{tt.ca.Issue(testcert.Leaf{Names: []string{"client-a"}})}
		client, _ := tlsClient(t, ipc.Config{TLSClient: ccfg})
		echoOnce(t, client, addr, 1)
		_, ok := peerName.Load("client-a")
		require.True(t, ok, "server saw the client certificate")
	})
	t.Run("reject", func(t *testing.T) {
		other := testcert.NewCA("other CA")
		ccfg := tt.client.Clone()
		// Offered whatever CAs the server asks for (a client only sends a
		// certificate from an authority the server names).
		cert := other.Issue(testcert.Leaf{Names: []string{"client-b"}})
		ccfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		client, failed := tlsClient(t, ipc.Config{TLSClient: ccfg})
		require.NoError(t, client.Send(addr, testmsg.New(1, 100), 0, nil))
		hs.waitFor(t, ipc.ErrTLSCertUntrusted, 1)
		failed.waitFor(t, ipc.ErrTLSAlert, 1)
		require.NoError(t, client.AbortPool(addr, nil))
		_, ok := peerName.Load("client-b")
		require.False(t, ok, "a rejected client never reaches ConnectionStart")
	})
}

// TestTLSCertificateRejections: expired, wrong-name and untrusted server
// certificates fail the client's connection attempts with three distinct
// errors, and the client opens no connection.
func TestTLSCertificateRejections(t *testing.T) {
	tt := newTestTLS(t)
	cases := []struct {
		name   string
		cert   func() tls.Certificate
		want   error
		others []error
	}{
		{"expired", func() tls.Certificate {
			return tt.ca.Issue(testcert.Leaf{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
		}, ipc.ErrTLSCertExpired, []error{ipc.ErrTLSCertName, ipc.ErrTLSCertUntrusted}},
		{"wrong-name", func() tls.Certificate {
			return tt.ca.Issue(testcert.Leaf{Names: []string{"other.example"}})
		}, ipc.ErrTLSCertName, []error{ipc.ErrTLSCertExpired, ipc.ErrTLSCertUntrusted}},
		{"untrusted", func() tls.Certificate {
			return testcert.NewCA("rogue CA").Issue(testcert.Leaf{})
		}, ipc.ErrTLSCertUntrusted, []error{ipc.ErrTLSCertExpired, ipc.ErrTLSCertName}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server, _, _ := tlsEchoServer(t, ipc.Config{TLSServer: &tls.Config{Certificates: []tls.Certificate{tc.cert()}}})
			var opened atomic.Int32
			client, failed := tlsClient(t, ipc.Config{TLSClient: tt.client,
				ConnectionStart: func(ipc.ConnInfo) { opened.Add(1) }})
			require.NoError(t, client.Send(server.Addr().String(), testmsg.New(1, 100), 0, nil))
			err := failed.waitFor(t, tc.want, 1)[0]
			require.NoError(t, client.AbortPool(server.Addr().String(), nil))
			require.ErrorIs(t, err, ipc.ErrTLSCertificate)
			for _, o := range tc.others {
				require.NotErrorIs(t, err, o)
			}
			require.Zero(t, opened.Load(), "no connection opened")
		})
	}
}

// TestTLSParallelHandshakes: one pool opens 64 TLS connections at once;
// every one handshakes and serves.
func TestTLSParallelHandshakes(t *testing.T) {
	const n = 64
	tt := newTestTLS(t)
	server, hs, _ := tlsEchoServer(t, ipc.Config{TLSServer: tt.server})
	var mu sync.Mutex
	open := map[uint64]bool{}
	all := make(chan struct{})
	client, _ := tlsClient(t, ipc.Config{TLSClient: tt.client, MaxActiveConnections: n, MaxPendingConnections: n,
		ConnectionStart: func(info ipc.ConnInfo) {
			st, ok := info.Conn.TLSState()
			mu.Lock()
			defer mu.Unlock()
			open[info.ID] = ok && st.HandshakeComplete
			if len(open) == n {
				close(all)
			}
		}})
	addr := server.Addr().String()
	require.NoError(t, client.CreatePool(addr, ipc.PoolOptions{MinConnections: n}))
	wait(t, all, "64 TLS connections")
	mu.Lock()
	for id, ok := range open {
		require.True(t, ok, "connection %d without a complete handshake", id)
	}
	mu.Unlock()
	for i := range n {
		echoOnce(t, client, addr, i)
	}
	hs.mu.Lock()
	require.Empty(t, hs.errs)
	hs.mu.Unlock()
}

// TestClientServerTimeoutSecure ports clientserver_timeout_secure: ten raw
// sockets that never speak are dropped by the handshake timeout, each with
// ErrTLSHandshakeTimeout, while a TLS client is served.
func TestClientServerTimeoutSecure(t *testing.T) {
	tt := newTestTLS(t)
	server, hs, _ := tlsEchoServer(t, ipc.Config{TLSServer: tt.server, TLSHandshakeTimeout: time.Second})
	addr := server.Addr().String()
	raws := make([]net.Conn, 10)
	for i := range raws {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		raws[i] = c
	}
	// A pool whose handshake loses a race with the short timeout re-dials,
	// so the echo completes whatever the machine's load.
	client, _ := tlsClient(t, ipc.Config{TLSClient: tt.client})
	echoOnce(t, client, addr, 1)
	hs.waitFor(t, ipc.ErrTLSHandshakeTimeout, len(raws))
	for _, c := range raws {
		b, err := io.ReadAll(c)
		require.NoError(t, err, "the server closed the silent socket")
		require.Empty(t, b)
	}
}

// TestTLSResumption: a pool that re-dials after its connection closed
// resumes the TLS 1.3 session (the default ClientSessionCache).
func TestTLSResumption(t *testing.T) {
	tt := newTestTLS(t)
	server, _, _ := tlsEchoServer(t, ipc.Config{TLSServer: tt.server})
	addr := server.Addr().String()
	resumed := make(chan bool, 4)
	conns := make(chan ipc.Conn, 4)
	client, _ := tlsClient(t, ipc.Config{TLSClient: tt.client, ConnectionStart: func(info ipc.ConnInfo) {
		st, _ := info.Conn.TLSState()
		resumed <- st.DidResume
		conns <- info.Conn
	}})
	require.NoError(t, client.CreatePool(addr, ipc.PoolOptions{MinConnections: 1}))
	require.False(t, <-resumed, "the first handshake is a full one")
	echoOnce(t, client, addr, 1) // the session ticket arrives before the echo
	require.NoError(t, (<-conns).Close())
	select {
	case r := <-resumed:
		require.True(t, r, "the re-dialed connection resumed its session")
	case <-time.After(deadline):
		t.Fatal("the pool did not re-dial")
	}
	echoOnce(t, client, addr, 2)
}

// TestTLSMismatch: a plain client on a TLS port and a TLS client on a plain
// port both fail with named errors on both sides.
func TestTLSMismatch(t *testing.T) {
	tt := newTestTLS(t)
	t.Run("plain client on TLS port", func(t *testing.T) {
		server, hs, _ := tlsEchoServer(t, ipc.Config{TLSServer: tt.server})
		client, failed := tlsClient(t, ipc.Config{})
		require.NoError(t, client.Send(server.Addr().String(), testmsg.New(1, 100), 0, nil))
		hs.waitFor(t, ipc.ErrTLSNotTLS, 1)
		err := failed.waitFor(t, ipc.ErrPeerSpeaksTLS, 1)[0]
		require.ErrorIs(t, err, ipc.ErrBadPacketHeader)
		require.NoError(t, client.AbortPool(server.Addr().String(), nil))
	})
	t.Run("TLS client on plain port", func(t *testing.T) {
		server, _, stops := tlsEchoServer(t, ipc.Config{})
		client, failed := tlsClient(t, ipc.Config{TLSClient: tt.client})
		require.NoError(t, client.Send(server.Addr().String(), testmsg.New(1, 100), 0, nil))
		failed.waitFor(t, ipc.ErrTLSNotTLS, 1)
		stops.waitFor(t, ipc.ErrPeerSpeaksTLS, 1)
		require.NoError(t, client.AbortPool(server.Addr().String(), nil))
	})
}

// TestTLSBadInput: garbage instead of a ClientHello, a handshake stalled
// halfway, plaintext after the handshake and a truncated record each close
// only their connection with a named error; the server keeps serving.
func TestTLSBadInput(t *testing.T) {
	tt := newTestTLS(t)
	server, hs, stops := tlsEchoServer(t, ipc.Config{TLSServer: tt.server, TLSHandshakeTimeout: 2 * time.Second})
	addr := server.Addr().String()
	client, _ := tlsClient(t, ipc.Config{TLSClient: tt.client})
	echoOnce(t, client, addr, 1)

	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	// handshaken returns a TLS session's raw socket once the server has
	// opened it (it answered a KeepAlive packet over TLS).
	handshaken := func() net.Conn {
		raw := dial()
		tc := tls.Client(raw, &tls.Config{RootCAs: tt.ca.Pool, ServerName: "127.0.0.1"})
		require.NoError(t, tc.Handshake())
		ping := []byte{2, 0, 0, 0}
		_, err := tc.Write(ping)
		require.NoError(t, err)
		// The server's window hello (docs/protocol.md §7b), then the pong.
		hello := []byte{1, 0, 8, 0, 7, 7, 7, 7, 7, 7, 7, 7}
		got := make([]byte, len(hello)+len(ping))
		_, err = io.ReadFull(tc, got)
		require.NoError(t, err)
		require.Equal(t, append(hello, ping...), got)
		return raw
	}

	t.Run("garbage instead of ClientHello", func(t *testing.T) {
		c := dial()
		_, err := c.Write([]byte("\x01\x00\x10\x00 not a TLS record"))
		require.NoError(t, err)
		hs.waitFor(t, ipc.ErrTLSNotTLS, 1)
	})
	t.Run("handshake stalled halfway", func(t *testing.T) {
		// The first bytes of a ClientHello record declaring 512 bytes.
		c := dial()
		_, err := c.Write([]byte{22, 3, 1, 2, 0, 1, 0, 1, 252, 3, 3})
		require.NoError(t, err)
		hs.waitFor(t, ipc.ErrTLSHandshakeTimeout, 1)
	})
	t.Run("plaintext after handshake", func(t *testing.T) {
		raw := handshaken()
		_, err := raw.Write([]byte{1, 0, 4, 0, 1, 2, 3, 4})
		require.NoError(t, err)
		stops.waitFor(t, ipc.ErrTLSRecord, 1)
	})
	t.Run("truncated record", func(t *testing.T) {
		raw := handshaken()
		_, err := raw.Write([]byte{23, 3, 3, 0, 100, 1, 2, 3, 4, 5})
		require.NoError(t, err)
		require.NoError(t, raw.(*net.TCPConn).CloseWrite())
		stops.waitFor(t, ipc.ErrTLSTruncated, 1)
	})
	echoOnce(t, client, addr, 2)
}
