package ipc

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// TestReadIntoBesideSmall sends plain 8 MiB values while a second
// goroutine sends 1 KiB messages (segMsg) on the same connection, one at a time
// (the next once the last arrived: one caller, oneCaller), for as long as the values stream: the receiving connection is
// interleaved (small messages beside a large one). Every message arrives
// intact, and at least half of the later values' bytes are read straight
// from the socket into their arrays (gnet's read before each value packet
// is short, reactor.Conn.ShortenNextRead, the packet opens and its rest is
// read directly). main read none of them directly beside small messages:
// the reactor refused direct reads on an interleaved connection.
func TestReadIntoBesideSmall(t *testing.T) {
	const size, values = 8 << 20, 6
	direct := readIntoBesideSmall(t, size, values, 1)
	require.GreaterOrEqual(t, direct, uint64((values-1)*size/2), "bytes read straight into values beside small messages")
}

// TestReadIntoBesideSeveral is TestReadIntoBesideSmall with eight small
// senders in flight together (callers beside a large message several to a
// read): there the values' bytes are gnet's, as on main (oneCaller); with
// the gate removed (direct16 D) 38.1-38.5 MB of the 41.9 were read
// directly.
func TestReadIntoBesideSeveral(t *testing.T) {
	const size, values = 8 << 20, 6
	direct := readIntoBesideSmall(t, size, values, 8)
	require.LessOrEqual(t, direct, uint64((values-1)*size/8), "bytes read straight into values beside several callers")
}

// readIntoBesideSmall sends values plain values of size bytes, the last
// values-1 beside senders goroutines sending 1 KiB messages; with one
// sender each waits for its message's arrival before the next (one
// caller at a time), with more they send without waiting. It returns the
// bytes read straight into the last values-1 values.
func readIntoBesideSmall(t *testing.T, size, values, senders int) uint64 {
	reads := watchReadInto(t)
	var smalls atomic.Int64
	smallIn := make(chan struct{}, 1)
	srv := startIntoServerWith(t, func(uint32) int { return size }, func(p *Protocol) {
		require.NoError(t, Register(p, 2, func(_ Context, m *segMsg) {
			if len(m.Data) == 1<<10 {
				smalls.Add(1)
			}
			select {
			case smallIn <- struct{}{}:
			default:
			}
		}))
	})
	cp := NewProtocol()
	require.NoError(t, Register[intoMsg](cp, 1, nil))
	require.NoError(t, Register[segMsg](cp, 2, nil))
	client := lcStart(t, Config{Protocol: cp, Limits: serde.Limits{MaxString: 256 << 20}})
	addr := srv.svc.Addr().String()

	send := func(m Message) error {
		done := make(chan error, 1)
		if _, err := client.SendContext(context.Background(), addr, m, 0, func(err error) { done <- err }); err != nil {
			return err
		}
		return <-done
	}
	// The first value proves the receive budget (its array grows in
	// segments); the small flow starts with the second.
	require.NoError(t, send(newIntoMsg(1, size)))
	require.Equal(t, uint32(1), lcRecv(t, srv.in, "a message"))
	before := reads.bytes.Load()

	stop := make(chan struct{})
	sent := make(chan int64, senders)
	smallErr := make(chan error, senders)
	for range senders {
		go func() {
			var n int64
			defer func() { sent <- n }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := send(&segMsg{Data: make([]byte, 1<<10)}); err != nil {
					smallErr <- err
					return
				}
				n++
				for senders == 1 && smalls.Load() < n { // one caller at a time (oneCaller)
					<-smallIn
				}
			}
		}()
	}
	for seq := uint32(2); seq <= uint32(values); seq++ {
		require.NoError(t, send(newIntoMsg(seq, size)))
		require.Equal(t, seq, lcRecv(t, srv.in, "a message"))
	}
	close(stop)
	var n int64
	for range senders {
		n += lcRecv(t, sent, "a small sender's end")
	}
	select {
	case err := <-smallErr:
		t.Fatalf("small message: %v", err)
	default:
	}
	require.Greater(t, n, int64(values), "small messages sent beside the values")
	for smalls.Load() < n { // a one-way send completes once written
		lcRecv(t, smallIn, "a small message")
	}
	require.Equal(t, n, smalls.Load(), "small messages received intact")

	direct := reads.bytes.Load() - before
	t.Logf("%d small messages from %d senders beside %d values; %d of their %d bytes read straight into them",
		n, senders, values-1, direct, (values-1)*size)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Empty(t, srv.bad, "values that arrived damaged")
	return direct
}
