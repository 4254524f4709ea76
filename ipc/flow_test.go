package ipc

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/heappeak"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// flowMsg is the request and response of the flow-control test: a plain
// []byte field, echoed.
type flowMsg struct{ Data []byte }

func (m *flowMsg) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// eventHandler is a slog handler that signals each record whose message is
// msg.
type eventHandler struct {
	msg string
	ch  chan struct{}
}

func (h *eventHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *eventHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *eventHandler) WithGroup(string) slog.Handler            { return h }
func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}

// TestNeverReadingClientBounded: a raw client pipelines 256 requests of
// 1 MiB to an echo server and does not read. The server must stop reading
// that connection (flow.go) so that its heap grows by at most 64 MiB,
// while another client on its own connection is still answered; the raw
// client cannot write all its requests. When the client then reads, the
// server resumes: every request is written and every response arrives.
func TestNeverReadingClientBounded(t *testing.T) {
	const (
		requests = 256
		size     = 1 << 20
	)
	paused := &eventHandler{msg: "reading paused", ch: make(chan struct{}, 1)}
	sp := NewProtocol()
	MustRegister(sp, 1, func(ctx Context, m *flowMsg) { _ = ctx.Respond(m) })
	server, err := NewService(Config{Protocol: sp, Listen: "127.0.0.1:0", MaxReaderSlots: 2 * requests, Logger: slog.New(paused)})
	require.NoError(t, err)
	require.NoError(t, server.Start())
	t.Cleanup(func() { stopWithin(t, server) })
	addr := server.Addr().String()

	heap := heappeak.Start(5 * time.Millisecond)

	// The raw client: an ipc writer's packets written to a plain socket.
	cp := NewProtocol()
	MustRegister[flowMsg](cp, 1, nil)
	// MessageWindow -1: this raw client grants no windows (it never reads).
	ccfg, err := Config{Protocol: cp, MaxMultiplex: 1, MaxResponseWait: requests, MessageWindow: -1}.withDefaults()
	require.NoError(t, err)
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	var written atomic.Int64
	rawDone := make(chan error, 1)
	go func() {
		w := newWriter(&ccfg)
		m := &flowMsg{Data: make([]byte, size)}
		ti := cp.lookup(m)
		buf := make([]byte, ccfg.WriteBatch)
		for i := range requests {
			// One request after the other, as a simple pipelining client
			// writes them.
			if !w.enqueue(&msgStub{msg: m, ti: ti, flags: AwaitResponse, state: OnPeer}) {
				rawDone <- ErrPoolFull
				return
			}
			for w.hasOutput() {
				n := 0
				for n+ccfg.BufferSize <= len(buf) {
					k, err := w.fill(buf[n : n+ccfg.BufferSize])
					if err != nil || k == 0 {
						break
					}
					n += k
				}
				if _, err := nc.Write(buf[:n]); err != nil {
					rawDone <- err
					return
				}
			}
			written.Store(int64(i + 1))
		}
		rawDone <- nil
	}()

	flowRecv(t, paused.ch)

	// Another client is still served.
	client, err := NewService(Config{Protocol: cp})
	require.NoError(t, err)
	require.NoError(t, client.Start())
	t.Cleanup(func() { stopWithin(t, client) })
	got := make(chan error, 1)
	require.NoError(t, SendRequest(client, addr, &flowMsg{Data: []byte("hello")}, 0,
		func(_, resp *flowMsg, err error) {
			if err == nil && string(resp.Data) != "hello" {
				err = ErrBadMessage
			}
			got <- err
		}))
	require.NoError(t, flowRecv(t, got))

	growth := heap.Stop()
	t.Logf("server paused after the raw client wrote %d whole requests; heap growth %.1f MiB", written.Load(), float64(growth)/(1<<20))
	require.Less(t, written.Load(), int64(requests), "the raw client wrote every request: reading was never paused")
	require.LessOrEqual(t, growth, int64(64<<20))

	// Once the client reads its responses the server resumes reading: every
	// request gets written and every response (1 MiB each) arrives.
	all := &countTo{want: requests * size, done: make(chan struct{})}
	go func() { _, _ = io.Copy(all, nc) }()
	require.NoError(t, flowRecv(t, rawDone))
	flowRecv(t, all.done)
}

// countTo counts the bytes written to it and closes done once want have
// arrived.
type countTo struct {
	n, want int64
	done    chan struct{}
}

func (c *countTo) Write(p []byte) (int, error) {
	if c.n < c.want && c.n+int64(len(p)) >= c.want {
		close(c.done)
	}
	c.n += int64(len(p))
	return len(p), nil
}

// stopWithin stops s, giving up on a graceful drain after 10 s.
func stopWithin(t testing.TB, s *Service) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.Stop(ctx)
}

func flowRecv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(2 * time.Minute):
		t.Fatal("timed out waiting for an event")
	}
	var zero T
	return zero
}
