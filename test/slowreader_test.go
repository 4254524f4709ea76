package test

import (
	"errors"
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
// reads far slower (it reads 64 KiB at a time and reads the heap
// statistics, a stop-the-world call, after each read). Messages wait in the
// pool queue (MaxQueuedMessages, ErrPoolFull) and the writer; bytes are
// serialized only while the connection is writable (gnet's buffer below
// HighWater), so the sender's heap, sampled by the reader after every read,
// stays within 16 MiB of its start although far more than that was
// accepted and written. The reader slowness is proven (the sender met
// ErrPoolFull) and every byte arrives, as whole packets.
func TestSlowReaderMemoryBound(t *testing.T) {
	const (
		size  = 64 << 10
		total = 128 << 20
		n     = total / size
		bound = 16 << 20
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })

	proto := ipc.NewProtocol()
	ipc.MustRegister[srBlob](proto, 1, nil)
	client := startService(t, ipc.Config{Protocol: proto})
	addr := ln.Addr().String()

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse

	type readResult struct {
		bytes, packets int64
		peak           uint64
		err            error
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
		for res.bytes < total {
			if _, err := io.ReadFull(nc, hdr); err != nil {
				res.err = err
				return
			}
			if hdr[0] != 1 {
				res.err = errors.New("not a Data packet")
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
				runtime.ReadMemStats(&ms)
				res.peak = max(res.peak, ms.HeapInuse)
			}
			res.packets++
		}
	}()

	m := &srBlob{Data: make([]byte, size)}
	var completed, failed atomic.Int64
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
	t.Logf("%d messages, %d packets, ErrPoolFull %d times, peak heap growth %.1f MiB",
		n, res.packets, full, float64(growth)/(1<<20))
	require.Less(t, growth, int64(bound), "sender heap above its bound")
}
