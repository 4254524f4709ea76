package ipc

import (
	"context"
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// TestRawConfig: raw mode's and the proxy's fields are validated, and the
// service keeps its own copy of the proxy.
func TestRawConfig(t *testing.T) {
	p := NewProtocol()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"MaxRawBuffered", Config{MaxRawBuffered: maxRawBuffered + 1}},
		{"MaxRawBuffered", Config{MaxRawBuffered: -1}},
		{"RawStart", Config{RawStart: 4}},
		{"Proxy", Config{Proxy: &SOCKS5{Addr: "no-port"}}},
		{"Proxy", Config{Proxy: &SOCKS5{Addr: "p:1", Password: "x"}}},
		{"Proxy", Config{Proxy: &SOCKS5{Addr: "p:1", Username: string(make([]byte, 256))}}},
	} {
		tc.cfg.Protocol = p
		_, err := NewService(tc.cfg)
		require.ErrorIs(t, err, ErrInvalidConfig, tc.name)
		require.ErrorContains(t, err, tc.name)
	}
	proxy := &SOCKS5{Addr: "p:1"}
	s, err := NewService(Config{Protocol: p, Proxy: proxy})
	require.NoError(t, err)
	proxy.Addr = "changed:2"
	require.Equal(t, "p:1", s.cfg.Proxy.Addr)
	require.Equal(t, DefaultMaxRawBuffered, s.cfg.MaxRawBuffered)
}

// TestSendRawCompletions: a raw send completes once, with nil when
// written; after the raw phase it completes with ErrNotRaw; on a closed
// connection SendRaw fails at once with ErrConnectionGone.
func TestSendRawCompletions(t *testing.T) {
	addr, cp := rawEchoServer(t)
	conns := make(chan Conn, 1)
	stopped := make(chan struct{})
	client := lcStart(t, Config{
		Protocol: cp,
		RawStart: RoleDialed,
		ConnectionStart: func(ci ConnInfo) {
			// Nothing raw goes out: the server is not raw, so the
			// connection only activates.
			conns <- ci.Conn
			_ = ci.Conn.Activate()
		},
		ConnectionStop: func(ConnInfo, error) { close(stopped) },
	})
	_, err := Call[testmsg.Message, testmsg.Message](context.Background(), client, addr, testmsg.New(1, 100), 0)
	require.NoError(t, err)
	c := lcRecv(t, conns, "the connection")

	done := make(chan error, 2)
	require.NoError(t, c.SendRaw([]byte("late"), func(err error) { done <- err }))
	require.ErrorIs(t, lcRecv(t, done, "the raw send's completion"), ErrNotRaw)

	require.NoError(t, c.Close())
	lcRecv(t, stopped, "the close")
	require.ErrorIs(t, c.SendRaw([]byte("x"), func(err error) { done <- err }), ErrConnectionGone)
	require.ErrorIs(t, Conn{}.SendRaw(nil, nil), ErrConnectionGone)
	require.ErrorIs(t, Conn{}.EnterPassive(), ErrConnectionGone)
	require.Empty(t, done)
}

// TestRawEnterPassive: a dialed connection that leaves raw mode with
// EnterPassive carries messages sent to it but none of its pool's until
// Activate.
func TestRawEnterPassive(t *testing.T) {
	addr, cp := rawEchoServer(t)
	conns := make(chan Conn, 1)
	client := lcStart(t, Config{
		Protocol: cp,
		RawStart: RoleDialed,
		ConnectionStart: func(ci ConnInfo) {
			conns <- ci.Conn
			_ = ci.Conn.EnterPassive()
		},
	})
	poolDone := make(chan error, 2)
	require.NoError(t, SendRequest(client, addr, testmsg.New(1, 100), 0,
		func(_, _ *testmsg.Message, err error) { poolDone <- err }))
	c := lcRecv(t, conns, "the connection")
	direct := make(chan error, 1)
	require.NoError(t, SendRequestTo(client, c, testmsg.New(2, 100), 0,
		func(_, _ *testmsg.Message, err error) { direct <- err }))
	require.NoError(t, lcRecv(t, direct, "the connection-directed request"))
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.Equal(t, 1, st.Queued, "the pool's request waits for Activate")
	require.Equal(t, 1, st.Passive)
	require.Empty(t, poolDone)
	require.NoError(t, c.Activate())
	require.NoError(t, lcRecv(t, poolDone, "the pool's request"))
}

// rawEchoServer starts a plain echo server and returns its address and
// the client's protocol.
func rawEchoServer(t *testing.T) (string, *Protocol) {
	t.Helper()
	sp := NewProtocol()
	MustRegister(sp, 1, func(ctx Context, m *testmsg.Message) { _ = ctx.Respond(m) })
	server := lcStart(t, Config{Protocol: sp, Listen: "127.0.0.1:0"})
	cp := NewProtocol()
	MustRegister[testmsg.Message](cp, 1, nil)
	return server.Addr().String(), cp
}
