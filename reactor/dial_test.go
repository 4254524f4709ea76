package reactor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDialClosedPort fails fast with ErrDial: the error is the refusal
// itself (ECONNREFUSED), not a timeout, which proves the dial did not wait
// for one (no bound on the real time it took: a loaded machine may take
// long to run the loop, which says nothing about the dial).
func TestDialClosedPort(t *testing.T) {
	r := startReactor(t, Config{Loops: 1}, &testHandler{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	_, err = r.Dial(context.Background(), addr, nil) // else only DialTimeout (10 s) ends it
	require.ErrorIs(t, err, ErrDial)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "a timeout: %v", err)
	require.Zero(t, r.Stats().Conns)
}

// TestDialTimeout: an expired context fails at once; a peer whose accept
// queue is full makes Dial wait for DialTimeout.
func TestDialTimeout(t *testing.T) {
	r := startReactor(t, Config{Loops: 1, DialTimeout: 200 * time.Millisecond}, &testHandler{})

	ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	_, err := r.Dial(ctx, r.Addr().String(), nil)
	require.ErrorIs(t, err, ErrDial)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// No deadline in the context: only DialTimeout can end this dial, and
	// it must end as a timeout (no bound on the real time it took: that is
	// DialTimeout's, on the system clock).
	addr := fullBacklog(t)
	_, err = r.Dial(context.Background(), addr, nil)
	require.ErrorIs(t, err, ErrDial)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "not a timeout: %v", err)
}

// fullBacklog returns the address of a listener with backlog 0 whose accept
// queue is full, so further SYNs are dropped and connects hang.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for range 8 {
		nc, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // queue full
		}
		t.Cleanup(func() { _ = nc.Close() })
	}
	t.Fatal("could not fill the accept queue of a backlog-0 listener")
	return ""
}

// TestDialDuringStop: a dial blocked in connect fails when Stop begins.
func TestDialDuringStop(t *testing.T) {
	r, err := New(Config{Loops: 1}, &testHandler{})
	require.NoError(t, err)
	require.NoError(t, r.Start(""))
	addr := fullBacklog(t)
	errc := make(chan error, 1)
	go func() {
		_, err := r.Dial(context.Background(), addr, nil)
		errc <- err
	}()
	// Stop waits for the dial; the dial is cancelled by Stop.
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, r.Stop(ctx))
	// The dial fails either way: cut by Stop while connecting (ErrDial), or
	// refused because Stop came first (ErrStopped). It never connects.
	err = recv(t, errc)
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrStopped) || errors.Is(err, ErrDial), "unexpected error: %v", err)
}

// TestDialWith: the connection a Connect function opened (here after a
// little handshake of its own) is registered as a dialed one, and bytes
// the peer sent right behind the handshake reach OnData; Connect's errors
// wrap ErrDial, and Connect always runs under a deadline.
func TestDialWith(t *testing.T) {
	got := make(chan []byte, 4)
	r := startReactor(t, Config{Loops: 1}, &testHandler{data: func(c *Conn, b []byte) int {
		got <- append([]byte(nil), b...)
		return len(b)
	}})
	p := newPeer(t)
	peerDone := make(chan error, 1)
	go func() {
		c, ok := <-p.conns // no t.Fatal off the test goroutine
		if !ok {
			peerDone <- errors.New("no connection")
			return
		}
		defer c.Close()
		buf := make([]byte, 3)
		_, err := io.ReadFull(c, buf)
		if err == nil && string(buf) != "PRE" {
			err = errors.New("bad preamble " + string(buf))
		}
		if err == nil {
			_, err = c.Write([]byte("ACKDATA")) // DATA is the connection's own
		}
		peerDone <- err
	}()
	connect := func(ctx context.Context, addr string) (net.Conn, error) {
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("no deadline")
		}
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, 3)
		if _, err = nc.Write([]byte("PRE")); err == nil {
			_, err = io.ReadFull(nc, buf)
		}
		if err != nil || string(buf) != "ACK" {
			nc.Close()
			return nil, fmt.Errorf("handshake: %q %w", buf, err)
		}
		return nc, nil
	}
	c, err := r.DialWith(context.Background(), p.addr(), connect, nil, nil)
	require.NoError(t, err)
	require.True(t, c.Dialed())
	require.NoError(t, recv(t, peerDone))
	var all []byte
	for len(all) < 4 {
		all = append(all, recv(t, got)...)
	}
	require.Equal(t, "DATA", string(all))

	errRefused := errors.New("proxy says no")
	_, err = r.DialWith(dialCtx(t), p.addr(), func(context.Context, string) (net.Conn, error) { return nil, errRefused }, nil, nil)
	require.ErrorIs(t, err, ErrDial)
	require.ErrorIs(t, err, errRefused)
}
