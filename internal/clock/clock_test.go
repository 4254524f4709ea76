package clock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestManualRunsDueCallsInOrder(t *testing.T) {
	start := time.Unix(1000, 0)
	m := NewManual(start)
	var got []string
	m.AfterFunc(3*time.Second, func() { got = append(got, "3s") })
	m.AfterFunc(time.Second, func() { got = append(got, "1s-a") })
	m.AfterFunc(time.Second, func() { got = append(got, "1s-b") })
	stopped := m.AfterFunc(2*time.Second, func() { got = append(got, "stopped") })
	m.AfterFunc(0, func() {
		got = append(got, "0s")
		// Scheduled by a call, due within the same Advance: runs in it.
		m.AfterFunc(500*time.Millisecond, func() { got = append(got, "0.5s") })
	})
	require.Equal(t, 5, m.Pending())
	require.True(t, stopped.Stop())
	require.False(t, stopped.Stop())

	m.Advance(time.Second)
	require.Equal(t, []string{"0s", "0.5s", "1s-a", "1s-b"}, got)
	require.Equal(t, start.Add(time.Second), m.Now())
	when, ok := m.Next()
	require.True(t, ok)
	require.Equal(t, start.Add(3*time.Second), when)

	m.Advance(1999 * time.Millisecond)
	require.Len(t, got, 4, "not yet due")
	m.Advance(time.Millisecond)
	require.Equal(t, "3s", got[4])
	require.Zero(t, m.Pending())
	_, ok = m.Next()
	require.False(t, ok)
}

func TestManualReset(t *testing.T) {
	m := NewManual(time.Unix(0, 0))
	n := 0
	tm := m.AfterFunc(time.Second, func() { n++ })
	require.True(t, tm.Reset(5*time.Second))
	m.Advance(4 * time.Second)
	require.Zero(t, n)
	m.Advance(time.Second)
	require.Equal(t, 1, n)
	require.False(t, tm.Reset(time.Second), "already ran")
	m.Advance(time.Second)
	require.Equal(t, 2, n)
	m.Set(time.Unix(0, 0)) // never backwards
	require.Equal(t, time.Unix(6, 0), m.Now())
}

func TestManualWaitPending(t *testing.T) {
	m := NewManual(time.Unix(0, 0))
	done := make(chan struct{})
	go m.AfterFunc(time.Second, func() {})
	require.True(t, m.WaitPending(1, done))
	close(done)
	require.False(t, m.WaitPending(2, done))
}

func TestReal(t *testing.T) {
	require.Equal(t, Real(), Or(nil))
	m := NewManual(time.Unix(0, 0))
	require.Same(t, m, Or(m))
	fired := make(chan struct{})
	tm := Real().AfterFunc(0, func() { close(fired) })
	<-fired
	require.False(t, tm.Stop())
	require.False(t, Real().Now().IsZero())
}
