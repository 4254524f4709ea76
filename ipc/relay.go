package ipc

// The relay engine: a relay node forwards messages between its connections
// by name, copying body chunks without decoding them (docs/relay.md has the
// design; this file the configuration and the engine's state).
//
// Files: relay.go (config, engine), relay_names.go (names, placeholders,
// relay paths), relay_msg.go (one relayed message and its stub),
// relay_conn.go (a connection's side: routing headers and chunks, its
// mailbox), relay_credit.go (buffers and credits), relay_writer.go (the
// writer copying a relayed body).

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipcframe/ipcframe/internal/clock"
)

// RelayConfig configures a relay node (Config.Relay). The zero value
// relays nothing; every other zero field means its default.
type RelayConfig struct {
	// Enabled makes the service forward messages whose header names a
	// relay path: a message sent to "relay-host:port/name" by a peer is
	// written to the connection registered as name (Conn.RegisterRelayName),
	// its body copied chunk by chunk, never decoded.
	Enabled bool
	// SourceBytes is how many bytes of relayed data from one source
	// connection the relay holds (until their destinations take them)
	// before it withholds that source's relay credits. Default 4 MiB; at
	// least 1.
	SourceBytes int
	// MaxBuffers is how many packets of up to 64 KiB a source may send
	// beyond SourceBytes (those its credits allow): a source making the
	// relay hold more than SourceBytes + MaxBuffers × 64 KiB ignores its
	// credits and closes with ErrRelayFlood. Default 256; at least 1; it
	// must be at least the peers' Config.RelayCredits. A source connection
	// may make the relay hold up to 4 + 16 MiB by default.
	MaxBuffers int
	// WaitTimeout is how long a message addressed to a name no connection
	// registered waits for one (in a placeholder); then it fails and its
	// originator gets ErrCanceledByPeer. Default 10 s; negative fails such
	// messages at once. Measured on Config.Clock.
	WaitTimeout time.Duration
	// MaxURL bounds the relay path of a received message, in bytes; a
	// longer one closes its connection with ErrRelayURL. Default 256;
	// limits [1, 65535].
	MaxURL int
	// StallTimeout closes a destination connection, with ErrRelayStalled,
	// when relayed data waited for it this long without it taking a byte
	// (a peer that never reads). Default 60 s; negative disables it.
	// Measured on Config.Clock.
	StallTimeout time.Duration
}

// maxRelayCredits bounds Config.RelayCredits.
const maxRelayCredits = 4096

func (r RelayConfig) validate() error {
	if !r.Enabled {
		return nil
	}
	if r.MaxBuffers < 1 {
		return errors.New("MaxBuffers must be positive")
	}
	if r.SourceBytes < 1 {
		return errors.New("SourceBytes must be positive")
	}
	if r.MaxURL < 1 || r.MaxURL > 0xffff {
		return fmt.Errorf("MaxURL must be in [1, 65535], got %d", r.MaxURL)
	}
	return nil
}

// relayEngine is a relay node's shared state: the registered names and the
// placeholders of names not registered yet. Everything else of the relay
// belongs to connections (relayConn, owned by each connection's loop) and
// to the relayed messages (relayMsg, guarded by their own mutex).
//
// Lock order: relayEngine.mu, then relayConn.mu or relayMsg.mu; no lock is
// held while calling into a connection (queueDirect, Wake, cancel) or
// completing a message.
type relayEngine struct {
	// immutable
	svc   *Service
	cfg   RelayConfig
	clock clock.Clock

	mu sync.Mutex
	// names maps a lower-cased name to its registration or placeholder
	// (guarded by mu).
	names map[string]*relayName
}

func newRelayEngine(s *Service) *relayEngine {
	return &relayEngine{svc: s, cfg: s.cfg.Relay, clock: s.cfg.Clock, names: map[string]*relayName{}}
}

// RegisterRelayName makes the connection the destination of messages
// relayed to name through this service (a relay node): a peer's message
// sent to "this-host:port/name" is written to this connection. Names are
// case-insensitive, at most 255 printable ASCII bytes without '/' or space.
// A later registration of the same name, on any connection, replaces this
// one; the name is dropped when the connection closes. Messages that were
// waiting for the name are delivered at once. A connection may register
// several names. It is typically called from the handler of an
// application's login or register message. Errors: ErrRelayDisabled,
// ErrBadName, ErrConnectionGone.
func (x Conn) RegisterRelayName(name string) error {
	if x.c == nil {
		return ErrConnectionGone
	}
	if x.c.relay == nil {
		return ErrRelayDisabled
	}
	return x.c.relay.eng.register(x.c, name)
}
