package ipc

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// intoMsg is a plain message with one []byte field (not Recyclable) and
// a field after it, so that a value's last chunk holds more than the
// value.
type intoMsg struct {
	Seq  uint32
	Data []byte
	Tail uint32 // Seq*3
}

func (m *intoMsg) Serde(v *serde.Visitor) {
	v.Uint32(&m.Seq)
	v.Bytes(&m.Data)
	v.Uint32(&m.Tail)
}

// newIntoMsg returns message seq with n bytes of its pattern.
func newIntoMsg(seq uint32, n int) *intoMsg {
	return &intoMsg{Seq: seq, Data: segPayload(n, byte(seq)), Tail: seq * 3}
}

// intoServer is a plain-TCP service receiving intoMsg: each message's
// arrival (checked against its pattern) and each connection's end.
type intoServer struct {
	svc *Service
	mu  sync.Mutex
	got map[uint32]int // deliveries per Seq
	bad []uint32       // Seqs whose bytes differed
	in  chan uint32
	end chan error // each connection's ConnectionStop error
}

func startIntoServer(t *testing.T, size func(seq uint32) int) *intoServer {
	t.Helper()
	return startIntoServerWith(t, size, nil)
}

// startIntoServerWith is startIntoServer with more registrations (more, if
// not nil, runs on the server's protocol before the service starts).
func startIntoServerWith(t *testing.T, size func(seq uint32) int, more func(p *Protocol)) *intoServer {
	t.Helper()
	s := &intoServer{got: map[uint32]int{}, in: make(chan uint32, 64), end: make(chan error, 16)}
	p := NewProtocol()
	require.NoError(t, Register(p, 1, func(_ Context, m *intoMsg) {
		s.mu.Lock()
		s.got[m.Seq]++
		if !bytes.Equal(m.Data, segPayload(size(m.Seq), byte(m.Seq))) || m.Tail != m.Seq*3 {
			s.bad = append(s.bad, m.Seq)
		}
		s.mu.Unlock()
		s.in <- m.Seq
	}))
	if more != nil {
		more(p)
	}
	s.svc = lcStart(t, Config{
		Protocol:       p,
		Listen:         "127.0.0.1:0",
		Limits:         serde.Limits{MaxString: 256 << 20},
		ConnectionStop: func(_ ConnInfo, err error) { s.end <- err },
	})
	return s
}

// TestReadIntoLargeValues sends 64 MiB plain values over a real plain-TCP
// connection: the first grows in segments (nothing proven yet), the next
// ones arrive in arrays the receive budget lends, read straight from the
// socket; every value arrives intact, exactly once. A value canceled by
// its sender while it streams is dropped by the receiver, and the values
// after it arrive intact on the same connection.
func TestReadIntoLargeValues(t *testing.T) {
	const size = 64 << 20
	reads := watchReadInto(t)
	srv := startIntoServer(t, func(uint32) int { return size })
	cp := NewProtocol()
	require.NoError(t, Register[intoMsg](cp, 1, nil))
	client := lcStart(t, Config{Protocol: cp, Limits: serde.Limits{MaxString: 256 << 20}})
	addr := srv.svc.Addr().String()

	send := func(ctx context.Context, seq uint32) chan error {
		done := make(chan error, 1)
		_, err := client.SendContext(ctx, addr, newIntoMsg(seq, size), 0, func(err error) { done <- err })
		require.NoError(t, err)
		return done
	}
	for seq := uint32(1); seq <= 3; seq++ {
		require.NoError(t, <-send(context.Background(), seq))
		require.Equal(t, seq, lcRecv(t, srv.in, "a message"))
	}
	require.Greater(t, reads.bytes.Load(), uint64(0), "no byte was read straight into a value")
	t.Logf("%d bytes read straight into the three values (%d bytes)", reads.bytes.Load(), 3*size)
	require.Equal(t, reads.bytes.Load(), srv.svc.r.Stats().DirectBytes, "the reactor's count")

	// Cancel one mid-value: the receiver must drop it; the next value
	// (once the proof is earned again) arrives intact. The server's loop
	// holds still once an eighth of the value is in, until the cancel has
	// completed the send: otherwise a sender descheduled between seeing
	// that eighth and canceling finds the value already sent (the loop
	// reads the other 56 MiB meanwhile), and the cancel comes too late.
	ctx, cancel := context.WithCancel(context.Background())
	resume := reads.pauseBeyond(reads.bytes.Load() + size/8)
	t.Cleanup(resume) // before the services' Stop, should the test fail here
	done := send(ctx, 4)
	reads.waitPaused(t)
	cancel()
	require.ErrorIs(t, lcRecv(t, done, "the canceled send's completion"), ErrCanceled)
	resume()
	for seq := uint32(5); seq <= 6; seq++ {
		require.NoError(t, <-send(context.Background(), seq))
		require.Equal(t, seq, lcRecv(t, srv.in, "a message"))
	}

	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Empty(t, srv.bad, "values that arrived damaged")
	for seq := uint32(1); seq <= 6; seq++ {
		want := 1
		if seq == 4 {
			want = 0
		}
		require.Equal(t, want, srv.got[seq], "deliveries of message %d", seq)
	}
}

// intoReads counts the bytes read straight into values (all services of
// the test) and notifies each read; set by watchReadInto. It can also
// hold the reading loop still (pauseBeyond).
type intoReads struct {
	bytes  atomic.Uint64
	notify chan struct{}

	// pauseAt, when not zero, is the count beyond which the next read
	// blocks its loop on resume (after closing paused); the loop clears it.
	pauseAt atomic.Uint64
	paused  chan struct{} // closed by the loop when it blocks; set by pauseBeyond
	resume  chan struct{} // closed by the test; set by pauseBeyond
}

// watchReadInto installs testHookReadInto for the test.
func watchReadInto(t *testing.T) *intoReads {
	w := &intoReads{notify: make(chan struct{}, 1)}
	testHookReadInto = func(n int) {
		total := w.bytes.Add(uint64(n))
		select {
		case w.notify <- struct{}{}:
		default:
		}
		if at := w.pauseAt.Load(); at != 0 && total > at && w.pauseAt.CompareAndSwap(at, 0) {
			close(w.paused)
			<-w.resume
		}
	}
	t.Cleanup(func() { testHookReadInto = nil })
	return w
}

// pauseBeyond makes the first read that takes the count beyond n block its
// loop until the returned resume is called (once; also at the test's end,
// by the caller). A test uses it to act while a value is half read, without
// racing the loop that reads the rest.
func (w *intoReads) pauseBeyond(n uint64) (resume func()) {
	w.paused, w.resume = make(chan struct{}), make(chan struct{})
	w.pauseAt.Store(n)
	return sync.OnceFunc(func() { close(w.resume) })
}

// waitPaused waits until a read blocked its loop (pauseBeyond).
func (w *intoReads) waitPaused(t *testing.T) {
	t.Helper()
	select {
	case <-w.paused:
	case <-time.After(time.Minute):
		t.Fatalf("no read went beyond the pause point; %d bytes read into values", w.bytes.Load())
	}
}

// waitBeyond waits until more than n bytes were read into values.
func (w *intoReads) waitBeyond(t *testing.T, n uint64) {
	t.Helper()
	timeout := time.After(time.Minute)
	for w.bytes.Load() <= n {
		select {
		case <-w.notify:
		case <-timeout:
			t.Fatalf("only %d bytes read into values, waiting for more than %d", w.bytes.Load(), n)
		}
	}
}

// intoWire returns the wire bytes of the given messages as an ipcframe
// writer sends them (64 KiB packets), without a hello.
func intoWire(t *testing.T, msgs ...*intoMsg) []byte {
	t.Helper()
	p := NewProtocol()
	require.NoError(t, Register(p, 1, func(Context, *intoMsg) {}))
	cfg, err := Config{Protocol: p, Limits: serde.Limits{MaxString: 256 << 20}}.withDefaults()
	require.NoError(t, err)
	e := newWireEnd(t, &cfg)
	for _, m := range msgs {
		e.send(m, 0)
	}
	return e.output(packetHeaderSize + maxPacketPayload)
}

// TestReadIntoLyingPeer: a raw peer proves a value size (one 1 MiB value
// delivered), then lies about the next: it declares 1 MiB and sends less,
// then closes; or sends less and then a garbage packet header; or sends
// part and cancels the message. Each time the connection closes with an
// errors.Is-able error (the cancel: it stays open and the next value
// arrives intact), the partial value is never delivered, and the server
// keeps serving.
func TestReadIntoLyingPeer(t *testing.T) {
	const size = 1 << 20
	reads := watchReadInto(t)
	batch := map[uint32]int{10: size, 11: 1000, 12: size - 7, 13: size/2 + 3, 14: size}
	srv := startIntoServer(t, func(seq uint32) int {
		if n, ok := batch[seq]; ok {
			return n
		}
		return size
	})
	addr := srv.svc.Addr().String()
	proof := intoWire(t, newIntoMsg(1, size))
	lie := intoWire(t, newIntoMsg(2, size))
	half := len(lie)/2 + 1000 // inside a packet's data

	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = c.Write(proof)
		require.NoError(t, err)
		require.Equal(t, uint32(1), lcRecv(t, srv.in, "a message"))
		return c
	}
	writeAwaitDirect := func(c net.Conn, b []byte) {
		before := reads.bytes.Load()
		_, err := c.Write(b)
		require.NoError(t, err)
		reads.waitBeyond(t, before)
	}

	t.Run("back to back", func(t *testing.T) {
		// Values of several sizes in one write: the reads guess full
		// packets of a value where the wire has a value's end, a small
		// message and the next message's header. Whether any read goes
		// straight into a value depends on where gnet's reads cut the
		// interleaved packets (about 1 run in 80 under -race had none
		// on main), so the test waits for the messages, not for a
		// direct read.
		c := dial()
		var msgs []*intoMsg
		for seq := uint32(10); seq <= 14; seq++ {
			msgs = append(msgs, newIntoMsg(seq, batch[seq]))
		}
		before := reads.bytes.Load()
		_, err := c.Write(intoWire(t, msgs...))
		require.NoError(t, err)
		got := map[uint32]bool{}
		for range batch {
			got[lcRecv(t, srv.in, "a message")] = true // the writer interleaves them
		}
		require.Len(t, got, len(batch))
		t.Logf("%d bytes read straight into values", reads.bytes.Load()-before)
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		require.ErrorIs(t, lcRecv(t, srv.end, "a connection's end"), io.EOF)
	})
	t.Run("short then close", func(t *testing.T) {
		c := dial()
		writeAwaitDirect(c, lie[:half])
		require.NoError(t, c.(*net.TCPConn).CloseWrite()) // FIN, not a reset for the unread hello
		err := lcRecv(t, srv.end, "a connection's end")
		require.ErrorIs(t, err, io.EOF)
	})
	t.Run("short then garbage", func(t *testing.T) {
		c := dial()
		// The rest of the cut packet, then a packet header of an
		// unknown type where the next packet should start.
		cut := intoPacketEnd(t, lie, half)
		writeAwaitDirect(c, lie[:half])
		bad := append(bytes.Clone(lie[half:cut]), 0x7f, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7)
		_, err := c.Write(bad)
		require.NoError(t, err)
		err = lcRecv(t, srv.end, "a connection's end")
		require.ErrorIs(t, err, ErrBadPacketHeader)
	})
	t.Run("short then cancel", func(t *testing.T) {
		c := dial()
		cut := intoPacketEnd(t, lie, half)
		writeAwaitDirect(c, lie[:half])
		_, err := c.Write(lie[half:cut])
		require.NoError(t, err)
		// CancelMessage for the lie's slot (0), then a whole value.
		cancelPkt := []byte{packetTypeData, 0, 0, 0}
		cancelPkt = appendCancelMessage(cancelPkt, 0)
		putPacketHeader(cancelPkt, packetHeader{typ: packetTypeData, size: len(cancelPkt) - packetHeaderSize})
		next := intoWire(t, newIntoMsg(3, size))
		_, err = c.Write(append(cancelPkt, next...))
		require.NoError(t, err)
		require.Equal(t, uint32(3), lcRecv(t, srv.in, "a message"))
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		require.ErrorIs(t, lcRecv(t, srv.end, "a connection's end"), io.EOF)
	})

	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Empty(t, srv.bad)
	require.Zero(t, srv.got[2], "a value its peer lied about was delivered")
	require.Equal(t, 4, srv.got[1])
	require.Equal(t, 1, srv.got[3])
	for seq := range batch {
		require.Equal(t, 1, srv.got[seq], "deliveries of message %d", seq)
	}
}

// intoPacketEnd returns the offset where the packet holding byte off of
// the wire bytes b ends.
func intoPacketEnd(t *testing.T, b []byte, off int) int {
	t.Helper()
	for at := 0; at < len(b); {
		h, err := parsePacketHeader(b[at:], maxPacketPayload)
		require.NoError(t, err)
		at += packetHeaderSize + h.size
		if at > off {
			return at
		}
	}
	t.Fatalf("offset %d past the %d bytes", off, len(b))
	return 0
}
