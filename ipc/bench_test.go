package ipc_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// benchMsg is the 1 KiB echo payload of the benchmarks. It embeds
// ipc.Recyclable so that received messages are reused.
type benchMsg struct {
	ipc.Recyclable
	Data []byte
}

func (m *benchMsg) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// BenchmarkEcho measures request/response round trips of a 1 KiB payload
// over one loopback connection with conc requests outstanding (each
// completion issues the next request). allocs/op covers client and server.
func BenchmarkEcho(b *testing.B) {
	for _, conc := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) { benchEcho(b, conc, 1024) })
	}
}

func benchEcho(b *testing.B, conc, size int) {
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *benchMsg) { _ = ctx.Respond(m) })
	server, err := ipc.NewService(ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", MaxQueuedMessages: 4096, MaxReaderSlots: 64 + 1024})
	if err != nil {
		b.Fatal(err)
	}
	if err := server.Start(); err != nil {
		b.Fatal(err)
	}
	defer server.Stop(context.Background())
	cp := ipc.NewProtocol()
	ipc.MustRegister[benchMsg](cp, 1, nil)
	client, err := ipc.NewService(ipc.Config{Protocol: cp, MaxQueuedMessages: 4096, MaxResponseWait: 1024})
	if err != nil {
		b.Fatal(err)
	}
	if err := client.Start(); err != nil {
		b.Fatal(err)
	}
	defer client.Stop(context.Background())
	addr := server.Addr().String()

	var (
		mu        sync.Mutex
		remaining = b.N
		wg        sync.WaitGroup
	)
	var cb func(req, resp *benchMsg, err error)
	next := func(m *benchMsg) bool {
		mu.Lock()
		if remaining == 0 {
			mu.Unlock()
			return false
		}
		remaining--
		mu.Unlock()
		if err := ipc.SendRequest(client, addr, m, 0, cb); err != nil {
			b.Error(err)
			return false
		}
		return true
	}
	cb = func(req, resp *benchMsg, err error) {
		if err != nil {
			b.Error(err)
		}
		if !next(req) {
			wg.Done()
		}
	}
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		if !next(&benchMsg{Data: make([]byte, size)}) {
			wg.Done()
		}
	}
	wg.Wait()
}
