package test

import (
	"net"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// rawSink opens a plain TCP connection to the relay at addr, registers it
// as name (a registerMsg request in writer slot 0), reads the relay's
// answer and then never reads again: a destination that takes nothing.
func rawSink(t *testing.T, addr, name string) net.Conn {
	t.Helper()
	body := append([]byte{relayRegisterID}, serde.AppendCross(nil, uint64(len(name)))...)
	body = append(body, name...)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.(*net.TCPConn).SetReadBuffer(64<<10))
	_, err = c.Write(rawPacket(0, rawChunk(2, rawHeader(ipc.AwaitResponse, "")), rawChunk(5, body)))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(deadline)))
	_, err = c.Read(make([]byte, 64))
	require.NoError(t, err)
	return c
}

// TestRelaySlowDestination checks that relay credits are per message: A
// sends a 64 MB request to "sink", a connection that never reads, and while
// it is stuck there, 20 requests of 100 B to 16 MB from the same
// connection of A through the same relay to B, which echoes them. Each
// completes once with its intact echo and B sees each once: the stuck
// message holds only its own window on the relay, not A's credits. Then the
// sink closes: the stuck request fails once with ErrCanceledByPeer, and
// every message on the relay completes.
func TestRelaySlowDestination(t *testing.T) {
	relay := startRelay(t, ipc.Config{
		BufferSize: 64 << 10,
		Relay:      ipc.RelayConfig{StallTimeout: -1}, // the sink is never closed by the relay
	})
	raddr := relay.Addr().String()
	peer := newEchoPeer()
	b := startService(t, ipc.Config{Protocol: relayProto(t, peer.handle)})
	join(t, b, raddr, "b")
	sink := rawSink(t, raddr, "sink")
	a := startService(t, ipc.Config{Protocol: relayProto(t, nil)})

	stuck := make(chan error, 2)
	require.NoError(t, ipc.SendRequest(a, raddr+"/sink", testmsg.New(1000, 64<<20), 0, func(_, _ *testmsg.Message, err error) {
		stuck <- err
	}))
	const total = 20
	run := chainRequests(t, a, raddr+"/b", relaySizes, total, 5, echoed)
	select {
	case err := <-stuck:
		t.Fatalf("the request to the sink completed while the sink read nothing: %v", err)
	default:
	}

	require.NoError(t, sink.Close())
	select {
	case err := <-stuck:
		require.ErrorIs(t, err, ipc.ErrCanceledByPeer)
	case <-time.After(deadline):
		t.Fatal("the request to the closed sink did not complete")
	}
	stopAll(t, a, b, relay)
	require.Empty(t, stuck, "the request to the sink completed twice")
	run.once(t)
	peer.once(t, total)
	st := relay.Stats()
	require.Zero(t, st.InFlight)
	require.Equal(t, uint64(2*total+2), st.Completions.OK, "relayed messages, and the two registration answers")
	require.Equal(t, uint64(1), st.Completions.Connection, "the message to the sink")
}
