package ipc

import (
	"testing"
	"unsafe"

	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// TestBorrowWire checks the writer's borrowed packets without sockets: with
// borrowing on (fillBorrow, as the pump calls it), a large message's wire
// bytes (each packet, then its borrowed tail) equal those the copying
// writer produces, the default reader decodes them, the borrowed bytes
// are the message's own []byte memory, whole 64 KiB packet bodies only,
// and the message completes only after its last packet was filled.
// Compression, relay-bound messages and 4 KiB packets never borrow.
func TestBorrowWire(t *testing.T) {
	const size = 200 << 10
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		credit  bool
		borrows bool
	}{
		{"default", nil, false, true},
		{"compression", func(c *Config) { c.Compression = compress.Snappy{} }, false, false},
		{"relay_bound", nil, true, false},
		{"buffer_set", func(c *Config) { c.BufferSize = 4 << 10 }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, tc.mod)
			wire := func(borrow bool) (out []byte, borrowed int) {
				w := newWriter(cfg)
				w.peerHello()
				m := testmsg.New(7, size)
				require.True(t, w.enqueue(&msgStub{msg: m, ti: testTI, state: OnPeer, credit: tc.credit}))
				buf := make([]byte, largePacketSize)
				for calls := 0; w.wq.len() > 0; calls++ {
					require.Less(t, calls, 1<<12)
					require.Empty(t, w.done, "completed before its last packet")
					n, ref, err := w.fillBorrow(buf[:w.packetSize()], borrow)
					require.NoError(t, err)
					require.NotZero(t, n)
					out = append(out, buf[:n]...)
					if ref != nil {
						require.Equal(t, w.packetSize()-n, len(ref), "a whole packet body")
						require.True(t, within(ref, m.Str), "not the message's memory")
						out = append(out, ref...)
						borrowed += len(ref)
					}
					w.credits++ // the relay returns every credit
				}
				require.Len(t, w.done, 1)
				return out, borrowed
			}
			copied, none := wire(false)
			require.Zero(t, none)
			got, borrowed := wire(true)
			require.Equal(t, copied, got, "same wire bytes")
			if tc.borrows {
				require.Greater(t, borrowed, size/2)
			} else {
				require.Zero(t, borrowed)
			}
			ev := &pipeEvents{t: t}
			used, err := newReader(cfg, ev).feed(got)
			require.NoError(t, err)
			require.Equal(t, len(got), used)
			require.Equal(t, []*testmsg.Message{testmsg.New(7, size)}, ev.msgs)
		})
	}
}

// within reports whether b lies inside s's memory.
func within(b, s []byte) bool {
	p, a := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return len(b) > 0 && p >= a && p+uintptr(len(b)) <= a+uintptr(len(s))
}

// BenchmarkWriterLargeValue measures the writer alone (no socket) turning a
// 64 MiB []byte field into 64 KiB packets: copy is fill, as before
// borrow.go, borrow is the pump's fillBorrow, which leaves the value's
// bytes where they are. It reports the writer's CPU time per GB.
func BenchmarkWriterLargeValue(b *testing.B) {
	const size = 64 << 20
	for _, borrow := range []bool{false, true} {
		name := map[bool]string{false: "copy", true: "borrow"}[borrow]
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b, nil)
			w := newWriter(cfg)
			w.peerHello()
			m := testmsg.New(1, size)
			buf := make([]byte, largePacketSize)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if !w.enqueue(&msgStub{msg: m, ti: testTI, state: OnPeer}) {
					b.Fatal("writer full")
				}
				for w.wq.len() > 0 {
					if _, _, err := w.fillBorrow(buf[:w.packetSize()], borrow); err != nil {
						b.Fatal(err)
					}
					for i := range w.slots {
						if s := &w.slots[i]; s.phase == slotBody && s.windowed {
							s.credit = 1 << 40 // no peer: grant everything
						}
					}
				}
				if len(w.done) != 1 {
					b.Fatalf("%d messages done, want 1", len(w.done))
				}
				w.done = w.done[:0]
			}
		})
	}
}
