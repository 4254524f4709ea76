package ipc

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// largeEvents checks each received allocMsg against the payload sent and
// records the array its Data was decoded into, then releases the message
// (as onMessage does after a handler).
type largeEvents struct {
	allocEvents
	want  []byte
	array *byte
	err   error
}

func (e *largeEvents) onMessage(_ *msgHeader, m Message) {
	e.got++
	d := m.(*allocMsg).Data
	if !bytes.Equal(d, e.want) && e.err == nil {
		e.err = fmt.Errorf("message %d: %d bytes received, %d sent, or bytes differ", e.got, len(d), len(e.want))
	}
	e.array = unsafe.SliceData(d)
	releaseMsg(m)
}

// TestRecycledLargeValueReusesArray sends large []byte values of changing
// sizes in a Recyclable message through the writer and the reader: a value
// no longer than the recycled message's array is decoded into that array
// (no allocation, no fresh memory), a longer one gets a new array, and the
// bytes arrive intact across every size, also when the array is longer than
// the value (its stale tail must not show).
func TestRecycledLargeValueReusesArray(t *testing.T) {
	// Two services: the sender's messages go back to its own pool.
	sp, rp := NewProtocol(), NewProtocol()
	require.NoError(t, Register[allocMsg](sp, 1, nil))
	require.NoError(t, Register[allocMsg](rp, 1, nil))
	scfg, rcfg := Config{Protocol: sp}, Config{Protocol: rp}
	sc, err := scfg.withDefaults()
	require.NoError(t, err)
	rc, err := rcfg.withDefaults()
	require.NoError(t, err)
	w := newWriter(&sc)
	ev := &largeEvents{}
	r := newReader(&rc, ev)
	ti := sp.byID[1]
	buf := make([]byte, sc.BufferSize)
	m := &allocMsg{} // the sender's message, sent again and again
	send := func(payload []byte) {
		ev.want = payload
		m.Data = payload
		sendThrough(t, w, r, m, ti, buf)
	}
	const big = 1 << 20
	payload := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i>>9) ^ byte(i) ^ seed
		}
		return b
	}

	send(payload(big, 1))
	require.NoError(t, ev.err)
	first := ev.array
	for i, n := range []int{big, big/2 + 5, 40 << 10, big - 1, big} {
		send(payload(n, byte(i+2)))
		require.NoError(t, ev.err)
		require.Same(t, first, ev.array, "value %d (%d bytes) not decoded into the recycled %d-byte array", i, n, big)
	}

	same := payload(big, 9)
	allocs := testing.AllocsPerRun(50, func() { send(same) }) // many runs: under -race sync.Pool drops some stubs
	require.NoError(t, ev.err)
	require.Same(t, first, ev.array)
	require.Zero(t, allocs, "allocations per recycled %d-byte message", big)

	send(payload(big+1, 10)) // longer than the array: a new one
	require.NoError(t, ev.err)
	require.NotSame(t, first, ev.array)
	grown := ev.array
	send(payload(big/3, 11))
	require.NoError(t, ev.err)
	require.Same(t, grown, ev.array, "a shorter value after the growth reuses the grown array")
}
