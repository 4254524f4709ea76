package reactor

import (
	"net"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// intoHandler is a testHandler that also takes direct reads.
type intoHandler struct {
	testHandler
	into func(c *Conn, n int)
}

func (h *intoHandler) OnReadInto(c *Conn, n int) { h.into(c, n) }

// TestReadIntoBufs: one direct read fills several buffers in order,
// skipping an empty one. The handler asks for 3, 0, 5 and 7 bytes after
// the peer's first byte, holding the loop until the peer's next 15 bytes
// (written once the loop holds) sit in the socket; one OnReadInto reports all 15, spread over the three
// buffers as asked.
func TestReadIntoBufs(t *testing.T) {
	bufs := [][]byte{make([]byte, 3), nil, make([]byte, 5), make([]byte, 7)}
	inX, delivered := make(chan struct{}), make(chan struct{})
	asked, got := make(chan bool, 1), make(chan int, 4)
	h := &intoHandler{into: func(c *Conn, n int) { got <- n }}
	h.data = func(c *Conn, b []byte) int {
		if string(b) == "x" {
			close(inX)
			<-delivered
			asked <- c.ReadIntoBufs(bufs)
		}
		return len(b)
	}
	r := startReactor(t, Config{Loops: 1}, h)
	sendWhileHeld(t, r, inX, "abcdefghijklmno")
	close(delivered)
	require.True(t, recv(t, asked))
	require.Equal(t, 15, recv(t, got))
	require.Equal(t, "abc", string(bufs[0]))
	require.Equal(t, "defgh", string(bufs[2]))
	require.Equal(t, "ijklmno", string(bufs[3]))
}

// TestReadIntoInterleaved: a connection on which small messages travel
// beside a large one (SetInterleaved) still reads straight into the
// handler's buffer. The handler marks it interleaved in OnData of the
// peer's first byte and, once the peer's next 10 bytes sit in the socket,
// asks for them; they land there, OnReadInto reports them and none
// reaches OnData. main refused (ReadInto reported false on an interleaved
// connection, and gnet read the bytes).
func TestReadIntoInterleaved(t *testing.T) {
	buf := make([]byte, 10)
	inX, delivered := make(chan struct{}), make(chan struct{})
	asked, got, data := make(chan bool, 1), make(chan int, 4), make(chan string, 4)
	h := &intoHandler{into: func(c *Conn, n int) { got <- n }}
	h.data = func(c *Conn, b []byte) int {
		data <- string(b)
		if string(b) == "x" {
			c.SetInterleaved(true)
			close(inX)
			<-delivered
			asked <- c.ReadInto(buf, nil)
		}
		return len(b)
	}
	r := startReactor(t, Config{Loops: 1}, h)
	sendWhileHeld(t, r, inX, "0123456789")
	close(delivered)
	require.True(t, recv(t, asked), "ReadInto on an interleaved connection")
	require.Equal(t, 10, recv(t, got))
	require.Equal(t, "0123456789", string(buf))
	require.Equal(t, "x", recv(t, data))
	require.Empty(t, data, "no byte of the direct read reached OnData")
	require.EqualValues(t, 10, r.Stats().DirectBytes)
}

// sendWhileHeld dials r, writes "x", waits until the handler holds the loop
// in OnData of it (inX closed), writes more and returns once those bytes
// sit in the server's socket.
func sendWhileHeld(t *testing.T, r *Reactor, inX chan struct{}, more string) {
	t.Helper()
	c, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	recv(t, inX) // the loop holds in OnData
	_, err = c.Write([]byte(more))
	require.NoError(t, err)
	rc, err := c.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	for q := -1; q != 0; runtime.Gosched() { // until the bytes sit in the server's socket
		require.NoError(t, rc.Control(func(fd uintptr) { q, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }))
		require.NoError(t, err)
	}
}

// TestShortenNextRead: on an interleaved connection, after ShortenNextRead
// (asked in OnData of the peer's first byte) gnet's next read takes only
// ShortReadBytes of the 64 KiB the peer sent meanwhile, and a ReadInto
// asked from that OnData takes the rest straight from the socket in the
// same readiness event; the loop's read buffer has its full length again
// once that OnTraffic began.
func TestShortenNextRead(t *testing.T) {
	const total = 64 << 10
	rest := make([]byte, total)
	inX, delivered := make(chan struct{}), make(chan struct{})
	shortened, asked := make(chan bool, 1), make(chan bool, 1)
	data, got, bufLen := make(chan int, 64), make(chan int, 64), make(chan int, 1)
	h := &intoHandler{into: func(c *Conn, n int) { got <- n }}
	first := true
	h.data = func(c *Conn, b []byte) int {
		if string(b) == "x" {
			c.SetInterleaved(true)
			shortened <- c.ShortenNextRead(ShortReadBytes)
			close(inX)
			<-delivered
			return len(b)
		}
		data <- len(b)
		if first {
			first = false
			bufLen <- len(*c.loop.readBuf)
			asked <- c.ReadInto(rest[:total-len(b)], nil)
		}
		return len(b)
	}
	r := startReactor(t, Config{Loops: 1}, h)
	sendWhileHeld(t, r, inX, string(make([]byte, total)))
	close(delivered)
	require.True(t, recv(t, shortened), "ShortenNextRead")
	require.Equal(t, ShortReadBytes, recv(t, data), "gnet's read after ShortenNextRead")
	require.Equal(t, DefaultReadBufferCap, recv(t, bufLen), "the loop's read buffer once OnTraffic began")
	require.True(t, recv(t, asked))
	require.Equal(t, total-ShortReadBytes, recv(t, got), "the direct read of the rest")
	require.EqualValues(t, total-ShortReadBytes, r.Stats().DirectBytes)
	require.Empty(t, data, "no byte of the direct read reached OnData")
}
