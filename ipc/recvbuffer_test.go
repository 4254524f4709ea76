package ipc

import (
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRecvBufferGrowsAlone: a loopback connection receiving a large
// windowed message alone for pipeLongSpan bytes gets the long receive
// buffer (the kernel reports twice pipeLongRecvBuffer); a message without
// a window (the receiving end grants none: MessageWindow negative) leaves
// the buffer as it is, however long it runs.
func TestRecvBufferGrowsAlone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window int
		grows  bool
	}{
		{"windowed", 0, true},
		{"no windows", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu     sync.Mutex
				server *Service
				size   int // the server connection's receive buffer once grown
				grew   int // growths seen
			)
			testHookPipe = func(c *conn) {
				mu.Lock()
				defer mu.Unlock()
				if c.svc == server && c.recvGrown && size == 0 {
					size, grew = c.rc.RecvBuffer(), grew+1
				}
			}
			t.Cleanup(func() { testHookPipe = nil })

			done := make(chan struct{}, 1)
			sp := NewProtocol()
			MustRegister(sp, 1, func(Context, *alongStream) { done <- struct{}{} })
			mu.Lock()
			server = lcStart(t, Config{Protocol: sp, Listen: "127.0.0.1:0", MessageWindow: tc.window})
			mu.Unlock()
			cp := NewProtocol()
			MustRegister[alongStream](cp, 1, nil)
			client := lcStart(t, Config{Protocol: cp})

			sent := make(chan error, 1)
			msg := &alongStream{src: io.LimitReader(zeros{}, pipeLongSpan+8<<20)}
			require.NoError(t, client.Send(server.Addr().String(), msg, 0, func(err error) { sent <- err }))
			require.NoError(t, lcRecv(t, sent, "the stream sent"))
			lcRecv(t, done, "the stream received")

			mu.Lock()
			defer mu.Unlock()
			if !tc.grows {
				require.Zero(t, grew, "receive buffer grown for a message without a window")
				return
			}
			require.Equal(t, 1, grew)
			// The kernel caps SO_RCVBUF at net.core.rmem_max.
			want := pipeLongRecvBuffer
			if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
				if m, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					want = min(want, m)
				}
			}
			require.GreaterOrEqual(t, size, 2*want, "the kernel's receive buffer after growing")
		})
	}
}
