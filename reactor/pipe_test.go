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
// kernel doubles what it is given, for its bookkeeping), and that zero
// restores the Config's value.
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
	rcvbuf := func() int {
		var n int
		onLoop(t, c, func() {
			n, err = unix.GetsockoptInt(c.fdOnLoop(), unix.SOL_SOCKET, unix.SO_RCVBUF)
		})
		require.NoError(t, err)
		return n
	}
	require.Equal(t, want(256<<10), rcvbuf(), "the Config's buffer")
	onLoop(t, c, func() { c.SetLoopbackRecvBuffer(4 << 20) })
	require.Equal(t, want(4<<20), rcvbuf(), "lengthened while open")
	onLoop(t, c, func() { c.SetLoopbackRecvBuffer(0) })
	require.Equal(t, want(256<<10), rcvbuf(), "the Config's buffer again")
}
