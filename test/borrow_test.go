package test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// TestLargeValueReusedAfterCompletion backs the writer's borrowed values
// (ipc/borrow.go): 64 KiB packets send a large []byte field's own bytes
// instead of a copy, so the send must be done with them when the message
// completes. Each completion overwrites its message's value at once; the
// server must still receive every value intact, exactly once, over TCP,
// TLS (which encrypts from the borrowed bytes) and compression (which
// never borrows). The values are larger than the loopback socket holds,
// so gnet's outbound buffer takes the rest of a write.
func TestLargeValueReusedAfterCompletion(t *testing.T) {
	const (
		msgs = 4
		size = 1 << 20
	)
	for _, tc := range []struct {
		name string
		v    variant
	}{{"tcp", nil}, {"tls", variantSecure}, {"compress", variantCompress}} {
		t.Run(tc.name, func(t *testing.T) {
			lim := serde.Limits{MaxString: 2 * size}
			got := make(chan error, msgs)
			sp := ipc.NewProtocol()
			ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *srBlob) {
				if len(m.Data) < size {
					_ = ctx.Respond(m) // the first call
					return
				}
				got <- checkPattern(m.Data, size)
			})
			cp := ipc.NewProtocol()
			ipc.MustRegister[srBlob](cp, 1, nil)
			scfg := ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", Limits: lim}
			ccfg := ipc.Config{Protocol: cp, Limits: lim}
			tc.v.apply(t, &scfg, &ccfg)
			server := startService(t, scfg)
			client := startService(t, ccfg)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			// The first call brings the server's hello: large packets follow.
			_, err := ipc.Call[srBlob, srBlob](ctx, client, server.Addr().String(), &srBlob{Data: []byte("hi")}, 0)
			require.NoError(t, err)
			var mu sync.Mutex
			completions := make([]int, msgs)
			done := make(chan error, msgs)
			for k := range msgs {
				m := &srBlob{Data: pattern(k, size)}
				require.NoError(t, client.Send(server.Addr().String(), m, 0, func(err error) {
					clear(m.Data) // the value is the user's again
					mu.Lock()
					completions[k]++
					mu.Unlock()
					done <- err
				}))
			}
			requireNoErrors(ctx, t, done, msgs, "completions")
			requireNoErrors(ctx, t, got, msgs, "messages received")
			require.NoError(t, client.Stop(ctx))
			mu.Lock()
			defer mu.Unlock()
			for k, n := range completions {
				require.Equal(t, 1, n, "message %d completions", k)
			}
		})
	}
}

// pattern returns message k's value: its first byte is k.
func pattern(k, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(k + i*7 + i>>16)
	}
	return b
}

// checkPattern checks b against pattern(b[0], n).
func checkPattern(b []byte, n int) error {
	if len(b) != n {
		return fmt.Errorf("length %d, want %d", len(b), n)
	}
	k := int(b[0])
	for i := range b {
		if b[i] != byte(k+i*7+i>>16) {
			return fmt.Errorf("message %d: byte %d is %#x, want %#x", k, i, b[i], byte(k+i*7+i>>16))
		}
	}
	return nil
}

// requireNoErrors receives n results from ch, each nil, before ctx ends.
func requireNoErrors(ctx context.Context, t *testing.T, ch <-chan error, n int, what string) {
	t.Helper()
	for k := range n {
		select {
		case err := <-ch:
			require.NoError(t, err, what)
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d", what, k, n)
		}
	}
}
