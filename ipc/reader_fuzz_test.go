package ipc

import (
	"testing"

	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// writerStream returns the packets a writer produces for a few messages,
// as seeds for FuzzReader.
func writerStream(t testing.TB, codec compress.Codec, sizes ...int) []byte {
	cfg := testConfig(t, func(c *Config) { c.Compression = codec })
	w := newWriter(cfg)
	for i, n := range sizes {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(i, n), ti: testTI, state: OnPeer}))
	}
	w.cancelReqs = append(w.cancelReqs, reqID{3, 4})
	var out []byte
	buf := make([]byte, 512)
	for w.hasOutput() {
		n, err := w.fill(buf)
		require.NoError(t, err)
		out = append(out, buf[:n]...)
	}
	return out
}

// FuzzReader feeds arbitrary bytes, split at a fuzzed point, to a
// connection's reader (the stateful frame reader: packets, chunks,
// per-slot header and body decoding, snappy). It must never panic and every
// error must be a named protocol error. Seeds: writer output for a few
// messages (plain and compressed) and testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	f.Add(writerStream(f, nil, 10, 100, 2000), uint16(7))
	f.Add(writerStream(f, compress.Snappy{Threshold: 64}, 3000, 16), uint16(300))
	for _, c := range capturedPackets {
		f.Add(mustHex(f, c.hex), uint16(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		cfg := testConfig(t, func(c *Config) {
			c.Compression = compress.Snappy{}
			c.Limits.MaxString = 1 << 16
			c.Limits.MaxContainer = 1 << 10
		})
		r := newReader(cfg, &pipeEvents{t: t})
		cut := min(int(split), len(data))
		pending := append([]byte(nil), data[:cut]...)
		for _, more := range [][]byte{data[cut:], nil} {
			pending = append(pending, more...)
			n, err := r.feed(pending)
			if err != nil {
				require.ErrorIs(t, err, ErrProtocol)
				return
			}
			require.LessOrEqual(t, n, len(pending))
			pending = pending[n:]
		}
	})
}
