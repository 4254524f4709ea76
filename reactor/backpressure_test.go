package reactor

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// streamPattern returns a buffer whose byte i is byte(i%251), long enough
// that patternAt(pos, n) never runs past its end for n <= chunk.
func streamPattern(chunk int) (pattern []byte, period int) {
	period = 251 * 256 // 64256: a 64 KiB or 1 MiB chunk out of place shows
	pattern = make([]byte, period+chunk)
	for i := range pattern {
		pattern[i] = byte(i % 251)
	}
	return pattern, period
}

// checkStream reads want bytes from nc and compares them with the pattern,
// calling pause after every read.
func checkStream(t testing.TB, nc net.Conn, want int64, readSize int, pause func()) error {
	pattern, period := streamPattern(readSize)
	buf := make([]byte, readSize)
	var pos int64
	for pos < want {
		n, err := io.ReadFull(nc, buf[:min(int64(readSize), want-pos)])
		if n > 0 {
			off := int(pos % int64(period))
			if !bytes.Equal(buf[:n], pattern[off:off+n]) {
				return errMismatch(pos)
			}
			pos += int64(n)
		}
		if err != nil {
			return err
		}
		if pause != nil {
			pause()
		}
	}
	return nil
}

type errMismatch int64

func (e errMismatch) Error() string { return "stream mismatch near byte " + itoa(int64(e)) }

func itoa(v int64) string { return string(appendInt(nil, v)) }

func appendInt(b []byte, v int64) []byte {
	if v >= 10 {
		b = appendInt(b, v/10)
	}
	return append(b, byte('0'+v%10))
}

// TestSlowReaderBound sends 256 MiB with Send to a std-net peer that reads
// 64 KiB at a time and, after each read, samples the heap statistics (a
// stop-the-world call that makes it far slower than the sender; no sleep).
// The sender's heap must grow by less than 16 MiB over the baseline, the
// stall path must be taken, and every byte must arrive intact.
func TestSlowReaderBound(t *testing.T) {
	const (
		total = 256 << 20
		chunk = 64 << 10
	)
	p := newPeer(t)
	r := startReactor(t, Config{Loops: 2}, &testHandler{})
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t)
	require.NoError(t, nc.(*net.TCPConn).SetReadBuffer(64<<10))
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(2*waitLong)))

	pattern, period := streamPattern(chunk)
	// Two collections: the first moves what earlier tests left in
	// sync.Pools (buffers of their reactors) to the pools' victim caches,
	// the second frees it. After one, 20 MiB of them could stay live (with
	// -count or -cpu lists), and a larger live heap also lets more garbage
	// pile up before the next collection (GOGC): the peak then passed the
	// bound with nothing wrong in the sender.
	runtime.GC()
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	t.Logf("baseline HeapInuse %.1f MiB HeapAlloc %.1f MiB", float64(ms0.HeapInuse)/(1<<20), float64(ms0.HeapAlloc)/(1<<20))

	sendErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
		defer cancel()
		for pos := 0; pos < total; pos += chunk {
			off := pos % period
			if err := c.Send(ctx, pattern[off:off+chunk]); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()

	start := time.Now()
	var peak, peakAlloc uint64
	var ms runtime.MemStats
	readErr := checkStream(t, nc, total, 64<<10, func() {
		runtime.ReadMemStats(&ms)
		peak, peakAlloc = max(peak, ms.HeapInuse), max(peakAlloc, ms.HeapAlloc)
	})
	require.NoError(t, readErr)
	require.NoError(t, recv(t, sendErr))
	st := r.Stats()
	t.Logf("256 MiB in %v, peak HeapInuse %.1f MiB, HeapAlloc %.1f MiB, stalls %d, send waits %d",
		time.Since(start), float64(peak)/(1<<20), float64(peakAlloc)/(1<<20), st.Stalls, st.SendWaits)
	require.Less(t, peak-min(peak, ms0.HeapInuse), uint64(16<<20), "heap growth while sending")
	require.NotZero(t, st.Stalls, "stall path not taken")
	require.NotZero(t, st.SendWaits, "Send never blocked")
}

// TestCloseDrains queues 64 MiB, closes at once, and checks that the peer
// receives every byte before EOF (gnet's own Close would drop most of it).
func TestCloseDrains(t *testing.T) {
	const (
		total = 64 << 20
		chunk = 1 << 20
	)
	p := newPeer(t)
	closes := newCloseLog()
	r := startReactor(t, Config{Loops: 1, MaxQueued: total}, &testHandler{closed: closes.record})
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t)

	pattern, period := streamPattern(chunk)
	ran := make(chan struct{})
	for pos := 0; pos < total; pos += chunk {
		off := pos % period
		require.NoError(t, c.Send(dialCtx(t), pattern[off:off+chunk]))
	}
	require.NoError(t, c.Execute(func() { close(ran) }))
	c.Close(nil)
	require.ErrorIs(t, c.Send(dialCtx(t), []byte("late")), ErrClosed)
	require.ErrorIs(t, c.Execute(func() {}), ErrClosed)

	require.NoError(t, nc.SetReadDeadline(time.Now().Add(waitLong)))
	require.NoError(t, checkStream(t, nc, total, 256<<10, nil))
	n, err := nc.Read(make([]byte, 1))
	require.Zero(t, n)
	require.ErrorIs(t, err, io.EOF)
	recv(t, ran)
	require.ErrorIs(t, recv(t, closes.ch), ErrClosed)
}

// TestWritable: loop-side writes against a non-reading peer make Writable
// false; OnWritable follows once the peer drains.
func TestWritable(t *testing.T) {
	p := newPeer(t)
	writable := make(chan struct{}, 1)
	r := startReactor(t, Config{Loops: 1, HighWater: 1 << 20, LowWater: 256 << 10}, &testHandler{
		writable: func(*Conn) { writable <- struct{}{} },
	})
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t)

	buf := make([]byte, 64<<10)
	var wrote int
	var writeErr error
	onLoop(t, c, func() {
		for c.Writable() && writeErr == nil {
			writeErr = c.Write(buf)
			wrote += len(buf)
		}
	})
	require.NoError(t, writeErr)
	require.Greater(t, wrote, 1<<20)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(waitLong)))
	go func() { _, _ = io.CopyN(io.Discard, nc, int64(wrote)) }()
	recv(t, writable)
}

// TestStallResumesOnDrain: with the stall recheck timer set to an hour, a
// connection that stopped being writable must still be resumed (OnWritable)
// when its socket drains, by the write poller alone (writable.go). The loop
// writes 64 MiB, 64 KiB at a time, while Writable, continuing from
// OnWritable; the peer reads everything and checks it.
func TestStallResumesOnDrain(t *testing.T) {
	const (
		total = 64 << 20
		chunk = 64 << 10
	)
	pattern, period := streamPattern(chunk)
	var (
		pos    int
		resume atomic.Int64
	)
	var pushOnLoop func(c *Conn)
	pushOnLoop = func(c *Conn) {
		for pos < total && c.Writable() {
			off := pos % period
			if c.Write(pattern[off:off+chunk]) != nil {
				return
			}
			pos += chunk
		}
	}
	h := &testHandler{writable: func(c *Conn) { resume.Add(1); pushOnLoop(c) }}
	p := newPeer(t)
	r := startReactor(t, Config{Loops: 1, StallPoll: time.Hour, HighWater: 256 << 10, LowWater: 64 << 10, NotSentLowat: 64 << 10}, h)
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(2*waitLong)))
	onLoop(t, c, func() { pushOnLoop(c) })
	require.NoError(t, checkStream(t, nc, total, chunk, nil))
	require.NotZero(t, resume.Load(), "the connection never stalled")
}

// TestPauseRead: a handler pauses reading at the first bytes; the peer's
// 64 MiB write then cannot complete (TCP back-pressure: the kernel buffers
// hold a few MiB) and its write deadline expires with part of it written.
// After ResumeRead the peer writes the rest and every byte arrives intact.
func TestPauseRead(t *testing.T) {
	const total = 64 << 20
	var (
		got        atomic.Int64
		paused     = make(chan bool, 1)
		pausedOnce bool // loop-owned
		mismatch   atomic.Bool
	)
	pattern, period := streamPattern(64 << 10)
	h := &testHandler{data: func(c *Conn, b []byte) int {
		pos := got.Load()
		for off := 0; off < len(b); {
			k := min(len(b)-off, 64<<10)
			p := int(pos % int64(period))
			if !bytes.Equal(b[off:off+k], pattern[p:p+k]) {
				mismatch.Store(true)
			}
			off += k
			pos += int64(k)
		}
		got.Store(pos)
		if !pausedOnce {
			pausedOnce = true
			paused <- c.PauseRead()
		}
		return len(b)
	}}
	p := newPeer(t)
	r := startReactor(t, Config{Loops: 1}, h)
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t)

	var sent int
	write := func(deadline time.Time) error {
		require.NoError(t, nc.SetWriteDeadline(deadline))
		for sent < total {
			off := sent % period
			n, err := nc.Write(pattern[off : off+min(64<<10, total-sent)])
			sent += n
			if err != nil {
				return err
			}
		}
		return nil
	}
	err = write(time.Now().Add(3 * time.Second))
	require.True(t, recv(t, paused), "PauseRead not available")
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the peer wrote everything while reads were paused")
	require.Less(t, got.Load(), int64(total))
	onLoop(t, c, c.ResumeRead)
	require.NoError(t, write(time.Now().Add(2*waitLong)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for got.Load() < total && !mismatch.Load() {
			onLoop(t, c, func() {})
		}
	}()
	recv(t, done)
	require.False(t, mismatch.Load())
	require.Equal(t, int64(total), got.Load())
	require.NotZero(t, r.Stats().ReadPauses)
}
