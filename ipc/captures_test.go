package ipc

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

// capturedPackets are the four packets captured from a live C++ SolidFrame
// mprpc peer (echo example, Protocol<uint8_t>), copied from
// /work/shared/design/solidframe-captures.md. Message type 1 has one string
// field (docEcho here).
var capturedPackets = []struct {
	name string
	hex  string
}{
	{"1 C->S hello request", "01001900 02 00 0900 021104 00 0101 00 00 00 05 00 0800 01 0905 68656c6c6f"},
	{"2 S->C hello response", "01001a00 02 00 0a00 029808 00 0101 00 0101 00 05 00 0800 01 0905 68656c6c6f"},
	{"3 C->S ab request", "01001700 02 00 0a00 021104 00 0101 0101 00 00 05 00 0500 01 0902 6162"},
	{"4 S->C ab response", "01001900 02 00 0c00 029808 00 0101 0101 0101 0101 05 00 0500 01 0902 6162"},
}

// mustHex decodes hex with spaces, newlines and '#' comments.
func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := parseHexBlock(s)
	require.NoError(tb, err)
	return b
}

// TestCapturePackets replays the captured exchange through the engine's
// real writer and reader: the client's writer must produce packets 1 and 3
// byte for byte, the server's writer (answering through the Respond path)
// packets 2 and 4; each packet is read by the other side's reader, which
// must decode the documented header values and complete the request.
func TestCapturePackets(t *testing.T) {
	client, server := newWirePair(t)
	for i, text := range []string{"hello", "ab"} {
		req, resp := capturedPackets[2*i], capturedPackets[2*i+1]

		client.request(&docEcho{Text: text}, 0)
		out := client.output(client.svc.cfg.BufferSize)
		require.Equal(t, hex.EncodeToString(mustHex(t, req.hex)), hex.EncodeToString(out), req.name)

		server.trace = nil
		server.input(out)
		unique := uint32(i) // the client's slot 0, used once before
		require.Equal(t, []string{
			headerTrace(AwaitResponse|StartedSend|OnPeer, 1, unique, 0, 0), // 0x0411
			`message Echo{text="` + text + `"}`,
		}, server.trace, req.name)
		require.Len(t, server.msgs, i+1)

		server.respond(i, server.msgs[i])
		out = server.output(server.svc.cfg.BufferSize)
		require.Equal(t, hex.EncodeToString(mustHex(t, resp.hex)), hex.EncodeToString(out), resp.name)

		client.trace = nil
		client.input(out)
		require.Equal(t, []string{
			headerTrace(OneShot|StartedSend|Response|BackOnSender, 1, unique, 1, unique), // 0x0898
			`message Echo{text="` + text + `"}`,
		}, client.trace, resp.name)
		require.Len(t, client.resps, i+1, "the response completes the request")
		require.Equal(t, text, client.resps[i].(*docEcho).Text)
		require.False(t, client.w.busy())
		require.False(t, server.w.busy())
	}
	require.Equal(t, Flags(0x0411), AwaitResponse|StartedSend|OnPeer)
	require.Equal(t, Flags(0x0898), OneShot|StartedSend|Response|BackOnSender)
}

// headerTrace is the trace line of wireEnd.onHeader.
func headerTrace(f Flags, si, su, ri, ru uint32) string {
	return (&wireEnd{}).headerLine(&msgHeader{flags: f, senderIndex: si, senderUnique: su, recipientIndex: ri, recipientUnique: ru})
}
