package reactor

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEcho: a client-only reactor (Start("")) dials a server reactor; the
// server echoes with loop-side Write.
func TestEcho(t *testing.T) {
	writeErrs := make(chan error, 16) // the loop never asserts: the test goroutine does
	srv := startReactor(t, Config{Loops: 2}, &testHandler{
		data: func(c *Conn, b []byte) int {
			if err := c.Write(b); err != nil {
				writeErrs <- err
			}
			return len(b)
		},
	})
	t.Cleanup(func() { require.Empty(t, writeErrs, "server write failed") })
	got := make(chan []byte, 16)
	opened := make(chan any, 1)
	cli, err := New(Config{Loops: 1}, &testHandler{
		open: func(c *Conn) { opened <- c.Data() },
		data: func(c *Conn, b []byte) int {
			got <- bytes.Clone(b)
			return len(b)
		},
	})
	require.NoError(t, err)
	require.NoError(t, cli.Start(""))
	require.NotNil(t, cli.Addr())
	t.Cleanup(func() { _ = cli.Stop(dialCtx(t)) })

	c, err := cli.Dial(dialCtx(t), srv.Addr().String(), "tag")
	require.NoError(t, err)
	require.Equal(t, "tag", recv(t, opened))
	require.True(t, c.Dialed())
	require.NotEmpty(t, c.LocalAddr())
	require.Equal(t, srv.Addr().String(), c.RemoteAddr())

	require.NoError(t, c.Send(dialCtx(t), []byte("hello")))
	var buf []byte
	for len(buf) < 5 {
		buf = append(buf, recv(t, got)...)
	}
	require.Equal(t, "hello", string(buf))
}

// TestMaxInbound: a handler that never consumes closes with
// ErrInboundOverflow once MaxInbound is exceeded.
func TestMaxInbound(t *testing.T) {
	closes := newCloseLog()
	srv := startReactor(t, Config{Loops: 1, MaxInbound: 64 << 10}, &testHandler{
		data:   func(*Conn, []byte) int { return 0 },
		closed: closes.record,
	})
	nc, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	defer nc.Close()
	go func() { _, _ = nc.Write(make([]byte, 1<<20)) }()
	err = recv(t, closes.ch)
	require.ErrorIs(t, err, ErrInboundOverflow)
}

// TestPartialConsume: unconsumed bytes are presented again with newer ones.
func TestPartialConsume(t *testing.T) {
	var all []byte
	done := make(chan struct{})
	srv := startReactor(t, Config{Loops: 1}, &testHandler{
		data: func(c *Conn, b []byte) int {
			// Consume only whole 4-byte records.
			n := len(b) / 4 * 4
			all = append(all, b[:n]...)
			if len(all) == 4000 {
				close(done)
			}
			return n
		},
	})
	nc, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	defer nc.Close()
	want := make([]byte, 4000)
	for i := range want {
		want[i] = byte(i % 251)
	}
	for i := 0; i < len(want); i += 7 { // odd pieces split records
		_, err := nc.Write(want[i:min(i+7, len(want))])
		require.NoError(t, err)
	}
	recv(t, done)
	require.Equal(t, want, all)
}

// TestPeerCloseEOF: a peer closing yields OnClose with io.EOF.
func TestPeerCloseEOF(t *testing.T) {
	closes := newCloseLog()
	srv := startReactor(t, Config{Loops: 1}, &testHandler{closed: closes.record})
	nc, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	require.NoError(t, nc.Close())
	err = recv(t, closes.ch)
	require.True(t, errors.Is(err, io.EOF), "got %v", err)
}
