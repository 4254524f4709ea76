package test

import (
	"context"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// TestReconnectBackoffClock: against a port with nothing listening, a
// queued request keeps the pool retrying with exponential backoff
// (ReconnectMin 5 s doubling up to ReconnectMax 40 s) and "equal jitter":
// the wait armed after failure k is in [d/2, d], d = min(5 s·2^(k-1), 40 s).
// The clock is a clock.Manual (ipc.Config.Clock): the test reads each wait
// off the clock's next deadline, so no real duration is measured, and
// moves the clock to it to trigger the next attempt, which must not come
// earlier. Canceling the request stops the retries.
func TestReconnectBackoffClock(t *testing.T) {
	const (
		minD, maxD = 5 * time.Second, 40 * time.Second
		failures   = 8
	)
	addr := plClosedPorts(t, 1)[0]
	clk := newKAClock()
	events := newPLEvents()
	client := startService(t, ipc.Config{
		Protocol:     plClientProto(),
		ReconnectMin: minD,
		ReconnectMax: maxD,
		PoolEvent:    events.add,
		Clock:        clk,
	})

	results := make(chan error, 2)
	id, err := ipc.SendRequestContext(context.Background(), client, addr, testmsg.New(0, 100), 0,
		func(req, resp *testmsg.Message, err error) { results <- err })
	require.NoError(t, err)
	for k := 1; k <= failures; k++ {
		events.waitCount(t, ipc.PoolConnectFailed, k)
		clk.armed(t, 1, "the backoff timer")
		next, ok := clk.Next()
		require.True(t, ok)
		wait := next.Sub(clk.Now())
		d := min(minD<<(k-1), maxD)
		require.GreaterOrEqual(t, wait, d/2, "wait after failure %d", k)
		require.LessOrEqual(t, wait, d, "wait after failure %d", k)
		st, _ := client.PoolStats(addr)
		require.Equal(t, uint64(k), st.Dials, "no attempt before the backoff ends")
		clk.Advance(wait - time.Nanosecond)
		st, _ = client.PoolStats(addr)
		require.Equal(t, uint64(k), st.Dials, "attempt %d before its backoff ended", k+1)
		clk.Advance(time.Nanosecond)
	}
	for _, f := range events.of(ipc.PoolConnectFailed) {
		require.Error(t, f.Err)
	}

	require.NoError(t, client.Cancel(id))
	select {
	case err := <-results:
		require.ErrorIs(t, err, ipc.ErrCanceled)
		var me *ipc.MessageError
		require.ErrorAs(t, err, &me)
		require.False(t, me.Started)
	case <-time.After(deadline):
		t.Fatal("the canceled request never completed")
	}
	require.ErrorIs(t, client.Cancel(id), ipc.ErrUnknownMessage)

	// With nothing queued the pool stops retrying: the attempt under way
	// may still fail, after which no backoff is armed and no dial follows,
	// however far the clock moves.
	events.waitCount(t, ipc.PoolConnectFailed, failures+1)
	clk.Advance(10 * maxD)
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.Zero(t, st.Queued)
	require.Zero(t, st.Pending)
	require.Equal(t, uint64(failures+1), st.Dials, "the pool kept dialing with nothing to send")
	require.Zero(t, clk.Pending(), "a backoff timer is still armed")
	require.Empty(t, results, "extra completion")
}
