package reactor

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestNoStaleWriteAfterFdReuse: conn A closes and its fd number N comes to
// refer to conn B's socket; writing through A then fails with ErrClosed and
// B's peer gets nothing of A.
//
// The reuse is established, not hoped for: the accept gives B the lowest
// free fd, which is N only if no lower one is free (another test's socket
// may have been closed meanwhile). When it is not N and N is still free,
// the test duplicates B's socket onto N (dup3); when something else took N,
// it tries again with a new A and B. Either way a stale write through A's
// fd would reach B's peer.
func TestNoStaleWriteAfterFdReuse(t *testing.T) {
	type opened struct {
		c  *Conn
		fd int
	}
	opens := make(chan opened, 64)
	closes := newCloseLog()
	r := startReactor(t, Config{Loops: 1}, &testHandler{
		open:   func(c *Conn) { opens <- opened{c, c.fdOnLoop()} },
		closed: closes.record,
	})

	// Each attempt closes a fresh A and accepts a fresh B. An attempt is
	// used when B got A's fd or A's fd is still free (then B's socket is
	// duplicated onto it); when something else of the process took A's fd
	// meanwhile (a concurrent close and open elsewhere), it is retried.
	var a, b opened
	var ncB rawConn
	for attempt := 0; ; attempt++ {
		require.Less(t, attempt, 20, "A's fd was taken by something else in every attempt")
		ncA, err := net.Dial("tcp", r.Addr().String())
		require.NoError(t, err)
		defer ncA.Close()
		a = recv(t, opens)
		sock := rawSocket(t) // B's client socket, allocated before A's fd is freed
		a.c.Abort(nil)
		require.ErrorIs(t, recv(t, closes.ch), ErrClosed)

		ncB = rawConnect(t, sock, r.Addr().(*net.TCPAddr))
		b = recv(t, opens)
		if b.fd == a.fd {
			break
		}
		if _, err := unix.FcntlInt(uintptr(a.fd), unix.F_GETFD, 0); errors.Is(err, unix.EBADF) {
			require.NoError(t, unix.Dup3(b.fd, a.fd, unix.O_CLOEXEC))
			t.Cleanup(func() { _ = unix.Close(a.fd) })
			break
		}
		b.c.Abort(nil)
		require.ErrorIs(t, recv(t, closes.ch), ErrClosed)
	}

	var writeA, writeB error
	var writableA, closedA bool
	onLoop(t, b.c, func() {
		writeA = a.c.Write([]byte("secret-for-A"))
		writableA, closedA = a.c.Writable(), a.c.Closed()
		writeB = b.c.Write([]byte("hello"))
	})
	require.ErrorIs(t, writeA, ErrClosed)
	require.False(t, writableA)
	require.True(t, closedA)
	require.NoError(t, writeB)
	require.ErrorIs(t, a.c.Send(context.Background(), []byte("secret-for-A")), ErrClosed)
	require.ErrorIs(t, a.c.Execute(func() {}), ErrClosed)
	a.c.Wake()
	a.c.Close(nil)
	a.c.Abort(nil)
	require.Equal(t, "hello", string(ncB.readN(t, 5)))

	// Nothing else arrives.
	onLoop(t, b.c, func() { writeB = b.c.Write([]byte("!")) })
	require.NoError(t, writeB)
	require.Equal(t, "!", string(ncB.readN(t, 1)))

	// The precondition holds: bytes written on A's fd number reach B's peer.
	_, err := unix.Write(a.fd, []byte("?"))
	require.NoError(t, err)
	require.Equal(t, "?", string(ncB.readN(t, 1)))
}

// TestOnCloseOnce: many connections closed concurrently by Close, Abort, the
// peer and Stop each get exactly one OnClose.
func TestOnCloseOnce(t *testing.T) {
	closes := newCloseLog()
	var mu sync.Mutex
	var conns []*Conn
	r, err := New(Config{Loops: 2}, &testHandler{
		open: func(c *Conn) {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		},
		closed: closes.record,
	})
	require.NoError(t, err)
	require.NoError(t, r.Start("127.0.0.1:0"))

	const n = 40
	var ncs []net.Conn
	for range n {
		nc, err := net.Dial("tcp", r.Addr().String())
		require.NoError(t, err)
		ncs = append(ncs, nc)
	}
	for i := range n / 2 {
		c, err := r.Dial(dialCtx(t), r.Addr().String(), nil)
		require.NoError(t, err)
		_ = c
		_ = i
	}
	// Dialed and accepted ends of the self-dials plus the std clients.
	require.Eventually(t, func() bool { return r.Stats().Conns == n+n }, waitLong, time.Millisecond)
	mu.Lock()
	all := append([]*Conn(nil), conns...)
	mu.Unlock()

	var wg sync.WaitGroup
	for i, c := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 4 {
			case 0:
				c.Close(nil)
				c.Abort(nil)
			case 1:
				c.Abort(nil)
				c.Close(nil)
			case 2:
				_ = c.Send(context.Background(), []byte("x"))
				c.Close(nil)
			}
		}()
	}
	for i, nc := range ncs {
		if i%3 == 0 {
			_ = nc.Close()
		}
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, r.Stop(ctx))
	for _, nc := range ncs {
		_ = nc.Close()
	}
	closes.mu.Lock()
	defer closes.mu.Unlock()
	require.Len(t, closes.errs, len(all))
	for id, errs := range closes.errs {
		require.Len(t, errs, 1, "conn %d", id)
	}
	require.Zero(t, r.Stats().Conns)
}

// TestStopClosesAll: Stop runs OnClose(ErrStopped) for every open
// connection, dialed and accepted, and leaves the reactor unusable.
func TestStopClosesAll(t *testing.T) {
	closes := newCloseLog()
	r, err := New(Config{Loops: 2}, &testHandler{closed: closes.record})
	require.NoError(t, err)
	require.NoError(t, r.Start("127.0.0.1:0"))
	p := newPeer(t)
	var cs []*Conn
	for range 5 {
		c, err := r.Dial(dialCtx(t), p.addr(), nil)
		require.NoError(t, err)
		nc := p.accept(t)
		go func() { _, _ = ioCopyDiscard(nc) }()
		require.NoError(t, c.Send(context.Background(), make([]byte, 1<<20)))
		cs = append(cs, c)
		in, err := net.Dial("tcp", r.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { _ = in.Close() })
	}
	require.Eventually(t, func() bool { return r.Stats().Conns == 10 }, waitLong, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, r.Stop(ctx))
	for range 10 {
		require.ErrorIs(t, recv(t, closes.ch), ErrStopped)
	}
	require.Zero(t, r.Stats().Conns)
	require.ErrorIs(t, cs[0].Send(context.Background(), []byte("x")), ErrClosed)
	require.ErrorIs(t, r.Stop(ctx), ErrStopped)
	_, err = r.Dial(ctx, "127.0.0.1:1", nil)
	require.ErrorIs(t, err, ErrStopped)
}

// rawConn is a blocking client socket driven by syscalls, so that its fd is
// allocated when the test wants.
type rawConn int

func rawSocket(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	tv := syscall.NsecToTimeval(waitLong.Nanoseconds())
	require.NoError(t, syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv))
	return fd
}

func rawConnect(t *testing.T, fd int, addr *net.TCPAddr) rawConn {
	t.Helper()
	sa := &syscall.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	require.NoError(t, syscall.Connect(fd, sa))
	return rawConn(fd)
}

func (c rawConn) readN(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	for got := 0; got < n; {
		m, err := syscall.Read(int(c), b[got:])
		require.NoError(t, err)
		require.NotZero(t, m, "EOF")
		got += m
	}
	return b
}
