package ipc

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// FuzzPacket feeds arbitrary bytes through the reader's parsing path: packet
// headers, the commands of each payload, and the message header in each
// chunk. Nothing may panic; every error must be a named protocol error, and
// whatever parses must re-encode to bytes that parse to the same values.
// Seeds: testdata/fuzz/FuzzPacket (the four captured packets, the
// docs/protocol.md examples and corrupt variants).
func FuzzPacket(f *testing.F) {
	for _, c := range capturedPackets {
		f.Add(mustHex(f, c.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) >= packetHeaderSize {
			ph, err := parsePacketHeader(b, maxPacketPayload)
			if err != nil {
				require.ErrorIs(t, err, ErrBadPacketHeader)
				return
			}
			hb := make([]byte, packetHeaderSize)
			putPacketHeader(hb, ph)
			require.Equal(t, b[:packetHeaderSize], hb)

			end := min(len(b), packetHeaderSize+ph.size) // a short payload exercises truncation
			fuzzPayload(t, b[packetHeaderSize:end])
			b = b[end:]
		}
	})
}

func fuzzPayload(t *testing.T, p []byte) {
	for len(p) > 0 {
		cmd, n, err := parseCommand(p, docMaxSlot)
		if err != nil {
			require.ErrorIs(t, err, ErrProtocol)
			require.Zero(t, n)
			return
		}
		require.Positive(t, n)
		require.LessOrEqual(t, n, len(p))
		p = p[n:]

		// Re-encode the command and parse it back to the same values.
		var out []byte
		switch cmd.code {
		case cmdNewMessage, cmdFullMessage, cmdMessage, cmdEndMessage:
			out = appendChunk(nil, cmd.code, cmd.slot, cmd.data)
			fuzzMsgHeader(t, cmd.data)
		case cmdCancelMessage:
			out = appendCancelMessage(nil, cmd.slot)
		case cmdCancelRequest:
			out = appendCancelRequest(nil, cmd.index, cmd.unique)
		case cmdAckdCount:
			out = appendAckdCount(nil, cmd.count)
		case cmdUpdate:
			out = []byte{cmdUpdate}
		default:
			t.Fatalf("parseCommand returned unknown code %d", cmd.code)
		}
		again, m, err := parseCommand(out, docMaxSlot)
		require.NoError(t, err)
		require.Equal(t, len(out), m)
		if cmd.data != nil && len(cmd.data) == 0 {
			cmd.data = again.data // both empty
		}
		require.Equal(t, cmd, again)
	}
}

// fuzzMsgHeader decodes chunk data as a message header with the reader's
// codec (serde running (*msgHeader).Serde): an error must be ErrBadMessage
// material (a serde error), and a decoded header must re-encode, with the
// writer's codec, to bytes that decode to the same header.
func fuzzMsgHeader(t *testing.T, data []byte) {
	limits := serde.Limits{MaxString: 1024}
	h, n, done, err := decodeHeader(data, limits, len(data)+1)
	if err != nil || !done {
		return // the reader wraps any error in ErrBadMessage (TestProtocolMsgHeaderErrors)
	}
	require.LessOrEqual(t, n, len(data))
	enc := encodeHeader(t, &h, 64)
	require.LessOrEqual(t, len(enc), n, "the shortest encoding is never longer")
	again, m, done, err := decodeHeader(enc, limits, len(enc)+1)
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, len(enc), m)
	require.Equal(t, h, again)
}
