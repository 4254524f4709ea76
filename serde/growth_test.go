package serde_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// TestDecodeLargeValueLinear decodes a 64 MiB []byte and string fed in
// 64 KiB pieces, as the reader hands packets over: the value must be
// decoded with at most about 1.5x its size allocated in all (segments
// doubling up to half the declared size, then one array of the declared
// size), not the 4-5x of append's 1.25x steps, and end with exactly its own
// size as capacity.
func TestDecodeLargeValueLinear(t *testing.T) {
	const n = 64 << 20
	lim := serde.Limits{MaxString: 1 << 30}
	payload := bytes.Repeat([]byte("0123456789abcdef"), n/16)
	for _, tc := range []struct {
		name string
		msg  serde.Type
		out  func(serde.Type) []byte
	}{
		{"bytes", &bytesMsg{B: payload}, func(m serde.Type) []byte { return m.(*bytesMsg).B }},
		{"string", &strMsg{S: string(payload)}, func(m serde.Type) []byte { return []byte(m.(*strMsg).S) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wire := encodeAll(t, serde.NewEncoder(nil, lim), tc.msg, 64<<10)
			var got serde.Type
			if tc.name == "bytes" {
				got = &bytesMsg{}
			} else {
				got = &strMsg{}
			}
			d := serde.NewDecoder(nil, lim)
			used := allocDuring(func() {
				d.Reset(got)
				for off := 0; off < len(wire); off += 64 << 10 {
					_, done, err := d.Decode(wire[off:min(off+64<<10, len(wire))])
					require.NoError(t, err)
					if done {
						break
					}
				}
			})
			require.True(t, bytes.Equal(payload, tc.out(got)))
			require.LessOrEqual(t, used, uint64(n+n/2+n/16), "allocated %d bytes for a %d-byte value", used, n)
			if b, ok := got.(*bytesMsg); ok {
				require.Equal(t, n, cap(b.B))
			}
		})
	}
}

// TestDecodeDeclaredSizeNotTrusted declares a 1 GiB string and []byte
// (within MaxString) and sends only 256 KiB of it: the decoder must have
// allocated in proportion to what arrived, not to the declaration.
func TestDecodeDeclaredSizeNotTrusted(t *testing.T) {
	lim := serde.Limits{MaxString: 2 << 30}
	wire := serde.AppendCross(nil, 1<<30)
	wire = append(wire, make([]byte, 256<<10)...)
	for _, root := range []serde.Type{&bytesMsg{}, &strMsg{}} {
		d := serde.NewDecoder(nil, lim)
		used := allocDuring(func() {
			d.Reset(root)
			for off := 0; off < len(wire); off += 4 << 10 {
				_, done, err := d.Decode(wire[off:min(off+4<<10, len(wire))])
				require.NoError(t, err)
				require.False(t, done)
			}
		})
		require.LessOrEqual(t, used, uint64(2*(256<<10)+(64<<10)), "%T allocated %d bytes for 256 KiB received", root, used)
	}
}

// TestDecodeSegmentsIntact decodes []byte and string values around the
// segment boundaries (32 KiB first array, doubling, then one array of the
// declared size) fed in pieces of many sizes, into a []byte that starts
// empty, short of the value, or already long enough (a recycled message):
// every byte must arrive in order and a grown []byte must end with a
// capacity of exactly its size.
func TestDecodeSegmentsIntact(t *testing.T) {
	lim := serde.Limits{MaxString: 1 << 30}
	for _, n := range []int{1, 32<<10 - 1, 32<<10 + 1, 100_000, 1<<20 + 3} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i*7 + i>>11)
		}
		wireB := encodeAll(t, serde.NewEncoder(nil, lim), &bytesMsg{B: payload}, 64<<10)
		wireS := encodeAll(t, serde.NewEncoder(nil, lim), &strMsg{S: string(payload)}, 64<<10)
		for _, piece := range []int{1, 13, 4093, 64 << 10, n + 8} {
			if piece < 100 && n > 100_000 {
				continue // slow under -race; the smaller values cover the same splits
			}
			for _, start := range []int{0, 5000, 40_000, n} {
				t.Run(fmt.Sprintf("n=%d/piece=%d/cap=%d", n, piece, start), func(t *testing.T) {
					d := serde.NewDecoder(nil, lim)
					b := &bytesMsg{B: make([]byte, 0, start)}
					decodePieces(t, d, b, wireB, piece)
					require.True(t, bytes.Equal(payload, b.B), "[]byte differs")
					if start < n {
						require.Equal(t, n, cap(b.B))
					}
					s := &strMsg{}
					decodePieces(t, d, s, wireS, piece)
					require.Equal(t, string(payload), s.S, "string differs")
				})
			}
		}
	}
}

// decodePieces decodes data fed piece bytes at a time and requires the
// value to end exactly at its end (decodeSplit without a require per call,
// which dominates under -race for single-byte pieces).
func decodePieces(t *testing.T, d *serde.Decoder, root serde.Type, data []byte, piece int) {
	t.Helper()
	d.Reset(root)
	for off := 0; off < len(data); off += piece {
		k := min(piece, len(data)-off)
		n, done, err := d.Decode(data[off : off+k])
		if err != nil || n != k || done != (off+k == len(data)) {
			t.Fatalf("at %d of %d: Decode of %d bytes = %d, %v, %v", off, len(data), k, n, done, err)
		}
	}
}

// BenchmarkDecode64MiB decodes a 64 MiB []byte and string field fed in
// 4 KiB pieces (the default packet size) into a new value each time, as a
// plain message without ipc.Recyclable is decoded; MB/s is the payload rate.
// The segpool cases keep the segments between values (SetSegmentPool), as
// an ipc loop does.
func BenchmarkDecode64MiB(b *testing.B) {
	const n, piece = 64 << 20, 4 << 10
	lim := serde.Limits{MaxString: 1 << 30}
	payload := make([]byte, n)
	for _, tc := range []struct {
		name string
		msg  serde.Type
		root func() serde.Type
		pool bool
	}{
		{"bytes", &bytesMsg{B: payload}, func() serde.Type { return &bytesMsg{} }, false},
		{"string", &strMsg{S: string(payload)}, func() serde.Type { return &strMsg{} }, false},
		{"bytes/segpool", &bytesMsg{B: payload}, func() serde.Type { return &bytesMsg{} }, true},
		{"string/segpool", &strMsg{S: string(payload)}, func() serde.Type { return &strMsg{} }, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			wire := encodeAll(b, serde.NewEncoder(nil, lim), tc.msg, 64<<10)
			d := serde.NewDecoder(nil, lim)
			if tc.pool {
				d.SetSegmentPool(&freeList{bySize: map[int][][]byte{}})
			}
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				d.Reset(tc.root())
				for off := 0; off < len(wire); off += piece {
					if _, _, err := d.Decode(wire[off:min(off+piece, len(wire))]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
