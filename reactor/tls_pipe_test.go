package reactor

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// tlsRecords returns records of the given body lengths (application data,
// body bytes numbered) and their boundaries in the stream.
func tlsRecords(lengths ...int) (stream []byte, ends []int) {
	for i, n := range lengths {
		stream = append(stream, 23, 3, 3, byte(n>>8), byte(n))
		for j := range n {
			stream = append(stream, byte(i+j))
		}
		ends = append(ends, len(stream))
	}
	return stream, ends
}

// TestTLSPipeHandsWholeRecords: in record mode, whatever the pieces the
// loop lends and the room crypto/tls offers, Read hands over the stream
// unchanged, never more than one record per call, starts a record only
// once it is whole (so at each would-block crypto/tls holds no partial
// record), and hasInput says whether Read has anything.
func TestTLSPipeHandsWholeRecords(t *testing.T) {
	for _, tc := range []struct {
		lengths []int
		pieces  []int
	}{
		{[]int{100, 0, 2, 700, 1}, []int{1, 2, 5, 6, 99, 1000}},
		{[]int{3000, tlsMaxRecord, 10}, []int{1000, 4096, 1 << 16}},
	} {
		pipeHandsWholeRecords(t, tc.lengths, tc.pieces)
	}
}

func pipeHandsWholeRecords(t *testing.T, lengths, pieces []int) {
	stream, ends := tlsRecords(lengths...)
	isEnd := map[int]bool{0: true}
	for _, e := range ends {
		isEnd[e] = true
	}
	for _, piece := range pieces {
		for _, room := range []int{7, 512, 1 << 16} {
			p := newTLSPipe(nil)
			p.setNonblock()
			var got []byte
			for off := 0; off < len(stream); off += piece {
				p.lent = stream[off:min(off+piece, len(stream))]
				lent := off + len(p.lent) // stream bytes the pipe has seen
				b := make([]byte, room)
				for {
					has := p.hasInput()
					n, err := p.Read(b)
					if errors.Is(err, errWouldBlock) {
						require.Zero(t, n)
						require.False(t, has)
						require.True(t, isEnd[len(got)], "piece %d room %d: would-block inside a record at %d", piece, room, len(got))
						break
					}
					require.NoError(t, err)
					require.True(t, has)
					start := len(got)
					got = append(got, b[:n]...)
					for _, e := range ends {
						require.False(t, start < e && e < len(got), "piece %d room %d: one read spans a record end", piece, room)
					}
					if isEnd[start] {
						// a record starts only when all of it has arrived
						next := 0
						for _, e := range ends {
							if e > start {
								next = e
								break
							}
						}
						require.LessOrEqual(t, next, lent, "piece %d room %d: record at %d started before it was whole", piece, room, start)
					}
				}
				p.keepOnLoop()
			}
			require.True(t, bytes.Equal(stream, got), "piece %d room %d: stream differs", piece, room)
		}
	}
}

// TestTLSPipePartialAtEnd: at the end of the stream a partial record is
// handed over (crypto/tls then reports the truncation), then io.EOF; bytes
// that cannot start a record go through at once.
func TestTLSPipePartialAtEnd(t *testing.T) {
	stream, _ := tlsRecords(50)
	p := newTLSPipe(nil)
	p.setNonblock()
	p.lent = stream[:20]
	b := make([]byte, 512)
	_, err := p.Read(b)
	require.ErrorIs(t, err, errWouldBlock)
	p.keepOnLoop()
	p.eof = true
	n, err := p.Read(b)
	require.NoError(t, err)
	require.Equal(t, stream[:20], b[:n])
	_, err = p.Read(b)
	require.ErrorIs(t, err, io.EOF)

	for _, garbage := range []string{"GET / HTTP/1.1\r\n", "\x16\x00\x00\x40\x00short", "\x17\x03\x03\xff\xffshort"} {
		p = newTLSPipe(nil)
		p.setNonblock()
		p.lent = []byte(garbage)
		n, err = p.Read(b)
		require.NoError(t, err)
		require.Equal(t, garbage, string(b[:n]))
	}

	// Handshake mode: a close hands over what is left, then the cause.
	p = newTLSPipe(nil)
	p.feed(stream[:9])
	cause := errors.New("closed")
	p.close(cause)
	n, err = p.Read(b)
	require.NoError(t, err)
	require.Equal(t, stream[:9], b[:n])
	_, err = p.Read(b)
	require.ErrorIs(t, err, cause)
}
