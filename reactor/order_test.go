package reactor

import (
	"bufio"
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSendOrdering submits a 200k-item backlog from several goroutines; each
// goroutine's items carry a sequence number and every tenth item is written
// by an Execute function instead of Send. The peer checks per-goroutine
// order and completeness.
func TestSendOrdering(t *testing.T) {
	const (
		senders = 4
		perG    = 50_000
		rec     = 8 // gid uint32, seq uint32
	)
	p := newPeer(t)
	r := startReactor(t, Config{Loops: 2, MaxQueued: 64 << 10}, &testHandler{})
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t)

	// Keep the loop busy briefly so a backlog builds up in the queue.
	block := make(chan struct{})
	require.NoError(t, c.Execute(func() { <-block }))

	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := dialCtx(t)
			for seq := range perG {
				b := make([]byte, rec)
				binary.BigEndian.PutUint32(b, uint32(g))
				binary.BigEndian.PutUint32(b[4:], uint32(seq))
				var err error
				if seq%10 == 0 {
					err = c.Execute(func() {
						if err := c.Write(b); err != nil {
							errs <- err
						}
					})
				} else {
					err = c.Send(ctx, b)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Release the loop once the backlog is real: a Send waits for room.
	require.Eventually(t, func() bool { return r.Stats().SendWaits > 0 }, waitLong, time.Millisecond)
	close(block)

	br := bufio.NewReaderSize(nc, 64<<10)
	next := make([]uint32, senders)
	var b [rec]byte
	for i := range senders * perG {
		// A deadline on progress, not on the whole transfer: a loaded
		// machine under -race may take long, but never stalls.
		if i%4096 == 0 {
			require.NoError(t, nc.SetReadDeadline(time.Now().Add(waitLong)))
		}
		_, err := io.ReadFull(br, b[:])
		require.NoError(t, err)
		g := binary.BigEndian.Uint32(b[:])
		seq := binary.BigEndian.Uint32(b[4:])
		require.Less(t, g, uint32(senders))
		require.Equal(t, next[g], seq, "sender %d out of order", g)
		next[g]++
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	for g := range senders {
		require.Equal(t, uint32(perG), next[g])
	}
}
