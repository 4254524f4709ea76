package ipc

import (
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestReadIntoAhead: a feed that ends exactly at a packet's end, in the
// middle of a value with room, leaves no packet open; the connection then
// reads ahead (aheadRead) instead of leaving the next readiness to gnet's
// buffer. A raw peer proves a size, then sends a value's first packet
// alone; the server's loop holds still where it asks for the read ahead
// (testHookArmAhead) while the peer's next bytes reach its socket:
//
//   - "next packet": the value's second packet. The read ahead takes it
//     whole, headers and data, in one direct read (with whatever of the
//     rest it finds: it asks for up to four packets, readPlan).
//   - "keepalive first": a keepalive packet, then the rest. The read ahead
//     finds headers that open nothing; what it read (a keepalive and the
//     start of the second packet, in the value's space) is copied out and
//     fed the ordinary way.
//
// Either way the value arrives intact, once.
func TestReadIntoAhead(t *testing.T) {
	const size = 1 << 20
	var (
		mu    sync.Mutex
		armed bool  // hold at the next read ahead
		reads []int // direct reads since the hold
		holds int
	)
	held := make(chan int, 4) // the space a held read ahead names
	resume := make(chan struct{}, 4)
	testHookArmAhead = func(hdr, space int) {
		mu.Lock()
		hold := armed
		armed = false
		if hold {
			holds++
			reads = reads[:0]
		}
		mu.Unlock()
		if hold {
			held <- hdr + space
			<-resume
		}
	}
	testHookReadInto = func(n int) {
		mu.Lock()
		reads = append(reads, n)
		mu.Unlock()
	}
	t.Cleanup(func() { testHookArmAhead, testHookReadInto = nil, nil })
	srv := startIntoServer(t, func(uint32) int { return size })
	t.Cleanup(func() { close(resume) }) // before the services stop, should the test fail

	write := func(c net.Conn, b []byte) {
		t.Helper()
		_, err := c.Write(b)
		require.NoError(t, err)
		waitDelivered(t, c.(*net.TCPConn))
	}
	for _, tc := range []struct {
		name      string
		keepalive bool
		seq       uint32
	}{{"next packet", false, 2}, {"keepalive first", true, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialProven(t, srv, size)
			msg := intoWire(t, newIntoMsg(tc.seq, size))
			second := intoPacketEnd(t, msg, 0)
			third := intoPacketEnd(t, msg, second)
			mu.Lock()
			armed = true
			mu.Unlock()
			write(c, msg[:second])
			want := lcRecv(t, held, "the read ahead after the first packet")
			require.Equal(t, third-second, want, "headers and data of a packet as long as the first")
			next := msg[second:]
			if tc.keepalive {
				next = append([]byte{packetTypeKeepAlive, 0, 0, 0}, next...)
			}
			write(c, next[:third-second]) // the socket holds what the read ahead asks for
			resume <- struct{}{}
			_, err := c.Write(next[third-second:])
			require.NoError(t, err)
			require.Equal(t, tc.seq, lcRecv(t, srv.in, "the value"))
			mu.Lock()
			require.NotEmpty(t, reads)
			// At least the packet the socket held when the loop went on;
			// the read may take more of the rest, written meanwhile.
			require.GreaterOrEqual(t, reads[0], third-second, "the read ahead took the second packet whole")
			mu.Unlock()
		})
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Empty(t, srv.bad)
	require.Equal(t, map[uint32]int{1: 2, 2: 1, 3: 1}, srv.got)
}

// waitDelivered waits until the kernel has delivered (and the peer's
// kernel acknowledged) everything written to c: on loopback, until the
// bytes sit in the receiving socket.
func waitDelivered(t *testing.T, c *net.TCPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	for {
		var q int
		var qerr error
		require.NoError(t, rc.Control(func(fd uintptr) { q, qerr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }))
		require.NoError(t, qerr)
		if q == 0 {
			return
		}
		runtime.Gosched()
	}
}

// TestReadIntoPlanIrregular: a peer whose packets are not all as long as
// the last one (any sizes a SolidFrame peer may choose, keepalives between
// them) breaks every prediction of the direct reads (readPlan): a packet
// shorter or longer than predicted, headers that open nothing. A raw peer
// proves a size, then sends 1 MiB values cut into chunks of irregular
// sizes, in one write, three times with different cuts. Each value arrives
// intact, once, and most of its bytes were still read straight into it.
func TestReadIntoPlanIrregular(t *testing.T) {
	const size = 1 << 20
	reads := watchReadInto(t)
	srv := startIntoServer(t, func(uint32) int { return size })
	c := dialProven(t, srv, size)

	cuts := [][]int{
		{maxChunkData - 3, 1000, maxChunkData - 3, maxChunkData - 3, 30000}, // shorter than predicted
		{20000, maxChunkData - 3, maxChunkData - 3, 7, maxChunkData - 3},    // longer than predicted
		{maxChunkData - 3, 0, 40000, 1},                                     // 0: a keepalive
	}
	for i, cut := range cuts {
		seq := uint32(2 + i)
		before := reads.bytes.Load()
		_, err := c.Write(irregularWire(t, intoWire(t, newIntoMsg(seq, size)), cut))
		require.NoError(t, err)
		require.Equal(t, seq, lcRecv(t, srv.in, "a value"))
		require.Greater(t, reads.bytes.Load()-before, uint64(size/2), "bytes of value %d read straight into it", seq)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Empty(t, srv.bad)
	require.Equal(t, map[uint32]int{1: 1, 2: 1, 3: 1, 4: 1}, srv.got)
}

// dialProven connects a raw peer to srv and proves a value size: it sends
// message 1 with a value of size bytes and waits for its delivery.
func dialProven(t *testing.T, srv *intoServer, size int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.svc.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Write(intoWire(t, newIntoMsg(1, size)))
	require.NoError(t, err)
	require.Equal(t, uint32(1), lcRecv(t, srv.in, "the proof"))
	return c
}

// irregularWire re-cuts the wire bytes of one message in slot 0 (its first
// packet kept) into chunks of the sizes in cut, in turn (0: a keepalive
// packet instead).
func irregularWire(t *testing.T, wire []byte, cut []int) []byte {
	t.Helper()
	first := intoPacketEnd(t, wire, 0)
	out := append([]byte(nil), wire[:first]...)
	var data []byte
	for at := first; at < len(wire); {
		h, err := parsePacketHeader(wire[at:], maxPacketPayload)
		require.NoError(t, err)
		p := wire[at+packetHeaderSize : at+packetHeaderSize+h.size]
		require.Contains(t, []byte{cmdMessage, cmdEndMessage}, p[0])
		require.Equal(t, byte(0), p[1], "slot 0")
		require.Equal(t, 4+int(binary.LittleEndian.Uint16(p[2:])), len(p), "one chunk per packet")
		data = append(data, p[4:]...)
		at += packetHeaderSize + h.size
	}
	for i := 0; len(data) > 0; i++ {
		n := cut[i%len(cut)]
		if n == 0 {
			out = append(out, packetTypeKeepAlive, 0, 0, 0)
			continue
		}
		n = min(n, len(data))
		cmd := byte(cmdMessage)
		if n == len(data) {
			cmd = cmdEndMessage
		}
		at := len(out)
		out = append(out, 0, 0, 0, 0, cmd, 0, 0, 0)
		binary.LittleEndian.PutUint16(out[len(out)-2:], uint16(n))
		out = append(out, data[:n]...)
		putPacketHeader(out[at:], packetHeader{typ: packetTypeData, size: len(out) - at - packetHeaderSize})
		data = data[n:]
	}
	return out
}
