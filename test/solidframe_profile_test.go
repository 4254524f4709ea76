package test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// ipc.SolidFrameProfile against the keepalive rules C++ SolidFrame 6.0
// documents (design §4.6 and §5), both roles, under a manual clock.
//
// Dialing: the server is sfServer, a raw-socket fake of SolidFrame's
// server rules: a fixed inactivity window W from the accept; in each
// window it counts the KeepAlive packets, answers while the count is below
// its limit L and closes the connection on the L-th
// (Connection::doCompleteKeepalive); at the end of a window with no
// traffic it closes the connection (inactivity), otherwise it resets the
// count. A packet arriving exactly at a window's end belongs to the next
// window. The test moves the clock from one client timer to the next,
// applies the window ends it passes, and reads exactly the pings the
// client's Stats say it sent, so nothing depends on real time.
//
// Accepting: the client is a raw socket pinging like SolidFrame's client,
// every 300 s of silence.
//
// Identifiers of this file start with "sf"; it uses keepalive_test.go's
// "ka" helpers (clock, raw peer, kaNote).

// sfDrop is how sfServer ended a connection, if it did.
type sfDrop struct {
	reason string        // "", "inactivity" or "flood"
	at     time.Duration // since the accept
	pings  int           // pings received before
}

// sfServer runs SolidFrame's server keepalive rules (window, limit) for
// windows windows against a client dialing with cfg (Protocol and Clock
// are set here), and reports whether and when it dropped the connection.
// When it did, it also checks that the client saw the connection close.
func sfServer(t *testing.T, cfg ipc.Config, window time.Duration, limit, windows int) sfDrop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })

	clk := newKAClock()
	notes := make(chan uint32, 1)
	proto := plClientProto()
	ipc.MustRegister(proto, 3, func(_ ipc.Context, m *kaNote) { notes <- m.Seq })
	stops := newKAStops()
	cfg.Protocol, cfg.Clock, cfg.ConnectionStop = proto, clk, stops.add
	cfg.ReconnectMin, cfg.ReconnectMax = time.Hour, time.Hour // no redial within the run
	client := startService(t, cfg)
	addr := ln.Addr().String()
	require.NoError(t, client.CreatePool(addr, ipc.PoolOptions{}))
	nc, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(deadline)))
	peer := &kaRawConn{t: t, nc: nc}
	clk.armed(t, 1, "the client's keepalive timer")

	start := clk.Now()
	end := start.Add(time.Duration(windows) * window)
	windowEnd := start.Add(window)
	var traffic, count, pings int // in the current window; in all
	drop := func(reason string, at time.Time) sfDrop {
		_ = nc.Close()
		stops.first(t, "the client to see the close")
		return sfDrop{reason: reason, at: at.Sub(start), pings: pings}
	}
	for {
		next, ok := clk.Next()
		require.True(t, ok, "no timer armed on the client")
		for !windowEnd.After(next) && !windowEnd.After(end) {
			if traffic == 0 {
				return drop("inactivity", windowEnd)
			}
			traffic, count = 0, 0
			windowEnd = windowEnd.Add(window)
		}
		if next.After(end) {
			break
		}
		clk.Set(next)
		clk.armed(t, 1, "the client's keepalive timer")
		for sent := int(client.Stats().KeepAlivesSent); pings < sent; {
			peer.expectPing()
			pings++
			traffic++
			count++
			if count >= limit {
				return drop("flood", clk.Now())
			}
			peer.write(kaPing)
			peer.write(kaNotePacket) // tells the test the client read the answer
			select {
			case <-notes:
			case <-time.After(deadline):
				t.Fatal("the client never read the ping answer")
			}
		}
	}
	require.Empty(t, stops.list(), "the client closed the connection")
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.Equal(t, uint64(1), st.Connects)
	require.Zero(t, st.Disconnects)
	return sfDrop{pings: pings}
}

// TestSolidFrameProfileDialsSolidFrameServer: a client on the profile
// (a ping after 450 s of silence) is never dropped over 50 windows (about
// 8 hours) by a SolidFrame server whose limit is 3 (the least for which an
// idle connection can survive a 600 s window) or 10 (SolidFrame's work
// branch): one ping every 450 s, so each window holds one or two.
func TestSolidFrameProfileDialsSolidFrameServer(t *testing.T) {
	for _, limit := range []int{3, 10} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			got := sfServer(t, ipc.SolidFrameProfile(), ipc.SolidFrameInactivityTimeout, limit, 50)
			require.Equal(t, sfDrop{pings: 66}, got) // 50×600 s / 450 s
		})
	}
}

// TestDefaultKeepAliveDroppedBySolidFrameServer: a client on our defaults
// (a KeepAlive when it opens with nothing to send, for the first-packet
// rule, then a ping every 30 s) is dropped by SolidFrame's flood guard in
// the first window: on the 2nd ping (at 30 s) at SolidFrame 6.0's limit
// 2, on the 10th (at 270 s) at the work branch's limit 10.
func TestDefaultKeepAliveDroppedBySolidFrameServer(t *testing.T) {
	for _, tc := range []struct {
		limit int
		want  sfDrop
	}{
		{ipc.SolidFrameKeepAliveCount, sfDrop{reason: "flood", at: 30 * time.Second, pings: 2}},
		{10, sfDrop{reason: "flood", at: 270 * time.Second, pings: 10}},
	} {
		t.Run(fmt.Sprintf("limit=%d", tc.limit), func(t *testing.T) {
			got := sfServer(t, ipc.Config{}, ipc.SolidFrameInactivityTimeout, tc.limit, 50)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestSolidFrameLimitTwoDropsIdleConnections documents what no keepalive
// setting achieves: at SolidFrame 6.0's default limit of 2 pings per
// 600 s window, an idle connection needs exactly one ping in every window,
// so the interval would have to be both at least and less than 600 s.
// The profile's 450 s lasts until two pings share a window (at 2250 s),
// SolidFrame's own 300 s until 900 s, and 601 s leaves the first window
// empty (inactivity at 600 s).
func TestSolidFrameLimitTwoDropsIdleConnections(t *testing.T) {
	for _, tc := range []struct {
		keepAlive time.Duration
		want      sfDrop
	}{
		{ipc.SolidFrameProfileKeepAlive, sfDrop{reason: "flood", at: 2250 * time.Second, pings: 5}},
		{ipc.SolidFrameKeepAlive, sfDrop{reason: "flood", at: 900 * time.Second, pings: 3}},
		{601 * time.Second, sfDrop{reason: "inactivity", at: 600 * time.Second}},
	} {
		t.Run(tc.keepAlive.String(), func(t *testing.T) {
			cfg := ipc.SolidFrameProfile()
			cfg.KeepAlive = tc.keepAlive
			got := sfServer(t, cfg, ipc.SolidFrameInactivityTimeout, ipc.SolidFrameKeepAliveCount, 50)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestSolidFrameProfileAcceptsSolidFrameClient: a SolidFrame-style client
// pinging every 300 s (SolidFrameKeepAlive) is answered for 50 windows of
// a server on the profile, never closed; a server on our defaults (120 s
// window) closes it with ErrInactivity before its first ping (with the
// first-packet rule off: on, it is closed after 5 s, with
// ErrFirstPacketTimeout).
func TestSolidFrameProfileAcceptsSolidFrameClient(t *testing.T) {
	t.Run("profile", func(t *testing.T) {
		clk := newKAClock()
		stops := newKAStops()
		cfg := ipc.SolidFrameProfile()
		cfg.Protocol, cfg.Listen, cfg.ConnectionStop, cfg.Clock = plEchoProto(nil), "127.0.0.1:0", stops.add, clk
		server := startService(t, cfg)
		peer := kaDialRaw(t, server.Addr().String())
		clk.armed(t, 1, "the server's inactivity window")
		for i := range 100 {
			clk.step(t, ipc.SolidFrameKeepAlive, "the server's window")
			require.Empty(t, stops.list(), "closed before ping %d", i)
			peer.write(kaPing)
			peer.expectPing()
		}
		require.Empty(t, stops.list())
		require.Equal(t, uint64(100), server.Stats().KeepAlivesReceived)
	})
	t.Run("defaults", func(t *testing.T) {
		clk := newKAClock()
		stops := newKAStops()
		server := startService(t, ipc.Config{
			Protocol: plEchoProto(nil), Listen: "127.0.0.1:0", ConnectionStop: stops.add, Clock: clk,
			FirstPacketTimeout: -1,
		})
		peer := kaDialRaw(t, server.Addr().String())
		clk.armed(t, 1, "the server's inactivity window")
		clk.Advance(ipc.SolidFrameKeepAlive)
		peer.expectClosed()
		require.ErrorIs(t, stops.first(t, "the server to close"), ipc.ErrInactivity)
	})
}
