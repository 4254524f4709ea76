package serde_test

import (
	"bytes"
	"fmt"

	"github.com/ipcframe/ipcframe/serde"
)

// freeList is a SegmentPool: it keeps every segment given back, by size.
type freeList struct {
	bySize     map[int][][]byte
	hits, puts int
}

// TakeSegment lends a kept array of exactly size bytes, or nil.
func (f *freeList) TakeSegment(size int) []byte {
	l := f.bySize[size]
	if len(l) == 0 {
		return nil
	}
	f.hits++
	f.bySize[size] = l[:len(l)-1]
	return l[len(l)-1]
}

// PutSegment keeps b. A real pool would bound what it keeps.
func (f *freeList) PutSegment(b []byte) {
	f.puts++
	f.bySize[cap(b)] = append(f.bySize[cap(b)], b[:0])
}

// ExampleDecoder_SetSegmentPool decodes two 1 MiB values with one decoder:
// the segments the first grew in are given back when it completes, and the
// second grows in them instead of new memory.
func ExampleDecoder_SetSegmentPool() {
	payload := bytes.Repeat([]byte("segment"), 150_000) // about 1 MiB
	wire := encodeBlob(payload)
	pool := &freeList{bySize: map[int][][]byte{}}
	dec := serde.NewDecoder(nil, serde.Limits{})
	dec.SetSegmentPool(pool)
	for i := range 2 {
		got, err := decodeInPackets(dec, wire)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("value %d: intact %v, segments given back %d, reused %d\n",
			i+1, bytes.Equal(got.Data, payload), pool.puts, pool.hits)
	}
	// Output:
	// value 1: intact true, segments given back 4, reused 0
	// value 2: intact true, segments given back 8, reused 4
}

// encodeBlob returns the encoding of a Blob holding payload (at most 2 MiB).
func encodeBlob(payload []byte) []byte {
	enc := serde.NewEncoder(nil, serde.Limits{})
	enc.Reset(&Blob{ID: 1, Data: payload})
	wire := make([]byte, 2<<20)
	n, _, _ := enc.Encode(wire)
	return wire[:n]
}

// decodeInPackets decodes a Blob from wire fed in 64 KiB pieces, as
// packets arrive.
func decodeInPackets(dec *serde.Decoder, wire []byte) (Blob, error) {
	var got Blob
	dec.Reset(&got)
	for off := 0; off < len(wire); off += 64 << 10 {
		if _, _, err := dec.Decode(wire[off:min(off+64<<10, len(wire))]); err != nil {
			return got, err
		}
	}
	return got, nil
}
