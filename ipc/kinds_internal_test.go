package ipc

import (
	"errors"
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// Socket-free ports of SolidFrame's protocol_synchronous and protocol_cancel:
// a writer and a reader joined by one 4 KiB buffer, as in TestProtocolBasic.

// syncSizes is protocol_synchronous's table: 100000, then 16384000 halving
// down to 2000.
var syncSizes = []int{100000, 16384000, 8192000, 4096000, 2048000, 1024000, 512000, 256000, 128000, 64000, 32000, 16000, 8000, 4000, 2000}

// pipeCompletions completes what the writer finished or failed during the
// last fill, as conn.runCompletions does on a connection's loop.
func pipeCompletions(w *writer) {
	for _, st := range w.done {
		st.complete(nil, nil)
	}
	w.done = w.done[:0]
	for _, f := range w.failed {
		f.st.fail(f.kind, f.cause)
	}
	w.failed = w.failed[:0]
}

// TestProtocolSynchronous ports protocol_synchronous: 16 synchronous
// messages (syncSizes, the 16th repeating the first size), 10 in flight, a
// new one queued on every receipt. They arrive in send order, intact, and
// each completes once without error.
func TestProtocolSynchronous(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	ev := &pipeEvents{t: t}
	r := newReader(cfg, ev)

	const total, inFlight = 16, 10
	completions := make([]int, total)
	sent := 0
	send := func() {
		idx := sent
		m := testmsg.New(idx, syncSizes[idx%len(syncSizes)])
		st := &msgStub{msg: m, ti: testTI, flags: Synchronous, state: OnPeer, done: func(err error) {
			require.NoError(t, err)
			completions[idx]++
		}}
		require.True(t, w.enqueue(st))
		sent++
	}
	for sent < inFlight {
		send()
	}
	buf := make([]byte, cfg.BufferSize)
	received := 0
	for received < total {
		n, err := w.fill(buf)
		require.NoError(t, err)
		require.NotZero(t, n, "writer stalled with %d received", received)
		used, err := r.feed(buf[:n])
		require.NoError(t, err)
		require.Equal(t, n, used)
		pipeCompletions(w)
		for ; received < len(ev.msgs); received++ {
			m := ev.msgs[received]
			require.Equal(t, uint32(received), m.Idx, "synchronous messages arrive in send order")
			require.NoError(t, testmsg.Verify(m, syncSizes[int(m.Idx)%len(syncSizes)]))
			require.Equal(t, OnPeer|StartedSend|Synchronous, ev.hdrs[received].flags)
			if sent < total {
				send()
			}
		}
	}
	for idx, n := range completions {
		require.Equal(t, 1, n, "message %d completions", idx)
	}
	require.False(t, w.busy())
	require.False(t, w.hasOutput())
}

// cancelStub is one row of protocol_cancel's table.
type cancelStub struct {
	size   int
	cancel bool
	flags  Flags
}

// protocolCancelTable is protocol_cancel's table (SolidFrame
// test_protocol_cancel.cpp): 10 of 15 rows are canceled.
var protocolCancelTable = []cancelStub{
	{100000, false, 0},
	{16384000, false, 0},
	{8192000, true, Synchronous},
	{4096000, true, 0},
	{2048000, false, 0},
	{1024000, true, 0},
	{512000, false, Synchronous},
	{256000, true, 0},
	{128000, true, 0},
	{64000, true, 0},
	{32000, false, 0},
	{16000, true, 0},
	{8000, true, 0},
	{4000, true, 0},
	{2000, true, 0},
}

// TestProtocolCancel ports protocol_cancel: 16 messages (the table, then
// its first row again) queued in a writer that multiplexes 16. After the
// packet that delivers the first message, every flagged message still in
// the writer is canceled (writer.cancel, what Service.Cancel runs on the
// connection's loop), and the CancelMessage commands the writer then sends
// go through the reader.
//
// Asserted: each message completes exactly once; the first message received
// is intact whatever its flag (SolidFrame exempts it too: it may be a
// flagged one that finished before the cancel); every other flagged message
// is canceled, completes with ErrCanceled and is never received; every
// unflagged message completes without error and arrives intact; a
// CancelMessage reaches the reader for each canceled message that had
// started (the reader drops its partial bytes: no slot is left busy, and the
// slot numbers match) and for no other; the synchronous row 6 still goes
// after row 2 (synchronous, canceled) leaves.
func TestProtocolCancel(t *testing.T) {
	cfg := testConfig(t, func(c *Config) { c.MaxMultiplex = 16 })
	w := newWriter(cfg)
	ev := &pipeEvents{t: t}
	r := newReader(cfg, ev)

	const total = 16
	row := func(idx int) cancelStub { return protocolCancelTable[idx%len(protocolCancelTable)] }
	stubs := make([]*msgStub, total)
	errs := make([]error, total)
	completions := make([]int, total)
	for idx := range total {
		st := &msgStub{msg: testmsg.New(idx, row(idx).size), ti: testTI, flags: row(idx).flags, state: OnPeer}
		st.done = func(err error) {
			errs[idx] = err
			completions[idx]++
		}
		stubs[idx] = st
		require.True(t, w.enqueue(st), "message %d", idx)
	}

	buf := make([]byte, cfg.BufferSize)
	canceled := map[int]bool{}       // canceled by the test
	startedSlots := map[uint32]int{} // slot -> message, for messages canceled after they started
	first := -1
	for w.hasOutput() {
		n, err := w.fill(buf)
		require.NoError(t, err)
		require.NotZero(t, n)
		used, err := r.feed(buf[:n])
		require.NoError(t, err)
		require.Equal(t, n, used)
		pipeCompletions(w) // what this packet finished
		if first < 0 && len(ev.msgs) > 0 {
			first = int(ev.msgs[0].Idx)
			for idx, st := range stubs {
				if !row(idx).cancel || st.completed.Load() {
					continue
				}
				if ws := w.slots[st.slot]; ws.st == st && (ws.phase == slotHeader || ws.phase == slotBody) {
					startedSlots[uint32(st.slot)] = idx
				}
				require.True(t, w.cancel(st.slot, st, ErrCanceled, nil), "message %d is in the writer", idx)
				canceled[idx] = true
			}
			require.NotEmpty(t, startedSlots, "some flagged messages were being written when canceled")
			pipeCompletions(w) // the cancels
		}
	}

	received := map[int]int{}
	for _, m := range ev.msgs {
		idx := int(m.Idx)
		received[idx]++
		require.NoError(t, testmsg.Verify(m, row(idx).size))
	}
	for idx := range total {
		require.Equal(t, 1, completions[idx], "message %d completions", idx)
		switch {
		case idx == first:
			require.Equal(t, 1, received[idx])
			require.NoError(t, errs[idx])
		case row(idx).cancel:
			require.True(t, canceled[idx], "flagged message %d finished before the cancel", idx)
			require.Zero(t, received[idx], "canceled message %d was delivered", idx)
			require.ErrorIs(t, errs[idx], ErrCanceled)
			var me *MessageError
			require.True(t, errors.As(errs[idx], &me))
			require.Equal(t, stubs[idx].started, me.Started)
		default:
			require.Equal(t, 1, received[idx], "message %d deliveries", idx)
			require.NoError(t, errs[idx], "message %d", idx)
		}
	}
	// The reader saw one CancelMessage per message canceled after it
	// started, for that message's slot, and dropped its partial bytes.
	require.Len(t, ev.canceled, len(startedSlots))
	for _, slot := range ev.canceled {
		_, ok := startedSlots[slot]
		require.True(t, ok, "CancelMessage for slot %d", slot)
	}
	for i, s := range r.slots {
		require.True(t, s == nil || s.phase == rIdle, "reader slot %d left busy", i)
	}
	// Row 6 (synchronous) was delivered after row 2 (synchronous) left.
	require.Equal(t, 1, received[6])
	require.False(t, w.busy())
	t.Logf("first received %d; %d canceled, %d of them after they started", first, len(canceled), len(startedSlots))
}

// TestCanceledWaitsCountAgainstLimit (defect 2): a request canceled while
// it waits keeps its slot until its response arrives, and counts against
// MaxResponseWait meanwhile; one-way messages are not held back by it.
func TestCanceledWaitsCountAgainstLimit(t *testing.T) {
	cfg := testConfig(t, func(c *Config) { c.MaxMultiplex, c.MaxResponseWait = 2, 2 })
	w := newWriter(cfg)
	req := func(idx int) *msgStub {
		return &msgStub{msg: testmsg.New(idx, 64), ti: testTI, flags: AwaitResponse, state: OnPeer}
	}
	buf := make([]byte, cfg.BufferSize)
	st1 := req(1)
	require.True(t, w.enqueue(st1))
	_, err := w.fill(buf)
	require.NoError(t, err)
	require.Equal(t, 1, w.waiting)
	slot, unique := st1.slot, w.slots[st1.slot].unique
	require.True(t, w.cancel(st1.slot, st1, ErrCanceled, nil))
	pipeCompletions(w)
	require.True(t, st1.completed.Load())
	require.Equal(t, 1, w.canceledWaits)

	require.True(t, w.enqueue(req(2)), "one canceled wait and no other request: room for one")
	require.False(t, w.canAccept(AwaitResponse), "the canceled wait counts against MaxResponseWait")
	require.True(t, w.canAccept(0), "one-way messages are not held back")

	// The late response frees the slot and the count.
	st, canceled := w.takeResponse(uint32(slot)+1, unique, false)
	require.Nil(t, st)
	require.True(t, canceled)
	require.Zero(t, w.canceledWaits)
	require.True(t, w.canAccept(AwaitResponse))
}
