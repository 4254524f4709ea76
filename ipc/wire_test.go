package ipc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// parseHexBlock decodes hex written with spaces, newlines and '#' comments
// that run to the end of the line (the docs/protocol.md example format).
func parseHexBlock(s string) ([]byte, error) {
	var digits strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(digits.String())
}

// docExample is one worked example of docs/protocol.md.
type docExample struct {
	name string
	line int
	data []byte
}

// readDocExamples extracts every "Example: <name>" line and the ```hex block
// that follows it. A hex block without an Example line, or an Example line
// not followed by a hex block, is an error.
func readDocExamples(tb testing.TB, path string) []docExample {
	tb.Helper()
	f, err := os.Open(path)
	require.NoError(tb, err)
	defer f.Close()
	var (
		out     []docExample
		pending string // name of an Example line awaiting its block
		inBlock bool
		block   strings.Builder
		lineNo  int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case inBlock && strings.TrimSpace(line) == "```":
			inBlock = false
			b, err := parseHexBlock(block.String())
			require.NoError(tb, err, "example %q (line %d)", pending, lineNo)
			out = append(out, docExample{name: pending, line: lineNo, data: b})
			pending = ""
		case inBlock:
			block.WriteString(line)
			block.WriteByte('\n')
		case strings.HasPrefix(line, "Example: "):
			require.Empty(tb, pending, "line %d: Example line without a hex block before it", lineNo)
			pending = strings.TrimSpace(strings.TrimPrefix(line, "Example: "))
			require.NotEmpty(tb, pending, "line %d: empty example name", lineNo)
		case strings.TrimSpace(line) == "```hex":
			require.NotEmpty(tb, pending, "line %d: hex block without an Example line", lineNo)
			inBlock = true
			block.Reset()
		case pending != "" && strings.HasPrefix(strings.TrimSpace(line), "```"):
			tb.Fatalf("line %d: example %q is followed by a non-hex block", lineNo, pending)
		}
	}
	require.NoError(tb, sc.Err())
	require.False(tb, inBlock, "unterminated hex block")
	require.Empty(tb, pending, "example %q has no hex block", pending)
	return out
}

// Expected reader traces of the packet examples of docs/protocol.md: what
// the engine's reader reports (wireEnd records it) when fed the example.
// A packet whose payload is not shown is traced as the payload the reader
// waits for.
var docPacketTraces = map[string][]string{
	"KeepAlive packet":         {"KeepAlive"},
	"64 KiB packet header":     {"waiting for 65536 payload bytes"},
	"compressed packet header": {"waiting for 4660 payload bytes"},
	"hello request": {
		`header flags=AwaitResponse|StartedSend|OnPeer url="" sender=1,0 recipient=0,0`,
		`message Echo{text="hello"}`,
	},
	"hello response": {
		`header flags=OneShot|StartedSend|Response|BackOnSender url="" sender=1,0 recipient=1,0`,
		`message Echo{text="hello"}`,
	},
	"message continuation": {
		`header flags=AwaitResponse|StartedSend|OnPeer url="" sender=1,4 recipient=0,0`,
		`message Echo{text="0123456789"}`,
	},
	"CancelMessage": {
		`header flags=StartedSend|OnPeer url="" sender=3,0 recipient=0,0`,
		"CancelMessage slot=2",
	},
	"message continuation (writer)": {
		`header flags=AwaitResponse|StartedSend|OnPeer url="" sender=1,4 recipient=0,0`,
		`message Echo{text="012345678901234567890123456789012345678901234567890123456789"}`,
	},
	"CancelMessage (writer)": {
		`header flags=StartedSend|OnPeer url="" sender=3,0 recipient=0,0`,
		"CancelMessage slot=2",
	},
	"CancelRequest":     {"CancelRequest index=7 unique=300"},
	"extension hello":   {"Hello"},
	"Window command":    {"Hello", "Window slot=5 unique=3 credit=65536"},
	"AckdCount":         nil, // read and ignored
	"Update is skipped": nil,
	"lookup request": {
		`header flags=AwaitResponse|Idempotent|StartedSend|OnPeer url="" sender=6,2 recipient=0,0`,
		`message Lookup{key="user:42" limit=10 tags=["a" "b"]}`,
	},
	"lookup response": {
		`header flags=OneShot|StartedSend|Response|BackOnSender url="" sender=1,3 recipient=6,2`,
		`message LookupResult{found=true value=-5 score=0.5}`,
	},
}

// docLookup42 is the request of the lookup examples.
func docLookup42() *docLookup {
	return &docLookup{Key: "user:42", Limit: 10, Tags: []string{"a", "b"}}
}

// docWriterOutput produces, with the engine's real writer, the bytes of the
// packet examples this engine sends. Each runs the exchange the example
// describes (slots and uniques reached the real way, responses built by the
// Respond path).
var docWriterOutput = map[string]func(t *testing.T) []byte{
	"extension hello": func(t *testing.T) []byte {
		client, _ := newWirePair(t)
		client.w.helloPending = true // as newWriter leaves it
		return client.output(client.svc.cfg.BufferSize)
	},
	"Window command": func(t *testing.T) []byte {
		// What the reader asks for once 64 KiB of the peer's windowed
		// message in its slot 5 (unique 3) have been consumed, after the
		// hello that made the peer window it.
		client, _ := newWirePair(t)
		client.w.helloPending = true
		client.grantWindow(windowGrant{slot: 5, unique: 3, credit: windowGrantStep})
		return client.output(client.svc.cfg.BufferSize)
	},
	"KeepAlive packet": func(*testing.T) []byte { return keepAlivePacket },
	"hello request": func(t *testing.T) []byte {
		client, _ := newWirePair(t)
		client.request(&docEcho{Text: "hello"}, 0)
		return client.output(client.svc.cfg.BufferSize)
	},
	"hello response": func(t *testing.T) []byte {
		client, server := newWirePair(t)
		client.request(&docEcho{Text: "hello"}, 0)
		server.input(client.output(client.svc.cfg.BufferSize))
		server.respond(0, &docEcho{Text: "hello"})
		return server.output(server.svc.cfg.BufferSize)
	},
	"message continuation (writer)": func(t *testing.T) []byte {
		client, _ := newWirePair(t)
		client.primeSlot(0, 4)
		client.request(&docEcho{Text: strings.Repeat("0123456789", 6)}, 0)
		return client.output(64)
	},
	"CancelMessage (writer)": func(t *testing.T) []byte {
		// Canceled on its loop (conn.cancelOnLoop → writer.cancel) after
		// its first packet.
		client, _ := newWirePair(t)
		client.primeSlot(2, 0)
		st := client.send(&docEcho{Text: strings.Repeat("ab", 40)}, 0)
		first := make([]byte, 64)
		n, err := client.w.fill(first)
		require.NoError(t, err)
		require.True(t, client.w.cancel(st.slot, st, ErrCanceled, nil))
		return append(first[:n], client.output(64)...)
	},
	"CancelRequest": func(t *testing.T) []byte {
		// What conn.onHeader queues when the response to a request
		// canceled while it waited arrives from the peer's slot 6.
		client, _ := newWirePair(t)
		client.w.cancelReqs = append(client.w.cancelReqs, reqID{7, 300})
		return client.output(client.svc.cfg.BufferSize)
	},
	"lookup request": func(t *testing.T) []byte {
		client, _ := newWirePair(t)
		client.primeSlot(5, 2)
		client.request(docLookup42(), Idempotent)
		return client.output(client.svc.cfg.BufferSize)
	},
	"lookup response": func(t *testing.T) []byte {
		client, server := newWirePair(t)
		client.primeSlot(5, 2)
		client.request(docLookup42(), Idempotent)
		server.primeSlot(0, 3)
		server.input(client.output(client.svc.cfg.BufferSize))
		require.Len(t, server.received, 1)
		server.respond(0, &docLookupResult{Found: true, Value: -5, Score: 0.5})
		return server.output(server.svc.cfg.BufferSize)
	},
}

// docReaderOnly are the packet examples this engine's writer never
// produces; they show what a peer may send, and only the reader is checked.
var docReaderOnly = map[string]string{
	"64 KiB packet header":     "header only, payload not shown",
	"compressed packet header": "header only, payload not shown",
	"message continuation":     "a header cut after 6 bytes: the writer never cuts a header that short (see the writer example)",
	"CancelMessage":            "a 5-byte chunk at the end of a packet: the writer starts no chunk with fewer than minFreePacketData bytes left (see the writer example)",
	"AckdCount":                "relay credits are not sent by this engine",
	"Update is skipped":        "Update is not sent by this engine",
}

// docValueChecks check the value examples of docs/protocol.md: each decodes
// the bytes, compares with the documented values and re-encodes.
var docValueChecks = map[string]func(t *testing.T, b []byte){
	"plain integers": func(t *testing.T, b []byte) {
		want := []uint64{0, 5, 255, 256, 300, 65536, math.MaxUint64}
		var got []uint64
		var out []byte
		for len(b) > 0 {
			v, n, err := serde.ParsePlain(b, 8)
			require.NoError(t, err)
			require.NotZero(t, n)
			got = append(got, v)
			out = serde.AppendPlain(out, v)
			b = b[n:]
		}
		require.Equal(t, want, got)
		require.Equal(t, serdeAppendAll(serde.AppendPlain, want), out)
	},
	"checked cross integers": func(t *testing.T, b []byte) {
		want := []uint64{0, 5, 255, 256, 300, 65536, math.MaxUint64}
		var got []uint64
		for len(b) > 0 {
			v, n, err := serde.ParseCross(b)
			require.NoError(t, err)
			require.NotZero(t, n)
			got = append(got, v)
			b = b[n:]
		}
		require.Equal(t, want, got)
	},
	"value encodings": func(t *testing.T, b []byte) {
		r := &valueReader{t: t, b: b}
		got := decodeSample(r)
		r.end()
		require.Equal(t, wantSample, got)
		require.Equal(t, hex.EncodeToString(b), hex.EncodeToString(encodeSample(nil, &got)))
	},
}

func serdeAppendAll(f func([]byte, uint64) []byte, vs []uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = f(b, v)
	}
	return b
}

// TestProtocolDocExamples checks every worked example of docs/protocol.md
// against the engine itself: each packet example is fed to the real reader
// (whole, and cut at every byte) and must produce the expected trace; the
// examples this engine sends are produced by the real writer, byte for
// byte.
func TestProtocolDocExamples(t *testing.T) {
	examples := readDocExamples(t, "../docs/protocol.md")
	require.NotEmpty(t, examples)
	seen := map[string]bool{}
	for _, ex := range examples {
		require.False(t, seen[ex.name], "duplicate example %q", ex.name)
		seen[ex.name] = true
		t.Run(ex.name, func(t *testing.T) {
			if check, ok := docValueChecks[ex.name]; ok {
				check(t, ex.data)
				return
			}
			want, ok := docPacketTraces[ex.name]
			require.True(t, ok, "example %q (docs/protocol.md line %d) has no expectation in wire_test.go", ex.name, ex.line)
			for _, step := range []int{0, 1, 3} {
				require.Equal(t, want, readerTrace(t, ex.data, step), "fed in pieces of %d bytes (0: whole)", step)
			}
			produce, ok := docWriterOutput[ex.name]
			if !ok {
				require.NotEmpty(t, docReaderOnly[ex.name], "example %q: neither writer output nor a reader-only reason", ex.name)
				return
			}
			require.Equal(t, hex.EncodeToString(ex.data), hex.EncodeToString(produce(t)), "the writer's bytes")
		})
	}
	for name := range docPacketTraces {
		require.True(t, seen[name], "expectation %q has no example in docs/protocol.md", name)
	}
	for name := range docValueChecks {
		require.True(t, seen[name], "expectation %q has no example in docs/protocol.md", name)
	}
	for name := range docWriterOutput {
		require.Empty(t, docReaderOnly[name], "%q is both written and reader-only", name)
	}
}

// readerTrace feeds b to a fresh real reader (doc protocol, docMaxSlot
// reader slots), in pieces of step bytes (0: whole) the way conn keeps an
// unconsumed tail, and returns what the reader reported. Bytes left
// unconsumed at the end must be one packet header, traced as the payload
// the reader waits for.
func readerTrace(t *testing.T, b []byte, step int) []string {
	t.Helper()
	cfg := Config{Protocol: docProtocol(t), MaxReaderSlots: docMaxSlot}
	c, err := cfg.withDefaults()
	require.NoError(t, err)
	e := newWireEnd(t, &c)
	var pending []byte
	for len(b) > 0 {
		k := len(b)
		if step > 0 {
			k = min(step, len(b))
		}
		pending = append(pending, b[:k]...)
		b = b[k:]
		n, err := e.r.feed(pending)
		require.NoError(t, err)
		pending = pending[n:]
	}
	if len(pending) > 0 {
		require.Len(t, pending, packetHeaderSize, "unconsumed bytes are not one packet header")
		h, err := parsePacketHeader(pending, maxPacketPayload)
		require.NoError(t, err)
		e.trace = append(e.trace, fmt.Sprintf("waiting for %d payload bytes", h.size))
	}
	return e.trace
}

// docMaxSlot is the reader slot limit used to decode the examples
// (SolidFrame's 64 + 128).
const docMaxSlot = 192

// valueReader is a tiny hand decoder over serde's primitive parsers, used
// to check the documented encodings independently of serde.Decoder.
type valueReader struct {
	t *testing.T
	b []byte
}

func (r *valueReader) plain(width int) uint64 {
	r.t.Helper()
	v, n, err := serde.ParsePlain(r.b, width)
	require.NoError(r.t, err)
	require.NotZero(r.t, n, "short plain integer")
	r.b = r.b[n:]
	return v
}

func (r *valueReader) cross() uint64 {
	r.t.Helper()
	v, n, err := serde.ParseCross(r.b)
	require.NoError(r.t, err)
	require.NotZero(r.t, n, "short cross integer")
	r.b = r.b[n:]
	return v
}

func (r *valueReader) raw(n int) []byte {
	r.t.Helper()
	require.GreaterOrEqual(r.t, len(r.b), n, "short value")
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *valueReader) bool() bool {
	r.t.Helper()
	v := r.raw(1)[0]
	require.LessOrEqual(r.t, v, uint8(1), "bool byte")
	return v == 1
}

func (r *valueReader) str() string { return string(r.raw(int(r.cross()))) }

func (r *valueReader) end() {
	r.t.Helper()
	require.Empty(r.t, r.b, "bytes left after the value")
}

func appendStr(b []byte, s string) []byte {
	return append(serde.AppendCross(b, uint64(len(s))), s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// sample is the Sample struct of docs/protocol.md §10.8.
type sample struct {
	Version uint64
	B       bool
	I8      int8
	U16     uint16
	I32     int32
	U64     uint64
	F32     float32
	F64     float64
	S       string
	Raw     []byte
	L       []uint32
	M       map[string]uint8
	Opt     *uint32
	OptS    *string
	Inner   uint8  // Inner{A}
	AnyID   uint64 // Any: type id
	AnyA    uint8  // Any: Inner{A}
	Any2ID  uint64
	F8      uint8
	F16     uint16
	C       uint64
	Stream  []string // chunks
}

var wantSample = func() sample {
	x := "x"
	return sample{
		Version: 2, B: true, I8: -2, U16: 300, I32: -1, U64: 0, F32: 1.5, F64: -2,
		S: "hi", Raw: []byte{0xde, 0xad}, L: []uint32{1, 300}, M: map[string]uint8{"a": 7},
		Opt: nil, OptS: &x, Inner: 5, AnyID: 5, AnyA: 9, Any2ID: 0,
		F8: 0x7f, F16: 0x1234, C: 300, Stream: []string{"ab", "c"},
	}
}()

func decodeSample(r *valueReader) sample {
	var s sample
	s.Version = r.cross()
	s.B = r.bool()
	s.I8 = int8(r.plain(1))
	s.U16 = uint16(r.plain(2))
	s.I32 = int32(r.plain(4))
	s.U64 = r.plain(8)
	s.F32 = math.Float32frombits(uint32(r.plain(4)))
	s.F64 = math.Float64frombits(r.plain(8))
	s.S = r.str()
	s.Raw = append([]byte(nil), r.raw(int(r.cross()))...)
	s.L = make([]uint32, r.cross())
	for i := range s.L {
		s.L[i] = uint32(r.plain(4))
	}
	s.M = map[string]uint8{}
	for n := r.cross(); n > 0; n-- {
		k := r.str()
		s.M[k] = uint8(r.plain(1))
	}
	if r.bool() {
		v := uint32(r.plain(4))
		s.Opt = &v
	}
	if r.bool() {
		v := r.str()
		s.OptS = &v
	}
	s.Inner = uint8(r.plain(1))
	if s.AnyID = r.cross(); s.AnyID != 0 {
		s.AnyA = uint8(r.plain(1))
	}
	if s.Any2ID = r.cross(); s.Any2ID != 0 {
		r.t.Fatalf("Any2 should be nil")
	}
	s.F8 = r.raw(1)[0]
	s.F16 = binary.LittleEndian.Uint16(r.raw(2))
	s.C = r.cross()
	for {
		n := int(binary.LittleEndian.Uint16(r.raw(2)))
		if n == 0 {
			break
		}
		s.Stream = append(s.Stream, string(r.raw(n)))
	}
	return s
}

func encodeSample(b []byte, s *sample) []byte {
	b = serde.AppendCross(b, s.Version)
	b = appendBool(b, s.B)
	b = serde.AppendPlain(b, uint64(uint8(s.I8)))
	b = serde.AppendPlain(b, uint64(s.U16))
	b = serde.AppendPlain(b, uint64(uint32(s.I32)))
	b = serde.AppendPlain(b, s.U64)
	b = serde.AppendPlain(b, uint64(math.Float32bits(s.F32)))
	b = serde.AppendPlain(b, math.Float64bits(s.F64))
	b = appendStr(b, s.S)
	b = append(serde.AppendCross(b, uint64(len(s.Raw))), s.Raw...)
	b = serde.AppendCross(b, uint64(len(s.L)))
	for _, v := range s.L {
		b = serde.AppendPlain(b, uint64(v))
	}
	b = serde.AppendCross(b, uint64(len(s.M)))
	for k, v := range s.M {
		b = appendStr(b, k)
		b = serde.AppendPlain(b, uint64(v))
	}
	b = appendBool(b, s.Opt != nil)
	if s.Opt != nil {
		b = serde.AppendPlain(b, uint64(*s.Opt))
	}
	b = appendBool(b, s.OptS != nil)
	if s.OptS != nil {
		b = appendStr(b, *s.OptS)
	}
	b = serde.AppendPlain(b, uint64(s.Inner))
	b = serde.AppendCross(b, s.AnyID)
	if s.AnyID != 0 {
		b = serde.AppendPlain(b, uint64(s.AnyA))
	}
	b = serde.AppendCross(b, s.Any2ID)
	b = append(b, s.F8)
	b = binary.LittleEndian.AppendUint16(b, s.F16)
	b = serde.AppendCross(b, s.C)
	for _, c := range s.Stream {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(c)))
		b = append(b, c...)
	}
	return binary.LittleEndian.AppendUint16(b, 0)
}

func TestProtocolPacketHeaderRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		h    packetHeader
		wire string
	}{
		{packetHeader{typ: packetTypeData, size: 0}, "01000000"},
		{packetHeader{typ: packetTypeData, size: 25}, "01001900"},
		{packetHeader{typ: packetTypeData, size: 65535}, "0100ffff"},
		{packetHeader{typ: packetTypeData, flags: packetFlagSize64KB, size: 65536}, "01010000"},
		{packetHeader{typ: packetTypeData, flags: packetFlagCompressed | packetFlagAckRequest | packetFlagSize64KB, size: 65536}, "01070000"},
		{packetHeader{typ: packetTypeData, flags: packetFlagCompressed, size: 4096}, "01020010"},
		{packetHeader{typ: packetTypeKeepAlive}, "02000000"},
	} {
		b := make([]byte, packetHeaderSize)
		putPacketHeader(b, tc.h)
		require.Equal(t, tc.wire, hex.EncodeToString(b))
		h, err := parsePacketHeader(b, maxPacketPayload)
		require.NoError(t, err)
		require.Equal(t, tc.h, h)
	}
	// The Size64KB bit follows the size, whatever the caller's flags say.
	b := make([]byte, packetHeaderSize)
	putPacketHeader(b, packetHeader{typ: packetTypeData, flags: packetFlagSize64KB, size: 10})
	require.Equal(t, "01000a00", hex.EncodeToString(b))
	putPacketHeader(b, packetHeader{typ: packetTypeData, size: 65536})
	require.Equal(t, "01010000", hex.EncodeToString(b))
}

func TestProtocolPacketHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name, wire string
		max        int
	}{
		{"type 0", "00000000", maxPacketPayload},
		{"type 3", "03000000", maxPacketPayload},
		{"type 255", "ff000000", maxPacketPayload},
		{"unknown flag 0x08", "01080000", maxPacketPayload},
		{"unknown flag 0x80", "01800100", maxPacketPayload},
		{"oversize 65537", "01010100", maxPacketPayload},
		{"oversize 131071", "0101ffff", maxPacketPayload},
		{"above receiver max", "01000110", 4096},
		{"64KiB above receiver max", "01010000", 4096},
		{"keepalive with payload", "02000100", maxPacketPayload},
		{"keepalive with 64KiB bit", "02010000", maxPacketPayload},
		{"keepalive compressed", "02020000", maxPacketPayload},
		{"keepalive ack request", "02040000", maxPacketPayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePacketHeader(mustHex(t, tc.wire), tc.max)
			require.ErrorIs(t, err, ErrBadPacketHeader)
			require.ErrorIs(t, err, ErrProtocol)
		})
	}
	// Boundaries that are valid.
	h, err := parsePacketHeader(mustHex(t, "01000010"), 4096)
	require.NoError(t, err)
	require.Equal(t, 4096, h.size)
	_, err = parsePacketHeader(mustHex(t, "01010000"), 1<<20) // max clamps to 65536
	require.NoError(t, err)
	_, err = parsePacketHeader(mustHex(t, "01010100"), 1<<20)
	require.ErrorIs(t, err, ErrBadPacketHeader)
}

func TestProtocolCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		want          []error
	}{
		{"empty", "", []error{ErrBadChunk}},
		{"code 0", "00", []error{ErrBadCommand}},
		{"code 1", "010000", []error{ErrBadCommand}},
		{"code 12", "0c", []error{ErrBadCommand}},
		{"truncated window start", "0b", []error{ErrBadChunk}},
		{"truncated window: no credit", "0a 0905 00", []error{ErrBadChunk}},
		{"code 255", "ff", []error{ErrBadCommand}},
		{"slot at limit", "02 41c0 00000000000000 0000", []error{ErrBadSlot}}, // cross 192 in 8 bytes
		{"slot 192", "04 09c0 0000", []error{ErrBadSlot}},
		{"cancel slot beyond", "06 09c8", []error{ErrBadSlot}},
		{"chunk length past payload", "02 00 0500 01020304", []error{ErrBadChunk}},
		{"chunk length ffff", "05 00 ffff 00", []error{ErrBadChunk}},
		{"truncated: code only", "02", []error{ErrBadChunk}},
		{"truncated: slot", "04 11 05", []error{ErrBadChunk}},
		{"truncated: no length", "05 00", []error{ErrBadChunk}},
		{"truncated: half length", "05 00 01", []error{ErrBadChunk}},
		{"truncated cancel message", "06", []error{ErrBadChunk}},
		{"truncated cancel request: no index", "08", []error{ErrBadChunk}},
		{"truncated cancel request: no unique", "08 0907", []error{ErrBadChunk}},
		{"truncated cancel request: short unique", "08 0907 112c", []error{ErrBadChunk}},
		{"truncated ackd count", "09", []error{ErrBadChunk}},
		{"bad cross slot", "02 0a 0000", []error{ErrProtocol, serde.ErrBadCross}},
		{"bad cross slot N>8", "02 4a 0000", []error{ErrProtocol, serde.ErrBadCross}},
		{"bad cross cancel slot", "06 10 00", []error{ErrProtocol, serde.ErrBadCross}},
		{"bad cross cancel index", "08 08 00", []error{ErrProtocol, serde.ErrBadCross}},
		{"bad cross cancel unique", "08 00 12 2c01", []error{ErrProtocol, serde.ErrBadCross}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := parseCommand(mustHex(t, tc.payload), docMaxSlot)
			require.Error(t, err)
			require.Zero(t, n)
			require.ErrorIs(t, err, ErrProtocol)
			for _, w := range tc.want {
				require.ErrorIs(t, err, w)
			}
		})
	}
	// A slot of 2^32 or more is beyond every limit, never truncated to 32 bits.
	_, _, err := parseCommand(mustHex(t, "04 2a0000000001 0000"), math.MaxUint32)
	require.ErrorIs(t, err, ErrBadSlot)
}

func TestProtocolCommands(t *testing.T) {
	// Every command kind, in one payload, parsed back with its length.
	var p []byte
	p = appendAckdCount(p, 200)
	p = appendCancelRequest(p, 192, 1<<40)
	p = appendChunk(p, cmdNewMessage, 191, []byte{1, 2, 3})
	p = appendChunk(p, cmdMessage, 0, nil)
	p = appendChunk(p, cmdEndMessage, 70000, bytes.Repeat([]byte{9}, 300))
	p = appendChunk(p, cmdFullMessage, 1, []byte{7})
	p = appendCancelMessage(p, 300)
	p = append(p, cmdUpdate)
	want := []command{
		{code: cmdAckdCount, count: 200},
		{code: cmdCancelRequest, index: 192, unique: 1 << 40},
		{code: cmdNewMessage, slot: 191, data: []byte{1, 2, 3}},
		{code: cmdMessage, slot: 0, data: []byte{}},
		{code: cmdEndMessage, slot: 70000, data: bytes.Repeat([]byte{9}, 300)},
		{code: cmdFullMessage, slot: 1, data: []byte{7}},
		{code: cmdCancelMessage, slot: 300},
		{code: cmdUpdate},
	}
	var got []command
	for len(p) > 0 {
		cmd, n, err := parseCommand(p, 1<<20)
		require.NoError(t, err)
		require.Positive(t, n)
		got = append(got, cmd)
		p = p[n:]
	}
	require.Equal(t, want, got)
	// Chunk data must not be appendable into the rest of the payload.
	p = appendChunk(nil, cmdMessage, 0, []byte{1})
	p = append(p, cmdUpdate)
	cmd, _, err := parseCommand(p, 1)
	require.NoError(t, err)
	require.Equal(t, 1, cap(cmd.data))
}

func TestProtocolChunkInPlace(t *testing.T) {
	for _, slot := range []uint32{0, 1, 191, 255, 256, 1 << 24, math.MaxUint32} {
		for _, dataLen := range []int{0, 1, 300, maxChunkData} {
			buf := make([]byte, chunkHeaderMax+dataLen)
			off := putChunkStart(buf, cmdMessage, slot)
			require.LessOrEqual(t, off, chunkHeaderMax)
			for i := range dataLen {
				buf[off+i] = byte(i)
			}
			finishChunk(buf, cmdEndMessage, dataLen)
			buf = buf[:off+dataLen]
			require.Equal(t, appendChunk(nil, cmdEndMessage, slot, buf[off:]), buf)
			cmd, n, err := parseCommand(buf, math.MaxUint32)
			if slot == math.MaxUint32 {
				require.ErrorIs(t, err, ErrBadSlot)
				continue
			}
			require.NoError(t, err)
			require.Equal(t, len(buf), n)
			require.Equal(t, uint8(cmdEndMessage), cmd.code)
			require.Equal(t, slot, cmd.slot)
			require.Equal(t, buf[off:], cmd.data)
		}
	}
	require.Panics(t, func() { finishChunk(make([]byte, chunkHeaderMax), cmdMessage, maxChunkData+1) })
}

func TestProtocolControlCommandBytes(t *testing.T) {
	require.Equal(t, "0600", hex.EncodeToString(appendCancelMessage(nil, 0)))
	require.Equal(t, "060905", hex.EncodeToString(appendCancelMessage(nil, 5)))
	require.Equal(t, "080907112c01", hex.EncodeToString(appendCancelRequest(nil, 7, 300)))
	require.Equal(t, "080000", hex.EncodeToString(appendCancelRequest(nil, 0, 0)))
	require.Equal(t, "09ff", hex.EncodeToString(appendAckdCount(nil, 255)))
}

// testHeaders are message headers that exercise every field width.
var testHeaders = []msgHeader{
	{},
	{flags: AwaitResponse | StartedSend | OnPeer, senderIndex: 1},
	{flags: OneShot | StartedSend | Response | BackOnSender, senderIndex: 1, senderUnique: 1, recipientIndex: 1, recipientUnique: 1},
	{flags: Flags(math.MaxUint32), url: "relay/peer-1", senderIndex: 192, senderUnique: math.MaxUint32, recipientIndex: 65536, recipientUnique: 256},
	{url: strings.Repeat("u", 300), senderIndex: 5, recipientUnique: 1 << 24},
}

// encodeHeader encodes h as the writer does (a serde.Encoder running
// (*msgHeader).Serde) through a buffer of bufSize bytes.
func encodeHeader(t *testing.T, h *msgHeader, bufSize int) []byte {
	t.Helper()
	enc := serde.NewEncoder(nil, serde.Limits{})
	enc.Reset(h)
	var out []byte
	buf := make([]byte, bufSize)
	for i := 0; ; i++ {
		require.Less(t, i, 10000, "encoder makes no progress")
		n, done, err := enc.Encode(buf)
		require.NoError(t, err)
		out = append(out, buf[:n]...)
		if done {
			return out
		}
	}
}

// decodeHeader decodes a header from b as the reader does (a serde.Decoder
// running (*msgHeader).Serde), step bytes at a time. n is the bytes used.
func decodeHeader(b []byte, limits serde.Limits, step int) (h msgHeader, n int, done bool, err error) {
	dec := serde.NewDecoder(nil, limits)
	dec.Reset(&h)
	for !done && n < len(b) {
		k, d, err := dec.Decode(b[n:min(len(b), n+step)])
		if err != nil {
			return msgHeader{}, 0, false, err
		}
		n, done = n+k, d
		if k == 0 && !done {
			return h, n, false, nil // wants more than a step can give
		}
	}
	return h, n, done, nil
}

// TestProtocolMsgHeader checks the message header codec the writer and the
// reader use: the same bytes whatever the buffer size, decoded back whole
// or in small steps, every proper prefix incomplete, trailing bytes left.
func TestProtocolMsgHeader(t *testing.T) {
	limits := serde.Limits{MaxString: 1024}
	for _, h := range testHeaders {
		want := encodeHeader(t, &h, 4096)
		for _, bufSize := range []int{1, 2, 3, 7, 64} {
			require.Equal(t, hex.EncodeToString(want), hex.EncodeToString(encodeHeader(t, &h, bufSize)), "buffer size %d", bufSize)
		}
		for _, step := range []int{1, 2, 3, 7, 4096} {
			got, n, done, err := decodeHeader(append(want, 0xff), limits, step)
			require.NoError(t, err)
			require.True(t, done, "step %d", step)
			require.Equal(t, len(want), n, "trailing bytes are not consumed")
			require.Equal(t, h, got)
		}
		for i := range len(want) {
			_, _, done, err := decodeHeader(want[:i], limits, 4096)
			require.NoError(t, err, "prefix %d", i)
			require.False(t, done, "prefix %d", i)
		}
	}
	require.Equal(t, "021104000101000000", hex.EncodeToString(encodeHeader(t, &testHeaders[1], 4096)))
}

// TestProtocolMsgHeaderErrors feeds bad headers to the real reader, in a
// NewMessage chunk: each fails with ErrBadMessage and the serde cause.
func TestProtocolMsgHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name, wire string
		maxURL     int
		want       error
	}{
		{"flags wider than u32", "05 0000000001", 16, serde.ErrIntOverflow},
		{"bad url cross", "00 0a 61", 16, serde.ErrBadCross},
		{"url above limit", "00 0905 6162636465 00000000", 4, serde.ErrLimit},
		{"url above limit, bytes not yet received", "00 11 0001", 16, serde.ErrLimit},
		{"sender index wider than u32", "00 00 0801", 16, serde.ErrIntOverflow},
		{"recipient unique wider than u32", "00 00 00 00 00 09", 16, serde.ErrIntOverflow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Protocol: docProtocol(t), Limits: serde.Limits{MaxString: uint64(tc.maxURL)}}
			c, err := cfg.withDefaults()
			require.NoError(t, err)
			e := newWireEnd(t, &c)
			data := mustHex(t, tc.wire)
			payload := appendChunk(nil, cmdNewMessage, 0, data)
			pkt := make([]byte, packetHeaderSize, packetHeaderSize+len(payload))
			putPacketHeader(pkt, packetHeader{typ: packetTypeData, size: len(payload)})
			_, err = e.r.feed(append(pkt, payload...))
			require.ErrorIs(t, err, ErrBadMessage)
			require.ErrorIs(t, err, ErrProtocol)
			require.ErrorIs(t, err, tc.want)
			require.Empty(t, e.trace)
		})
	}
}

// lastCommand returns the last command of the one packet pkt.
func lastCommand(t *testing.T, pkt []byte) command {
	t.Helper()
	p := pkt[packetHeaderSize:]
	var last command
	for len(p) > 0 {
		cmd, n, err := parseCommand(p, docMaxSlot)
		require.NoError(t, err)
		last, p = cmd, p[n:]
	}
	return last
}

// TestProtocolTypeID checks the type id the writer puts before a body, one
// raw byte or two little-endian bytes (Config.TypeIDSize), and that the
// reader reads it back.
func TestProtocolTypeID(t *testing.T) {
	for _, tc := range []struct {
		width int
		id    uint16
		body  string // the EndMessage chunk's data
	}{
		{1, 200, "c8 0902 6869"},
		{2, 0x1234, "3412 0902 6869"},
	} {
		p := NewProtocol()
		require.NoError(t, Register(p, tc.id, func(Context, *docEcho) {}))
		cfg := Config{Protocol: p, TypeIDSize: tc.width}
		c, err := cfg.withDefaults()
		require.NoError(t, err)
		a, b := newWireEnd(t, &c), newWireEnd(t, &c)
		a.send(&docEcho{Text: "hi"}, 0)
		out := a.output(c.BufferSize)
		last := lastCommand(t, out)
		require.Equal(t, uint8(cmdEndMessage), last.code)
		require.Equal(t, hex.EncodeToString(mustHex(t, tc.body)), hex.EncodeToString(last.data), "width %d", tc.width)
		b.input(out)
		require.Len(t, b.msgs, 1)
		require.Equal(t, "hi", b.msgs[0].(*docEcho).Text)
	}
}

// Serde types matching the example message types and the Sample value of
// docs/protocol.md, to check the documented bytes against serde's Encoder
// and Decoder.
type (
	docEcho   struct{ Text string }
	docLookup struct {
		Key   string
		Limit uint32
		Tags  []string
	}
	docLookupResult struct {
		Found bool
		Value int64
		Score float64
	}
	docInner  struct{ A uint8 }
	docSample struct {
		B       bool
		I8      int8
		U16     uint16
		I32     int32
		U64     uint64
		F32     float32
		F64     float64
		S       string
		Raw     []byte
		L       []uint32
		M       map[string]uint8
		Opt     *uint32
		OptS    *string
		Inner   docInner
		Any     serde.Type
		Any2    serde.Type
		F8      uint8
		F16     uint16
		C       uint64
		out     serde.StreamSource // encoding
		in      *bytes.Buffer      // decoding
		version uint32
	}
)

func (m *docEcho) Serde(v *serde.Visitor) { v.String(&m.Text) }

func (m *docLookup) Serde(v *serde.Visitor) {
	v.String(&m.Key)
	v.Uint32(&m.Limit)
	serde.Slice(v, &m.Tags, func(v *serde.Visitor, e *string) { v.String(e) })
}

func (m *docLookupResult) Serde(v *serde.Visitor) {
	v.Bool(&m.Found)
	v.Int64(&m.Value)
	v.Float64(&m.Score)
}

func (m *docInner) Serde(v *serde.Visitor) { v.Uint8(&m.A) }

func (m *docSample) SerdeVersion() uint32 { return 2 }

func (m *docSample) Serde(v *serde.Visitor) {
	m.version = v.Version()
	v.Bool(&m.B)
	v.Int8(&m.I8)
	v.Uint16(&m.U16)
	v.Int32(&m.I32)
	v.Uint64(&m.U64)
	v.Float32(&m.F32)
	v.Float64(&m.F64)
	v.String(&m.S)
	v.Bytes(&m.Raw)
	serde.Slice(v, &m.L, func(v *serde.Visitor, e *uint32) { v.Uint32(e) })
	serde.Map(v, &m.M, func(v *serde.Visitor, k *string) { v.String(k) }, func(v *serde.Visitor, e *uint8) { v.Uint8(e) })
	serde.Optional(v, &m.Opt, func(v *serde.Visitor, e *uint32) { v.Uint32(e) })
	serde.Optional(v, &m.OptS, func(v *serde.Visitor, e *string) { v.String(e) })
	v.Struct(&m.Inner)
	v.Any(&m.Any)
	v.Any(&m.Any2)
	v.Fixed8(&m.F8)
	v.Fixed16(&m.F16)
	v.Cross(&m.C)
	if v.Decoding() {
		v.StreamIn(nopCloser{m.in})
	} else {
		v.StreamOut(m.out)
	}
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// chunkReader returns its chunks one Read at a time, then io.EOF.
type chunkReader struct{ chunks []string }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks = r.chunks[1:]
	return n, nil
}

func serdeEncodeAll(t *testing.T, reg *serde.Registry, v serde.Type) []byte {
	t.Helper()
	enc := serde.NewEncoder(reg, serde.Limits{})
	enc.Reset(v)
	buf := make([]byte, 4096)
	n, done, err := enc.Encode(buf)
	require.NoError(t, err)
	require.True(t, done)
	return buf[:n]
}

func serdeDecodeAll(t *testing.T, reg *serde.Registry, v serde.Type, b []byte) {
	t.Helper()
	dec := serde.NewDecoder(reg, serde.Limits{})
	dec.Reset(v)
	n, done, err := dec.Decode(b)
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, len(b), n)
}

// TestProtocolDocMatchesSerde checks the documented value encodings and
// message bodies against serde's Encoder and Decoder.
func TestProtocolDocMatchesSerde(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("serde panicked (not implemented yet?): %v", r)
		}
	}()
	examples := map[string][]byte{}
	for _, ex := range readDocExamples(t, "../docs/protocol.md") {
		examples[ex.name] = ex.data
	}
	reg := serde.NewRegistry()
	require.NoError(t, reg.Register(5, func() serde.Type { return &docInner{} }))

	x := "x"
	s := &docSample{
		B: true, I8: -2, U16: 300, I32: -1, F32: 1.5, F64: -2, S: "hi", Raw: []byte{0xde, 0xad},
		L: []uint32{1, 300}, M: map[string]uint8{"a": 7}, OptS: &x, Inner: docInner{5},
		Any: &docInner{9}, F8: 0x7f, F16: 0x1234, C: 300, out: &chunkReader{chunks: []string{"ab", "c"}},
	}
	want := examples["value encodings"]
	require.NotEmpty(t, want)
	require.Equal(t, hex.EncodeToString(want), hex.EncodeToString(serdeEncodeAll(t, reg, s)))

	got := &docSample{in: new(bytes.Buffer)}
	serdeDecodeAll(t, reg, got, want)
	require.Equal(t, uint32(2), got.version)
	require.Equal(t, "abc", got.in.String())
	s.out, got.in, s.version, got.version = nil, nil, 0, 0
	require.Equal(t, s, got)

	// Message bodies: the EndMessage chunk of each example is the type id
	// and then the serde encoding of the message.
	for name, m := range map[string]serde.Type{
		"hello request":   &docEcho{Text: "hello"},
		"hello response":  &docEcho{Text: "hello"},
		"lookup request":  &docLookup{Key: "user:42", Limit: 10, Tags: []string{"a", "b"}},
		"lookup response": &docLookupResult{Found: true, Value: -5, Score: 0.5},
	} {
		pkt := examples[name]
		require.NotEmpty(t, pkt, name)
		last := lastCommand(t, pkt)
		require.Equal(t, uint8(cmdEndMessage), last.code, name)
		require.Equal(t, hex.EncodeToString(last.data[1:]), hex.EncodeToString(serdeEncodeAll(t, nil, m)), name)
	}
}

// Test-only encoders: they build peer input for the reader tests and an
// independent oracle for the writer's in-place chunks. The engine never
// calls them (its writer uses putChunkStart and finishChunk, and it sends
// no AckdCount), so they do not live in wire.go.

// appendChunk appends a whole chunk: code, slot, u16 length and data (at
// most maxChunkData bytes).
func appendChunk(b []byte, code uint8, slot uint32, data []byte) []byte {
	if len(data) > maxChunkData {
		panic(fmt.Sprintf("ipc: appendChunk: chunk length %d out of range", len(data)))
	}
	b = append(b, code)
	b = serde.AppendCross(b, uint64(slot))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// appendAckdCount appends an AckdCount command returning count credits.
func appendAckdCount(b []byte, count uint8) []byte {
	return append(b, cmdAckdCount, count)
}
