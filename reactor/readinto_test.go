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
	c, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	recv(t, inX) // the loop holds in OnData
	_, err = c.Write([]byte("abcdefghijklmno"))
	require.NoError(t, err)
	rc, err := c.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	for q := -1; q != 0; runtime.Gosched() { // until the bytes sit in the server's socket
		require.NoError(t, rc.Control(func(fd uintptr) { q, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }))
		require.NoError(t, err)
	}
	close(delivered)
	require.True(t, recv(t, asked))
	require.Equal(t, 15, recv(t, got))
	require.Equal(t, "abc", string(bufs[0]))
	require.Equal(t, "defgh", string(bufs[2]))
	require.Equal(t, "ijklmno", string(bufs[3]))
}
