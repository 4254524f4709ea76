package test

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/heappeak"
	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// TestRelayStream2GiB streams one 2 GiB message (a stream field generated
// on the fly; raceStreamSize under the race detector) from A through the
// relay to B, which hashes it and answers with the hash. Meanwhile A sends
// small requests to B through the same relay, on the same connection: at
// least 20 of them are answered while the stream flows (the head-of-line
// goal holds through the relay). The heap of the process, which holds all
// three services, never grows by more than 64 MiB (measured with GOGC 20):
// the relay holds at most a message window and SourceBytes per source.
func TestRelayStream2GiB(t *testing.T) {
	size := int64(2 << 30)
	if raceEnabled {
		size = raceStreamSize
	}
	relay := startRelay(t, ipc.Config{BufferSize: 64 << 10})
	raddr := relay.Addr().String()
	bp := relayProto(t, func(ctx ipc.Context, m *testmsg.Message) { _ = ctx.Respond(m) })
	hol.RegisterBulk(bp, true)
	b := startService(t, ipc.Config{Protocol: bp})
	join(t, b, raddr, "b")
	ap := relayProto(t, nil)
	hol.RegisterBulk(ap, false)
	a := startService(t, ipc.Config{Protocol: ap})

	// The heap bound is about live memory: with the default GOGC the heap
	// also holds up to as much garbage again (the reactor's write buffers
	// churn through sync.Pools), which says nothing about the relay.
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	heap := heappeak.Start(10 * time.Millisecond)
	var streaming atomic.Bool
	streaming.Store(true)
	var (
		mu     sync.Mutex
		during int
		errs   []error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // small requests, one at a time, until the stream ends
		defer wg.Done()
		for i := 0; ; i++ {
			done := make(chan error, 1)
			err := ipc.SendRequest(a, raddr+"/b", testmsg.New(i, 100), 0, func(_, resp *testmsg.Message, err error) {
				if err == nil {
					err = testmsg.Verify(resp, 100)
				}
				done <- err
			})
			if err == nil {
				err = <-done
			}
			mu.Lock()
			if err != nil {
				errs = append(errs, err)
			} else if streaming.Load() {
				during++
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	start := time.Now()
	err := hol.SendLarge(context.Background(), a, raddr+"/b", size, nil, true)
	streaming.Store(false)
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	growth := heap.Stop()
	require.NoError(t, err)
	t.Logf("%d MiB through the relay at %.0f MB/s, heap growth %.1f MiB, %d small requests answered meanwhile",
		size>>20, float64(size)/elapsed.Seconds()/1e6, float64(growth)/(1<<20), during)
	mu.Lock()
	require.Empty(t, errs)
	require.GreaterOrEqual(t, during, 20, "small requests answered while the stream flowed")
	mu.Unlock()
	require.LessOrEqual(t, growth, int64(64<<20))
	stopAll(t, a, b, relay)
	require.Zero(t, relay.Stats().InFlight)
}
