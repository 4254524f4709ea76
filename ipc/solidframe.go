package ipc

import "time"

// SolidFrame 6.0's mprpc defaults (src/mprpcconfiguration.cpp, main
// branch), for services that talk to C++ SolidFrame peers; see
// SolidFrameProfile and docs/interop.md.
const (
	// SolidFrameKeepAlive is connection_keepalive_timeout_seconds: a C++
	// client pings every 300 s.
	SolidFrameKeepAlive = 300 * time.Second
	// SolidFrameInactivityTimeout is connection_inactivity_timeout_seconds:
	// a C++ server closes a connection after a 600 s window with no traffic.
	SolidFrameInactivityTimeout = 600 * time.Second
	// SolidFrameKeepAliveCount is connection_inactivity_keepalive_count: a
	// C++ server closes a connection on the 2nd KeepAlive it receives in
	// one inactivity window (it counts, then closes when the count is not
	// below this; SolidFrame's work branch raised it to 10).
	SolidFrameKeepAliveCount = 2
)

// SolidFrameProfile returns a Config whose connection-level settings work
// with C++ SolidFrame 6.0 mprpc services, in both roles; set Protocol (and
// Listen, TLS, hooks) on the result. It differs from the defaults in the
// keepalive rules only; the other wire and flow limits already are
// SolidFrame's: 4 KiB buffers, 1-byte type ids, writer multiplex 64,
// 128 requests awaiting responses, 192 reader slots, 4 continuous packets,
// 1024 queued messages per pool, reconnect backoff capped at 10 s.
//
// Dialing a C++ server (inactivity window W = 600 s, limit L): an idle
// connection survives only if every window holds at least one ping (else
// the inactivity rule closes it) and at most L-1 (the L-th closes it), that
// is W/(L-1) <= ping interval < W. Our default 30 s interval sends up to 20
// pings per window and is dropped at any L <= 20. The profile pings after
// 450 s of silence, the middle of [300 s, 600 s): at most 2 and at least 1
// ping per window, so it is never dropped when L >= 3, with 150 s of margin
// on each side for latency and timer skew. At SolidFrame 6.0's default
// L = 2 no interval works (it would have to be both >= 600 s and < 600 s):
// an idle connection is dropped sooner or later (after about 37 minutes
// with this profile) and the pool reconnects; only application traffic or
// a raised connection_inactivity_keepalive_count on the server (SolidFrame's
// work branch uses 10) avoids it. DeadPeerTimeout stays 3×KeepAlive.
//
// Accepting C++ clients (which ping every 300 s of silence): the profile
// uses SolidFrame's 600 s inactivity window, where our default 120 s would
// close an idle C++ client's connection, and answers up to 9 pings per
// window (MaxKeepAlives closes on the one after; SolidFrame's work-branch
// limit of 10 closes on the 10th, so this is the same rule), well above
// the at most 3 a 300 s client can send in one window.
//
// It also turns the first-packet rule off (FirstPacketTimeout < 0): a C++
// client may stay silent until its first ping, 300 s after it connects,
// and a C++ 6.0 server would count our opening KeepAlive against its ping
// limit.
//
// A Go server on the defaults (120 s window) closes a client on this
// profile for inactivity: use the profile on both ends, or only toward
// SolidFrame peers.
func SolidFrameProfile() Config {
	return Config{
		BufferSize:            DefaultBufferSize,
		TypeIDSize:            1,
		MaxActiveConnections:  DefaultMaxActiveConnections,
		MaxPendingConnections: DefaultMaxPendingConnections,
		MaxQueuedMessages:     DefaultMaxQueuedMessages,
		MaxMultiplex:          DefaultMaxMultiplex,
		MaxResponseWait:       DefaultMaxResponseWait,
		MaxReaderSlots:        DefaultMaxReaderSlots,
		ContinuousPackets:     DefaultContinuousPackets,
		ReconnectMax:          DefaultReconnectMax,
		KeepAlive:             SolidFrameProfileKeepAlive,
		InactivityTimeout:     SolidFrameInactivityTimeout,
		MaxKeepAlives:         SolidFrameProfileMaxKeepAlives,
		FirstPacketTimeout:    -1,
	}
}

// The keepalive values SolidFrameProfile chooses (see its comment).
const (
	// SolidFrameProfileKeepAlive is the profile's ping interval: the
	// middle of [W/2, W) for SolidFrame's W = 600 s window.
	SolidFrameProfileKeepAlive = 450 * time.Second
	// SolidFrameProfileMaxKeepAlives is the profile's ping limit per
	// window, the same rule as SolidFrame's work-branch count of 10.
	SolidFrameProfileMaxKeepAlives = 9
)
