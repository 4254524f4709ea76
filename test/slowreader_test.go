package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// srBlob is the one-way message of TestSlowReaderMemoryBound and the
// request of TestLargePacketsToIPCFramePeers.
type srBlob struct{ Data []byte }

// Serde implements serde.Type.
func (m *srBlob) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// TestSlowReaderMemoryBound backs the back-pressure claim of
// docs/architecture.md (§3.7) through ipc: a client sends 128 MiB of 64 KiB
// one-way messages, as fast as the pool accepts them, to a raw peer that
// reads far slower (64 KiB at a time, with a full garbage collection after
// every srSample bytes). Messages wait in the pool queue (MaxQueuedMessages,
// ErrPoolFull) and the writer; bytes are serialized only while the
// connection is writable (gnet's buffer below HighWater), so the memory the
// sender retains stays within srBound of its start although far more than
// that was accepted and written.
//
// Retained means live: each sample is the heap after runtime.GC (HeapAlloc),
// not HeapInuse between collections, which also counts garbage the
// collector has not reached yet and so depends on GC pacing and on how much
// CPU the collector gets (it once read 39 MiB under load with 2 MiB live).
// An engine that buffered without bound (gnet's buffer past HighWater, the
// writer serializing ahead of the socket) keeps those bytes live, and the
// samples grow with them: with Writable always true this test reads about
// 100 MiB and fails. When the bound is crossed the test logs the bytes the
// engine had completed but the reader not yet read (gnet's buffer plus the
// two sockets' kernel buffers).
//
// The reader slowness is proven (the sender met ErrPoolFull) and every byte
// arrives, as whole packets; KeepAlive packets (the client pings after
// Config.KeepAlive without hearing anything, which a run slowed down by load
// reaches) are skipped and counted.
func TestSlowReaderMemoryBound(t *testing.T) {
	const (
		size    = 64 << 10
		total   = 128 << 20
		n       = total / size
		srBound = 16 << 20
		// srSample is how many bytes the reader reads between two samples.
		srSample = 1 << 20
	)
	proto := ipc.NewProtocol()
	ipc.MustRegister[srBlob](proto, 1, nil)
	// The raw reader never answers the client's pings (KeepAlive, 30 s of
	// hearing nothing): it skips them, and the dead-peer timeout is off, so
	// a run slowed down by load is bounded by deadline alone.
	client := startService(t, ipc.Config{Protocol: proto, DeadPeerTimeout: -1})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	// Registered after startService, so it runs before its Stop: after a
	// failure nobody reads what is queued, so abandon it at once instead of
	// giving it Stop's 30 s.
	t.Cleanup(func() {
		ln.Close()
		if t.Failed() {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = client.Stop(ctx)
		}
	})
	addr := ln.Addr().String()

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc

	// completed counts the sender's completions (any goroutine).
	var completed, failed atomic.Int64

	type readResult struct {
		bytes, packets, keepAlives int64
		peak                       uint64 // largest live heap sampled
		inFlight                   int64  // completed but unread bytes at peak
		err                        error
	}
	read := make(chan readResult, 1)
	go func() {
		var res readResult
		defer func() { read <- res }()
		nc, err := ln.Accept()
		if err != nil {
			res.err = err
			return
		}
		defer nc.Close()
		_ = nc.SetReadDeadline(time.Now().Add(deadline))
		hdr := make([]byte, 4)
		buf := make([]byte, size)
		var ms runtime.MemStats
		next := int64(srSample)
		for res.bytes < total {
			if _, err := io.ReadFull(nc, hdr); err != nil {
				res.err = err
				return
			}
			if hdr[0] == 2 && hdr[1]|hdr[2]|hdr[3] == 0 {
				res.keepAlives++
				continue
			}
			if hdr[0] != 1 {
				res.err = fmt.Errorf("not a Data packet: header % x", hdr)
				return
			}
			left := int(hdr[2]) | int(hdr[3])<<8 | int(hdr[1]&1)<<16
			for left > 0 {
				k, err := nc.Read(buf[:min(left, len(buf))])
				if err != nil {
					res.err = err
					return
				}
				left -= k
				res.bytes += int64(k)
				if res.bytes < next {
					continue
				}
				next += srSample
				runtime.GC()
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > res.peak {
					res.peak = ms.HeapAlloc
					res.inFlight = completed.Load()*size - res.bytes
				}
			}
			res.packets++
		}
	}()

	m := &srBlob{Data: make([]byte, size)}
	progress := make(chan struct{}, 1)
	done := func(err error) {
		if err != nil {
			failed.Add(1)
		}
		completed.Add(1)
		select {
		case progress <- struct{}{}:
		default:
		}
	}
	full := 0
	for sent := 0; sent < n; {
		err := client.Send(addr, m, 0, done)
		if errors.Is(err, ipc.ErrPoolFull) {
			full++
			select {
			case <-progress: // a message went out: room in the queue
			case res := <-read:
				t.Fatalf("the reader stopped early: %v", res.err)
			case <-time.After(deadline):
				t.Fatal("the pool never drained")
			}
			continue
		}
		require.NoError(t, err)
		sent++
	}
	var res readResult
	select {
	case res = <-read:
	case <-time.After(deadline):
		t.Fatal("the reader never finished")
	}
	require.NoError(t, res.err)
	require.GreaterOrEqual(t, res.bytes, int64(total), "payload bytes received")
	require.Positive(t, full, "the sender never met back-pressure: the reader was not slower")
	require.Zero(t, failed.Load(), "failed sends")
	growth := int64(res.peak) - int64(base)
	t.Logf("%d messages, %d packets (%d KeepAlive), ErrPoolFull %d times, peak live heap growth %.1f MiB",
		n, res.packets, res.keepAlives, full, float64(growth)/(1<<20))
	require.Less(t, growth, int64(srBound),
		"sender retains more than its bound; at the peak %.1f MiB were completed and not yet read",
		float64(res.inFlight)/(1<<20))
}
