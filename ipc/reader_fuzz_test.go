package ipc

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/internal/testmsg"
)

// fuzzReaderTypeID is testmsg.Message's type id in the FuzzReader config;
// ids 1 to 3 are the docs/protocol.md types (docProtocol).
const fuzzReaderTypeID = 4

// fuzzReaderConfig is the configuration FuzzReader reads with: the doc
// protocol (so that the captured packets and the docs/protocol.md examples
// decode), testmsg.Message (the writer streams), snappy, and small limits.
func fuzzReaderConfig(tb testing.TB) *Config {
	tb.Helper()
	p := docProtocol(tb)
	require.NoError(tb, Register(p, fuzzReaderTypeID, func(Context, *testmsg.Message) {}))
	cfg := Config{Protocol: p, Compression: compress.Snappy{}}
	cfg.Limits.MaxString = 1 << 16
	cfg.Limits.MaxContainer = 1 << 10
	c, err := cfg.withDefaults()
	require.NoError(tb, err)
	return &c
}

// writerStream returns the packets the real writer produces for a few
// testmsg messages and a CancelRequest, with codec.
func writerStream(tb testing.TB, codec compress.Codec, sizes ...int) []byte {
	tb.Helper()
	cfg := fuzzReaderConfig(tb)
	cfg.Compression = codec
	e := newWireEnd(tb, cfg)
	for i, n := range sizes {
		e.send(testmsg.New(i, n), 0)
	}
	e.w.cancelReqs = append(e.w.cancelReqs, reqID{3, 4})
	return e.output(512)
}

// fuzzReaderSeeds are FuzzReader's seeds: writer output (plain and
// compressed), the captured SolidFrame packets and every packet example of
// docs/protocol.md whose payload is shown. The reader accepts all of them
// (TestFuzzReaderSeedsAccepted), so the fuzzer starts from valid streams.
func fuzzReaderSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	seeds := [][]byte{
		writerStream(tb, nil, 10, 100, 2000),
		writerStream(tb, compress.Snappy{Threshold: 64}, 3000, 16),
	}
	for _, c := range capturedPackets {
		seeds = append(seeds, mustHex(tb, c.hex))
	}
	for _, ex := range readDocExamples(tb, "../docs/protocol.md") {
		if _, ok := docPacketTraces[ex.name]; ok && docReaderOnly[ex.name] != "header only, payload not shown" {
			seeds = append(seeds, ex.data)
		}
	}
	return seeds
}

// TestFuzzReaderSeedsAccepted checks that the reader, configured as in
// FuzzReader, accepts every seed whole.
func TestFuzzReaderSeedsAccepted(t *testing.T) {
	seeds := fuzzReaderSeeds(t)
	require.Greater(t, len(seeds), 10)
	for i, s := range seeds {
		e := newWireEnd(t, fuzzReaderConfig(t))
		n, err := e.r.feed(s)
		require.NoError(t, err, "seed %d", i)
		require.Equal(t, len(s), n, "seed %d", i)
	}
}

// FuzzReader feeds arbitrary bytes, split at a fuzzed point, to a
// connection's reader (the stateful frame reader: packets, chunks,
// per-slot header and body decoding, snappy). It must never panic and every
// error must be a named protocol error. Seeds: fuzzReaderSeeds and
// testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	for i, s := range fuzzReaderSeeds(f) {
		f.Add(s, uint16(5+i*7))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		e := newWireEnd(t, fuzzReaderConfig(t))
		cut := min(int(split), len(data))
		pending := append([]byte(nil), data[:cut]...)
		for _, more := range [][]byte{data[cut:], nil} {
			pending = append(pending, more...)
			n, err := e.r.feed(pending)
			if err != nil {
				require.ErrorIs(t, err, ErrProtocol)
				return
			}
			require.LessOrEqual(t, n, len(pending))
			pending = pending[n:]
		}
	})
}
