package test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/clock"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// Bad input at a relay: each case closes only the offending connection
// with a named error, and the relay keeps serving A → B.

// rawPacket returns a Data packet (docs/protocol.md §2) of the commands,
// with the given packet flags.
func rawPacket(flags byte, cmds ...[]byte) []byte {
	var p []byte
	for _, c := range cmds {
		p = append(p, c...)
	}
	h := []byte{1, flags, 0, 0}
	binary.LittleEndian.PutUint16(h[2:], uint16(len(p)))
	return append(h, p...)
}

// rawChunk returns a chunk command for writer slot 0.
func rawChunk(code byte, data []byte) []byte {
	c := []byte{code, 0, 0, 0}
	binary.LittleEndian.PutUint16(c[2:], uint16(len(data)))
	return append(c, data...)
}

// rawHeader returns a message header (docs/protocol.md §4.2) with sender
// id (1, 0).
func rawHeader(flags ipc.Flags, url string) []byte {
	h := serde.AppendPlain(nil, uint64(flags))
	h = serde.AppendCross(h, uint64(len(url)))
	h = append(h, url...)
	h = serde.AppendPlain(h, 1)
	return append(h, 0, 0, 0)
}

// badRelay is a relay on a manual clock, with B registered as "b", A to
// check that it still serves, and the errors its connections closed with.
type badRelay struct {
	clock *clock.Manual
	relay *ipc.Service
	addr  string
	a     *ipc.Service
	mu    sync.Mutex
	stops []error
	stop  chan struct{} // a connection closed
}

func newBadRelay(t *testing.T) *badRelay {
	r := &badRelay{clock: clock.NewManual(time.Unix(1000, 0)), stop: make(chan struct{}, 64)}
	r.relay = startRelay(t, ipc.Config{
		Clock: r.clock,
		// Few credits toward its peers: a sink that returns none stalls
		// after 8 packets, whatever the kernel's socket buffers take.
		RelayCredits: 8,
		// A source may make it hold 64 KiB, and 4 packets more (what
		// A's 4 credits allow).
		Relay: ipc.RelayConfig{StallTimeout: 5 * time.Second, SourceBytes: 64 << 10, MaxBuffers: 4},
		ConnectionStop: func(_ ipc.ConnInfo, err error) {
			r.mu.Lock()
			r.stops = append(r.stops, err)
			r.mu.Unlock()
			r.stop <- struct{}{}
		},
	})
	r.addr = r.relay.Addr().String()
	b := startService(t, ipc.Config{Protocol: relayProto(t, func(ctx ipc.Context, m *testmsg.Message) { _ = ctx.Respond(m) })})
	join(t, b, r.addr, "b")
	r.a = startService(t, ipc.Config{Protocol: relayProto(t, nil), RelayCredits: 4})
	r.serves(t)
	return r
}

// serves checks a round trip A → relay → B.
func (r *badRelay) serves(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(r.a, r.addr+"/b", testmsg.New(1, 1000), 0, func(_, resp *testmsg.Message, err error) {
		done <- err
	}))
	require.NoError(t, <-done)
}

// closedWith waits for a connection of the relay to close and checks it
// closed with want.
func (r *badRelay) closedWith(t *testing.T, want error) {
	t.Helper()
	select {
	case <-r.stop:
	case <-time.After(deadline):
		t.Fatal("no connection closed")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	require.ErrorIs(t, r.stops[len(r.stops)-1], want)
}

// dialRaw opens a plain TCP connection to the relay and writes b.
func (r *badRelay) dialRaw(t *testing.T, b []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", r.addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = c.Write(b)
	require.NoError(t, err)
	return c
}

// drained reads c until the relay closes it.
func drained(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(deadline)))
	_, err := io.Copy(io.Discard, c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading until close: %v", err)
	}
}

func TestRelayBadInput(t *testing.T) {
	r := newBadRelay(t)

	t.Run("url too long", func(t *testing.T) {
		path := strings.TrimSuffix(strings.Repeat("a/", 150), "/") // 299 bytes, above MaxURL
		done := make(chan error, 1)
		require.NoError(t, ipc.SendRequest(r.a, r.addr+"/"+path, testmsg.New(2, 100), 0, func(_, _ *testmsg.Message, err error) {
			done <- err
		}))
		r.closedWith(t, ipc.ErrRelayURL)
		require.ErrorIs(t, <-done, ipc.ErrConnection)
		r.serves(t)
	})

	t.Run("malformed url", func(t *testing.T) {
		c := r.dialRaw(t, rawPacket(0, rawChunk(2, rawHeader(ipc.AwaitResponse, "b//x"))))
		r.closedWith(t, ipc.ErrRelayURL)
		drained(t, c)
		r.serves(t)
	})

	t.Run("flood past credits", func(t *testing.T) {
		// A message to a name nobody registered waits in a placeholder;
		// its source sends 400 packets of 1000 bytes of it (more than
		// SourceBytes + MaxBuffers × 64 KiB) without waiting for credits.
		b := rawPacket(0, rawChunk(2, rawHeader(0, "nobody")))
		for range 400 {
			b = append(b, rawPacket(0, rawChunk(4, make([]byte, 1000)))...)
		}
		c := r.dialRaw(t, b)
		r.closedWith(t, ipc.ErrRelayFlood)
		drained(t, c)
		r.serves(t)
	})

	t.Run("credits returned beyond the lent", func(t *testing.T) {
		c := r.dialRaw(t, rawPacket(0, []byte{9, 255}))
		r.closedWith(t, ipc.ErrRelayCredits)
		drained(t, c)
		r.serves(t)
	})

	t.Run("destination never reads", func(t *testing.T) {
		// A raw peer registers "sink", then never reads: a 64 MB request
		// to it fills the sockets; after StallTimeout on the relay's clock
		// the sink is closed and A's request fails.
		rawSink(t, r.addr, "sink")
		before := r.clock.Pending()
		done := make(chan error, 1)
		require.NoError(t, ipc.SendRequest(r.a, r.addr+"/sink", testmsg.New(3, 64<<20), 0, func(_, _ *testmsg.Message, err error) {
			done <- err
		}))
		require.True(t, r.clock.WaitPending(before+1, nil), "stall timer")
		r.clock.Advance(5 * time.Second)
		r.closedWith(t, ipc.ErrRelayStalled)
		require.ErrorIs(t, <-done, ipc.ErrCanceledByPeer)
		r.serves(t)
	})
}
