package ipc

import (
	"bytes"
	"testing"

	"github.com/ipcframe/ipcframe/serde"

	"github.com/stretchr/testify/require"
)

// recIntoMsg is a small recyclable message: a received one decodes into
// the array its previous use left, so its value has room (ValueSpace)
// before its bytes arrive, as the 1 KiB echo's messages do. Tail makes
// the value's last chunk hold more than the value.
type recIntoMsg struct {
	Recyclable
	Seq  uint32
	Data []byte
	Tail uint32
}

func (m *recIntoMsg) Serde(v *serde.Visitor) {
	v.Uint32(&m.Seq)
	v.Bytes(&m.Data)
	v.Uint32(&m.Tail)
}

// TestReadIntoSmallMessagesNoPlan: small messages never get a direct
// read of their own. Recyclable 1 KiB messages, each value with room in
// its recycled array, arrive in packets of at most 600 bytes (a message
// spans packets, as the 1 KiB echo's do at 64 KiB packets) and reads that
// end at a packet's end or inside the next: with such a message under
// way the reader plans no read (planRead returns nothing), so gnet's next
// read takes all the socket holds. bulk12's plans (restored by the
// thirteenth session) read a cut packet's rest alone, one system call per
// small packet (1 KiB echo at c=1024 lost up to a third of its rate), and
// main's, at a packet's end, predicted a packet of the small value.
func TestReadIntoSmallMessagesNoPlan(t *testing.T) {
	const size, pkt = 1 << 10, 600
	p := NewProtocol()
	require.NoError(t, Register(p, 1, func(Context, *recIntoMsg) {}))
	cfg, err := Config{Protocol: p}.withDefaults()
	require.NoError(t, err)
	wire := func(seqs ...uint32) []byte {
		w := newWireEnd(t, &cfg)
		for _, s := range seqs {
			w.send(&recIntoMsg{Seq: s, Data: segPayload(size, byte(s)), Tail: s * 3}, 0)
		}
		return w.output(packetHeaderSize + pkt)
	}
	e := newWireEnd(t, &cfg)
	e.c.r, e.r.direct = e.r, true
	// Two messages delivered and given back: the next ones decode into
	// their arrays.
	require.NoError(t, e.c.feed(wire(1, 2)))
	require.Len(t, e.msgs, 2)
	for _, m := range e.msgs {
		m.(*recIntoMsg).Release()
	}
	roomy := func() int { // messages under way whose value has room
		n := 0
		for _, s := range e.r.slots {
			if s != nil && s.phase == rBody && len(s.dec.ValueSpace()) > 0 {
				n++
			}
		}
		return n
	}

	one := wire(3)
	end := intoPacketEnd(t, one, 0)
	require.Less(t, end, len(one), "the message spans packets")
	require.NoError(t, e.c.feed(one[:end]))
	require.Equal(t, 1, roomy(), "the message under way decodes into a recycled array")
	require.Empty(t, e.c.rest)
	require.Empty(t, e.r.planRead(e.c.rest), "no read planned at a packet's end")

	cut := end + (len(one)-end)/2
	require.NoError(t, e.c.feed(one[end:cut]))
	require.Equal(t, 1, roomy())
	require.NotEmpty(t, e.c.rest, "a cut packet waits")
	require.Empty(t, e.r.planRead(e.c.rest), "no read planned for a cut packet of a small message")
	require.NoError(t, e.c.feed(one[cut:]))

	require.Len(t, e.msgs, 3)
	m := e.msgs[2].(*recIntoMsg)
	require.True(t, bytes.Equal(segPayload(size, 3), m.Data) && m.Tail == 9, "message intact")
}
