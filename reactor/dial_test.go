package reactor

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDialClosedPort fails fast with ErrDial.
func TestDialClosedPort(t *testing.T) {
	r := startReactor(t, Config{Loops: 1}, &testHandler{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	start := time.Now()
	_, err = r.Dial(dialCtx(t), addr, nil)
	require.ErrorIs(t, err, ErrDial)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.Less(t, time.Since(start), 2*time.Second)
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
