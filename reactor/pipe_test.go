package reactor

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestSetLoopbackRecvBuffer checks that a loopback connection starts with
// Config.LoopbackRecvBuffer and that SetLoopbackRecvBuffer lengthens it
// while the connection is open, as far as net.core.rmem_max allows (the
// kernel doubles what it is given, for its bookkeeping), and the largest
// window the connection advertises with it (TCP_WINDOW_CLAMP: the kernel
// keeps the clamp of the first buffer otherwise, recvwindow.go), and that
// zero restores the Config's value.
func TestSetLoopbackRecvBuffer(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	require.NoError(t, err)
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	want := func(n int) int { return 2 * min(n, rmemMax) }

	p := newPeer(t)
	r := startReactor(t, Config{Loops: 1, LoopbackRecvBuffer: 256 << 10}, &testHandler{})
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	p.accept(t)
	sockopt := func(level, opt int) int {
		var n int
		onLoop(t, c, func() { n, err = unix.GetsockoptInt(c.fdOnLoop(), level, opt) })
		require.NoError(t, err)
		return n
	}
	rcvbuf := func() int { return sockopt(unix.SOL_SOCKET, unix.SO_RCVBUF) }
	clamp := func() int { return sockopt(unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP) }
	require.Equal(t, want(256<<10), rcvbuf(), "the Config's buffer")
	require.LessOrEqual(t, clamp(), want(256<<10), "the window within the Config's buffer")
	onLoop(t, c, func() { c.SetLoopbackRecvBuffer(4 << 20) })
	require.Equal(t, want(4<<20), rcvbuf(), "lengthened while open")
	require.Equal(t, want(4<<20), clamp(), "the window clamp follows the longer buffer")
	onLoop(t, c, func() { c.SetLoopbackRecvBuffer(0) })
	require.Equal(t, want(256<<10), rcvbuf(), "the Config's buffer again")
	require.Equal(t, want(256<<10), clamp(), "the window clamp follows it back")
}

// TestLoopbackCongestion checks that loopback connections, dialed and
// accepted, open with Config.LoopbackCongestion as their congestion
// control, switch to the kernel's default with SetLoopbackCongestion(false)
// and back with true, and that an empty Config.LoopbackCongestion leaves
// the default throughout.
func TestLoopbackCongestion(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	require.NoError(t, err)
	def := strings.TrimSpace(string(b))
	for _, set := range []string{"reno", ""} {
		t.Run("set="+set, func(t *testing.T) {
			accepted := make(chan *Conn, 1)
			h := &testHandler{open: func(c *Conn) {
				if !c.Dialed() {
					accepted <- c
				}
			}}
			r := startReactor(t, Config{Loops: 1, LoopbackCongestion: set}, h)
			c, err := r.Dial(dialCtx(t), r.Addr().String(), nil)
			require.NoError(t, err)
			acc := recv(t, accepted)
			for _, x := range []*Conn{c, acc} {
				cc := func() string {
					var got string
					onLoop(t, x, func() {
						got, err = unix.GetsockoptString(x.fdOnLoop(), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
					})
					require.NoError(t, err)
					return strings.TrimRight(got, "\x00")
				}
				on := set
				if on == "" {
					on = def
				}
				require.Equal(t, on, cc(), "opened, dialed %v", x.Dialed())
				onLoop(t, x, func() { x.SetLoopbackCongestion(false) })
				require.Equal(t, def, cc(), "switched off, dialed %v", x.Dialed())
				onLoop(t, x, func() { x.SetLoopbackCongestion(true) })
				require.Equal(t, on, cc(), "switched back on, dialed %v", x.Dialed())
			}
		})
	}
}
