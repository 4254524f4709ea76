package ipc

import "time"

// Defaults for Config fields left zero. Each Config field's comment repeats
// its default and limits.
const (
	DefaultBufferSize            = 4 << 10
	DefaultMaxActiveConnections  = 1
	DefaultMaxPendingConnections = 1
	DefaultMaxQueuedMessages     = 1024
	DefaultMaxMultiplex          = 64
	DefaultMaxResponseWait       = 128
	DefaultMaxReaderSlots        = 192
	DefaultContinuousPackets     = 4
	DefaultMessageWindow         = 4 << 20
	DefaultTypeIDSize            = 1
	DefaultWriteBatch            = 64 << 10
	DefaultPumpQuantum           = 256 << 10
	DefaultDialTimeout           = 10 * time.Second
	DefaultKeepAlive             = 30 * time.Second
	DefaultInactivityTimeout     = 120 * time.Second
	DefaultMaxKeepAlives         = 10
	DefaultFirstPacketTimeout    = 5 * time.Second
	DefaultReconnectMin          = 50 * time.Millisecond
	DefaultReconnectMax          = 10 * time.Second
	DefaultResolveInterval       = 30 * time.Second
	DefaultMinResolveInterval    = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultMaxTLSHandshakes      = 256
	DefaultRelayCredits          = 256
	DefaultRelayMaxBuffers       = 256
	DefaultRelaySourceBytes      = 4 << 20
	DefaultRelayWaitTimeout      = 10 * time.Second
	DefaultRelayMaxURL           = 256
	DefaultRelayStallTimeout     = 60 * time.Second
	DefaultMaxRawBuffered        = 64 << 10
)

// maxRawBuffered is the largest Config.MaxRawBuffered.
const maxRawBuffered = 1 << 20
