package ipc

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// capturedPackets are the four packets captured from a live C++ SolidFrame
// mprpc peer (echo example, Protocol<uint8_t>), copied from
// /work/shared/design/solidframe-captures.md. Message type 1 has one string
// field.
var capturedPackets = []struct {
	name      string
	hex       string
	flags     Flags
	sender    [2]uint32 // index, unique
	recipient [2]uint32
	text      string
}{
	{
		name:   "1 C->S hello request",
		hex:    "01001900 02 00 0900 021104 00 0101 00 00 00 05 00 0800 01 0905 68656c6c6f",
		flags:  AwaitResponse | StartedSend | OnPeer, // 0x0411
		sender: [2]uint32{1, 0},
		text:   "hello",
	},
	{
		name:      "2 S->C hello response",
		hex:       "01001a00 02 00 0a00 029808 00 0101 00 0101 00 05 00 0800 01 0905 68656c6c6f",
		flags:     OneShot | StartedSend | Response | BackOnSender, // 0x0898
		sender:    [2]uint32{1, 0},
		recipient: [2]uint32{1, 0},
		text:      "hello",
	},
	{
		name:   "3 C->S ab request",
		hex:    "01001700 02 00 0a00 021104 00 0101 0101 00 00 05 00 0500 01 0902 6162",
		flags:  AwaitResponse | StartedSend | OnPeer,
		sender: [2]uint32{1, 1},
		text:   "ab",
	},
	{
		name:      "4 S->C ab response",
		hex:       "01001900 02 00 0c00 029808 00 0101 0101 0101 0101 05 00 0500 01 0902 6162",
		flags:     OneShot | StartedSend | Response | BackOnSender,
		sender:    [2]uint32{1, 1},
		recipient: [2]uint32{1, 1},
		text:      "ab",
	},
}

// mustHex decodes hex with spaces, newlines and '#' comments.
func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := parseHexBlock(s)
	require.NoError(tb, err)
	return b
}

func TestCapturePackets(t *testing.T) {
	require.Equal(t, Flags(0x0411), capturedPackets[0].flags)
	require.Equal(t, Flags(0x0898), capturedPackets[1].flags)
	for _, c := range capturedPackets {
		t.Run(c.name, func(t *testing.T) {
			pkt := mustHex(t, c.hex)

			// Packet header.
			ph, err := parsePacketHeader(pkt, maxPacketPayload)
			require.NoError(t, err)
			require.Equal(t, packetHeader{typ: packetTypeData, flags: 0, size: len(pkt) - packetHeaderSize}, ph)
			payload := pkt[packetHeaderSize:]

			// Two commands: NewMessage (header) then EndMessage (body), slot 0.
			hc, n, err := parseCommand(payload, 192)
			require.NoError(t, err)
			require.Equal(t, uint8(cmdNewMessage), hc.code)
			require.Equal(t, uint32(0), hc.slot)
			bc, m, err := parseCommand(payload[n:], 192)
			require.NoError(t, err)
			require.Equal(t, uint8(cmdEndMessage), bc.code)
			require.Equal(t, uint32(0), bc.slot)
			require.Equal(t, len(payload), n+m)

			// Message header: the whole NewMessage chunk.
			h, hn, err := parseMsgHeader(hc.data, 0)
			require.NoError(t, err)
			require.Equal(t, len(hc.data), hn)
			require.Equal(t, msgHeader{
				flags:           c.flags,
				senderIndex:     c.sender[0],
				senderUnique:    c.sender[1],
				recipientIndex:  c.recipient[0],
				recipientUnique: c.recipient[1],
			}, h)

			// Body: 1-byte type id 1, then the string (checked size, bytes).
			id, ok := parseTypeID(bc.data, typeIDWidth8)
			require.True(t, ok)
			require.Equal(t, uint16(1), id)
			size, sn, err := serde.ParseCross(bc.data[1:])
			require.NoError(t, err)
			require.Equal(t, uint64(len(c.text)), size)
			require.Equal(t, c.text, string(bc.data[1+sn:]))

			// Re-encode from the decoded values.
			out := make([]byte, packetHeaderSize, 64)
			out = appendChunk(out, cmdNewMessage, hc.slot, appendMsgHeader(nil, &h))
			start := len(out)
			out = out[:start+chunkHeaderMax]
			off := putChunkStart(out[start:], cmdMessage, bc.slot)
			out = out[:start+off]
			out = out[:len(out)+putTypeID(out[len(out):cap(out)], typeIDWidth8, id)]
			out = serde.AppendCross(out, uint64(len(c.text)))
			out = append(out, c.text...)
			finishChunk(out[start:], cmdEndMessage, len(out)-start-off)
			putPacketHeader(out, packetHeader{typ: packetTypeData, size: len(out) - packetHeaderSize})
			require.Equal(t, hex.EncodeToString(pkt), hex.EncodeToString(out))
		})
	}
}
