package ipc_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ipcframe/ipcframe/ipc"
)

// BenchmarkSendRequestContext measures the asynchronous call with a
// context as an application uses it: conc goroutines each sending a 1 KiB
// plain request (no Recyclable) with SendRequestContext and waiting for
// its callback on a channel, over one loopback connection; with
// context.Background() and with a long-lived cancelable context (each send
// then registers a context watch). allocs/op covers client and server (the
// two decoded messages and their bytes are the receivers').
func BenchmarkSendRequestContext(b *testing.B) {
	for _, conc := range []int{1, 64} {
		for _, cancelable := range []bool{false, true} {
			name := fmt.Sprintf("conc=%d/ctx=background", conc)
			if cancelable {
				name = fmt.Sprintf("conc=%d/ctx=cancelable", conc)
			}
			b.Run(name, func(b *testing.B) { benchSendRequestContext(b, conc, cancelable) })
		}
	}
}

func benchSendRequestContext(b *testing.B, conc int, cancelable bool) {
	client, addr := callBenchPair(b)
	ctx := context.Background()
	if cancelable {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
	}
	runCallers(b, conc, 1024, func() func(req *callMsg) error {
		done := make(chan error, 1)
		cb := func(_, _ *callMsg, err error) { done <- err }
		return func(req *callMsg) error {
			if _, err := ipc.SendRequestContext(ctx, client, addr, req, 0, cb); err != nil {
				return err
			}
			return <-done
		}
	})
}
