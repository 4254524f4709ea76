package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/ipc"
)

// TestSendRequestContextAllocs: the asynchronous call with a context
// allocates nothing of its own per call in steady state. A recyclable
// 1 KiB echo through two Services over a loopback socket (the path of
// TestEchoZeroAllocs) allocates nothing, client and server together, when
// sent with SendRequestContext and a context without Done (the request's
// stub, which its MessageID names, is pooled: cancel.go, "Generations").
// With a context that can end, the watch is what remains: context.AfterFunc's
// own two allocations (its afterFuncCtx and its stop function) and the
// watch's closure; its stop function is published without one
// (msgStub.watched). Before: 1 and 5.
func TestSendRequestContextAllocs(t *testing.T) {
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *echoAllocMsg) { _ = ctx.Respond(m) })
	server := startTestService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	cp := ipc.NewProtocol()
	ipc.MustRegister[echoAllocMsg](cp, 1, nil)
	client := startTestService(t, ipc.Config{Protocol: cp})
	addr := server.Addr().String()

	done := make(chan error, 1)
	cb := func(req, resp *echoAllocMsg, err error) {
		if err == nil && len(resp.Data) != len(req.Data) {
			err = errShortEcho
		}
		done <- err
	}
	m := &echoAllocMsg{Data: make([]byte, 1024)}
	cancelable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		max  float64
	}{
		{"background", context.Background(), 0},
		{"cancelable", cancelable, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allocs := roundAllocs(t, func() error {
				id, err := ipc.SendRequestContext(tc.ctx, client, addr, m, 0, cb)
				if err != nil {
					return err
				}
				if err := <-done; err != nil { // a hang is caught by go test -timeout
					return err
				}
				if err := client.Cancel(id); !errors.Is(err, ipc.ErrUnknownMessage) {
					return fmt.Errorf("%w: %v", errLateCancel, err)
				}
				return nil
			})
			t.Logf("allocations per SendRequestContext echo, client and server: %v", allocs)
			require.LessOrEqual(t, allocs, tc.max, "allocations per SendRequestContext echo, client and server")
		})
	}
}

var errLateCancel = errors.New("Cancel of a completed message did not return ErrUnknownMessage")
