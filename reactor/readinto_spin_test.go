package reactor

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReadIntoSpinFirst: a direct read asked for that met EAGAIN takes
// the connection's next input when the loop's spin finds it, before gnet
// reads it into its buffer. A bulk connection's handler asks, after the
// first 64 KiB came through OnData, for the next bytes straight into its
// buffer (and again after each direct read); the client then writes
// 16 KiB pieces, each once everything before it was consumed or seen
// queued by the spin (testHookGather). Every piece must arrive through
// OnReadInto, none through OnData: before, the request lapsed at the
// EAGAIN and the spin's gathered input went to gnet's read (a copy out of
// its buffer; ipc saw about 9 % of a 64 MiB value's bytes that way). The
// spin's clock is frozen, as in TestBulkSpinGathers: only readiness,
// gathering, tasks and the jump past its budget at the end (the input
// gathered so far, read straight into the buffer too) end a spin.
func TestReadIntoSpinFirst(t *testing.T) {
	clk := &spinClock{t: time.Unix(1000, 0)}
	spinNow = clk.now
	t.Cleanup(func() { spinNow = time.Now })
	queued := hookGather(t)

	const first, piece, pieces = 64 << 10, 16 << 10, 2 * spinGatherBytes / (16 << 10)
	dst := make([]byte, piece*pieces)
	var (
		mu       sync.Mutex
		viaData  int // bytes presented to OnData
		viaInto  int // bytes read straight into dst
		consumed int
	)
	got := make(chan struct{}, 1)
	signal := func() {
		select {
		case got <- struct{}{}:
		default:
		}
	}
	h := &intoHandler{}
	h.open = func(c *Conn) { c.SetBulk(true) }
	h.data = func(c *Conn, b []byte) int {
		mu.Lock()
		viaData += len(b)
		consumed += len(b)
		off := consumed - first
		mu.Unlock()
		if off >= 0 && off < len(dst) {
			c.ReadInto(dst[off:], nil)
		}
		signal()
		return len(b)
	}
	h.into = func(c *Conn, n int) {
		mu.Lock()
		viaInto += n
		consumed += n
		off := consumed - first
		mu.Unlock()
		if off < len(dst) {
			c.ReadInto(dst[off:], nil)
		}
		signal()
	}
	r := startReactor(t, Config{Loops: 1, BusyPoll: time.Hour, LoopbackRecvBuffer: 256 << 10}, h)
	nc, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })

	written := 0
	settled := func() { t.Helper(); waitSettled(t, &mu, &consumed, written, queued, got) }
	var sent []byte
	write := func(n int) {
		t.Helper()
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(written + i*7)
		}
		_, err := nc.Write(b)
		require.NoError(t, err)
		sent = append(sent, b...)
		written += n
		settled()
	}
	waitAll := func() { // until every written byte was consumed
		t.Helper()
		for {
			mu.Lock()
			done := consumed
			mu.Unlock()
			if done == written {
				return
			}
			recv(t, got)
		}
	}
	write(first)
	waitAll()
	for range pieces {
		write(piece)
	}
	// What the spin still gathers (less than spinGatherBytes) is read
	// when its budget runs out: the clock jumps past it.
	clk.set(0, 2*time.Hour)
	waitAll()
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, first, viaData, "bytes through gnet's buffer: the first write only")
	require.Equal(t, len(dst), viaInto, "bytes read straight into the handler's buffer")
	require.True(t, bytes.Equal(sent[first:], dst), "the direct reads' bytes in order")
	require.Positive(t, r.Stats().SpinDirectReads)
}
