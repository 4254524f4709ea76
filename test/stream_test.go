package test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/heappeak"
	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// TestStream2GiBBoundedHeap sends one message whose stream field carries
// 2 GiB generated on the fly, between two services on loopback. The
// receiver hashes what it gets and acknowledges with the hash; the heap of
// the process (both services) must never grow by more than 64 MiB: neither
// side holds the message.
func TestStream2GiBBoundedHeap(t *testing.T) {
	const size = 2 << 30
	sp := ipc.NewProtocol()
	hol.RegisterBulk(sp, true)
	server := startService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	cp := ipc.NewProtocol()
	hol.RegisterBulk(cp, false)
	client := startService(t, ipc.Config{Protocol: cp})

	heap := heappeak.Start(10 * time.Millisecond)

	start := time.Now()
	err := hol.SendLarge(context.Background(), client, server.Addr().String(), size, nil, true)
	mb := float64(size) / time.Since(start).Seconds() / 1e6
	growth := heap.Stop()
	require.NoError(t, err)
	t.Logf("2 GiB stream at %.0f MB/s, heap growth %.1f MiB", mb, float64(growth)/(1<<20))
	require.LessOrEqual(t, growth, int64(64<<20))
}

// TestSendLargeChecksTheHash: hol.SendLarge (the stream workload of
// cmd/bench and TestStream2GiBBoundedHeap) fails with hol.ErrBadAck when the
// receiver's hash differs from the sender's, and succeeds when it matches.
func TestSendLargeChecksTheHash(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		sp := ipc.NewProtocol()
		ipc.MustRegister(sp, 11, func(ctx ipc.Context, m *hol.StreamMsg) {
			s := m.Sink.Sum()
			if corrupt {
				s[0] ^= 1
			}
			_ = ctx.Respond(&hol.AckMsg{N: uint64(m.Sink.N), Sum: s})
		})
		ipc.MustRegister[hol.AckMsg](sp, 12, nil)
		server := startService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
		cp := ipc.NewProtocol()
		hol.RegisterBulk(cp, false)
		client := startService(t, ipc.Config{Protocol: cp})
		err := hol.SendLarge(context.Background(), client, server.Addr().String(), 3<<20+5, nil, true)
		if corrupt {
			require.ErrorIs(t, err, hol.ErrBadAck)
		} else {
			require.NoError(t, err)
		}
	}
}

// progressSink counts the stream bytes it receives and signals once when
// they pass at.
type progressSink struct {
	n      int64
	at     int64
	passed chan struct{}
	closed *atomic.Bool
}

func (s *progressSink) Write(p []byte) (int, error) {
	before := s.n
	s.n += int64(len(p))
	if before < s.at && s.n >= s.at {
		close(s.passed)
	}
	return len(p), nil
}

func (s *progressSink) Close() error { s.closed.Store(true); return nil }

// cancelStreamMsg is a stream message whose receiving sink is progressSink.
type cancelStreamMsg struct {
	src  *countingSource
	sink *progressSink
}

// cancelSinks hands the test's sink to the decoder of the next message.
var cancelSinks = make(chan *progressSink, 1)

func (m *cancelStreamMsg) Serde(v *serde.Visitor) {
	if v.Decoding() {
		if m.sink == nil {
			m.sink = <-cancelSinks
		}
		v.StreamIn(m.sink)
		return
	}
	v.StreamOut(m.src)
}

// countingSource is an endless generated source that counts its reads.
type countingSource struct {
	reads atomic.Int64
	gen   *hol.PatternReader
}

func (s *countingSource) Read(p []byte) (int, error) {
	s.reads.Add(1)
	return s.gen.Read(p)
}

// TestStreamCancelInFlight cancels a 100 GiB stream message once the
// receiver has 8 MiB of it: the send completes with ErrCanceled, the
// source is not read again once the cancel completed (checked after a
// later message on the same connection went through), and the receiver
// drops the partial message (its handler never runs; the connection stays
// up).
func TestStreamCancelInFlight(t *testing.T) {
	closed := &atomic.Bool{}
	sink := &progressSink{at: 8 << 20, passed: make(chan struct{}), closed: closed}
	cancelSinks <- sink
	handled := make(chan struct{}, 1)
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ipc.Context, *cancelStreamMsg) { handled <- struct{}{} })
	ipc.MustRegister(sp, 2, func(ctx ipc.Context, m *hol.SmallMsg) { _ = ctx.Respond(m) })
	server := startService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	cp := ipc.NewProtocol()
	ipc.MustRegister[cancelStreamMsg](cp, 1, nil)
	ipc.MustRegister[hol.SmallMsg](cp, 2, nil)
	client := startService(t, ipc.Config{Protocol: cp})
	addr := server.Addr().String()

	src := &countingSource{gen: hol.NewPatternReader(100 << 30)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	_, err := client.SendContext(ctx, addr, &cancelStreamMsg{src: src}, 0, func(err error) { done <- err })
	require.NoError(t, err)
	wait(t, sink.passed, "8 MiB of the stream at the receiver")
	cancel()
	select {
	case err = <-done:
	case <-time.After(deadline):
		t.Fatal("the canceled stream did not complete")
	}
	require.ErrorIs(t, err, ipc.ErrCanceled)
	reads := src.reads.Load()

	// A message sent afterwards on the same connection goes through: the
	// loop has moved on, and the receiver's slot is free again.
	echoed := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(client, addr, &hol.SmallMsg{Data: []byte("after")}, 0,
		func(_, resp *hol.SmallMsg, err error) { echoed <- err }))
	select {
	case err = <-echoed:
	case <-time.After(deadline):
		t.Fatal("no echo after the cancel")
	}
	require.NoError(t, err)
	require.Equal(t, reads, src.reads.Load(), "the source was read after the cancel completed")
	select {
	case <-handled:
		t.Fatal("the receiver handled the canceled message")
	default:
	}
	require.False(t, closed.Load(), "the partial stream was finished as if complete")
}
