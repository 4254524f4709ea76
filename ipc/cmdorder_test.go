package ipc

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/internal/testmsg"
)

// TestPacketCommandOrder pins the order docs/protocol.md §3 ("Order inside
// a packet") gives for the commands of one packet when all are pending: one
// AckdCount, the CancelRequests, the Window grants, the WindowStarts, the
// CancelMessages, then message chunks.
func TestPacketCommandOrder(t *testing.T) {
	w := newWriter(testConfig(t, nil))
	buf := make([]byte, 4<<10)
	// A large message whose body is under way in slot 0 when the peer's
	// hello arrives: its WindowStart is pending.
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(0, 1<<20), ti: testTI, state: OnPeer}))
	for w.slots[0].phase != slotBody {
		_, err := w.fill(buf)
		require.NoError(t, err)
	}
	w.peerHello()
	require.True(t, w.slots[0].startPending)
	w.acks = 1
	w.cancelReqs = append(w.cancelReqs, reqID{7, 300})
	w.windows = append(w.windows, windowGrant{slot: 3, unique: 1, credit: 64 << 10})
	w.cancelMsgs = append(w.cancelMsgs, 5)

	n, err := w.fill(buf)
	require.NoError(t, err)
	p := buf[packetHeaderSize:n]
	var codes []uint8
	for len(p) > 0 {
		cmd, k, err := parseCommand(p, 1<<20)
		require.NoError(t, err)
		codes = append(codes, cmd.code)
		p = p[k:]
	}
	require.Equal(t, []uint8{cmdAckdCount, cmdCancelRequest, cmdWindow, cmdWindowStart, cmdCancelMessage, cmdMessage}, codes)
}
