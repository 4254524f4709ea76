package ipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// onePacket returns the single packet a writer with codec produces for m.
func onePacket(t *testing.T, codec compress.Codec, m *testmsg.Message) []byte {
	t.Helper()
	cfg := testConfig(t, func(c *Config) { c.Compression = codec })
	w := newWriter(cfg)
	require.True(t, w.enqueue(&msgStub{msg: m, ti: testTI, state: OnPeer}))
	buf := make([]byte, 4096)
	n, err := w.fill(buf)
	require.NoError(t, err)
	require.False(t, w.hasOutput(), "the message fits one packet")
	return buf[:n]
}

// TestCompressionThresholdOnWire pins SolidFrame's rule byte for byte: a
// packet whose payload is 1024 bytes travels raw (flags 0x00, the very
// bytes of an uncompressed writer), one of 1025 bytes is compressed (flags
// 0x02).
func TestCompressionThresholdOnWire(t *testing.T) {
	msg := func(k int) *testmsg.Message {
		m := testmsg.New(0, 960)
		m.Meta.Name = strings.Repeat("n", k)
		return m
	}
	payload := func(pkt []byte) int { return int(binary.LittleEndian.Uint16(pkt[2:4])) }
	k := -1
	for i := 0; i < 128; i++ {
		if payload(onePacket(t, nil, msg(i))) == 1024 {
			k = i
			break
		}
	}
	require.GreaterOrEqual(t, k, 0, "no message gives a 1024-byte payload")

	raw := onePacket(t, nil, msg(k))
	got := onePacket(t, compress.Snappy{}, msg(k))
	require.Equal(t, []byte{packetTypeData, 0x00, 0x00, 0x04}, got[:4], "1024-byte payload: raw")
	require.Equal(t, raw, got)

	raw = onePacket(t, nil, msg(k+1))
	require.Equal(t, 1025, payload(raw))
	got = onePacket(t, compress.Snappy{}, msg(k+1))
	require.Equal(t, uint8(packetFlagCompressed), got[1], "1025-byte payload: compressed")
	plain, err := snappy.Decode(nil, got[4:])
	require.NoError(t, err)
	require.Equal(t, raw[4:], plain)
}

// TestDecompressionBombAndCorrupt: a compressed packet that declares more
// than a packet's 65536 bytes is refused before any output is written
// (compress.ErrTooLarge), a malformed one fails (compress.ErrCorrupt); both
// are ErrCompression, a protocol error.
func TestDecompressionBombAndCorrupt(t *testing.T) {
	cfg := testConfig(t, func(c *Config) { c.Compression = compress.Snappy{} })
	for _, tc := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"bomb", snappy.Encode(nil, make([]byte, maxPacketPayload+1)), compress.ErrTooLarge},
		{"corrupt", []byte{0x80, 0x02, 0xff, 0xff, 0xff}, compress.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Less(t, len(tc.payload), maxPacketPayload)
			pkt := compressedPacket(tc.payload)
			r := newReader(cfg, &pipeEvents{t: t})
			_, err := r.feed(pkt)
			require.ErrorIs(t, err, ErrCompression)
			require.ErrorIs(t, err, ErrProtocol)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

// compressedPacket frames payload as a Data packet flagged Compressed.
func compressedPacket(payload []byte) []byte {
	pkt := make([]byte, packetHeaderSize, packetHeaderSize+len(payload))
	putPacketHeader(pkt, packetHeader{typ: packetTypeData, flags: packetFlagCompressed, size: len(payload)})
	return append(pkt, payload...)
}

// FuzzReadCompressed feeds arbitrary bytes as the payload of a compressed
// packet to a reader with snappy: the decompress-and-read path must never
// panic, never write past its bound, and fail only with named protocol
// errors. Seeds: compressed writer packets, a bomb header, corrupt input.
func FuzzReadCompressed(f *testing.F) {
	stream := writerStream(f, compress.Snappy{Threshold: 64}, 3000, 200)
	for len(stream) >= packetHeaderSize {
		h, err := parsePacketHeader(stream, maxPacketPayload)
		if err != nil {
			break
		}
		if h.flags&packetFlagCompressed != 0 {
			f.Add(bytes.Clone(stream[packetHeaderSize : packetHeaderSize+h.size]))
		}
		stream = stream[packetHeaderSize+h.size:]
	}
	f.Add(snappy.Encode(nil, make([]byte, maxPacketPayload+1)))
	f.Add([]byte{0x80, 0x02, 0xff, 0xff, 0xff})
	f.Add([]byte{0x05, 0x01})
	cfg := testConfig(f, func(c *Config) {
		c.Compression = compress.Snappy{}
		c.Limits.MaxString = 1 << 16
		c.Limits.MaxContainer = 1 << 10
	})
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > maxPacketPayload {
			return
		}
		r := newReader(cfg, &pipeEvents{t: t})
		n, err := r.feed(compressedPacket(payload))
		if err != nil {
			require.ErrorIs(t, err, ErrProtocol)
			if errors.Is(err, ErrCompression) {
				require.True(t, errors.Is(err, compress.ErrTooLarge) || errors.Is(err, compress.ErrCorrupt), "%v", err)
			}
			return
		}
		require.Equal(t, packetHeaderSize+len(payload), n)
	})
}

// BenchmarkCompressionWire encodes a 1 MiB message of JSON-like or random
// bytes with the writer at the default 4 KiB BufferSize, snappy on or off,
// and reports the wire bytes (packet headers included) per payload byte.
func BenchmarkCompressionWire(b *testing.B) {
	const size = 1 << 20
	for _, data := range []struct {
		name string
		b    []byte
	}{{"json", testmsg.JSONLike(size)}, {"random", testmsg.Random(size)}} {
		for _, codec := range []compress.Codec{nil, compress.Snappy{}} {
			b.Run(fmt.Sprintf("%s/snappy=%v", data.name, codec != nil), func(b *testing.B) {
				cfg := testConfig(b, func(c *Config) { c.Compression = codec })
				w := newWriter(cfg)
				m := &testmsg.Message{Str: data.b}
				buf := make([]byte, cfg.BufferSize)
				wire := 0
				b.SetBytes(size)
				for i := 0; i < b.N; i++ {
					require.True(b, w.enqueue(&msgStub{msg: m, ti: testTI, state: OnPeer}))
					for w.hasOutput() {
						n, err := w.fill(buf)
						require.NoError(b, err)
						wire += n
					}
					w.done = w.done[:0]
				}
				b.ReportMetric(float64(wire)/float64(b.N*size), "wire/payload")
			})
		}
	}
}
