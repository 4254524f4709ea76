package ipc

import "strings"

// Flags is a message's flag set. The low bits are chosen by the sender; the
// state bits are set by the engine. All of them travel in the message header
// (docs/protocol.md), with the same bit positions as SolidFrame's mprpc.
type Flags uint32

// Message flags.
const (
	// AwaitResponse marks a request: the sender keeps it until a response
	// arrives. SendRequest sets it.
	AwaitResponse Flags = 1 << 0
	// Synchronous messages of one pool are sent one after another, in send
	// order, on the pool's synchronous connection (package doc).
	Synchronous Flags = 1 << 1
	// Idempotent messages are resent after a connection failure until fully
	// sent, or, if they await a response, until the response arrives.
	Idempotent Flags = 1 << 2
	// OneShot messages are tried once: they fail at the first connection
	// failure, and at once when the pool has no connection. Messages sent to
	// a specific connection are always OneShot.
	OneShot Flags = 1 << 3
	// StartedSend is set by the writer when serialization begins.
	StartedSend Flags = 1 << 4
	// DoneSend is set by the writer when serialization ends.
	DoneSend Flags = 1 << 5
	// Canceled marks a canceled message.
	Canceled Flags = 1 << 6
	// Response marks a response; informational.
	Response Flags = 1 << 7
	// ResponsePart marks one of several responses to one request.
	ResponsePart Flags = 1 << 8
	// ResponseLast marks the last of several responses.
	ResponseLast Flags = 1 << 9
	// OnPeer is a state bit: the message is on its first trip.
	OnPeer Flags = 1 << 10
	// BackOnSender is a state bit: the message travels back to the sender of
	// the request it answers.
	BackOnSender Flags = 1 << 11
	// Relayed is a state bit set by a relay.
	Relayed Flags = 1 << 12

	// CloseAfter closes the connection that carries the message, gracefully,
	// once the message has completed (written, or answered if it is a
	// request). It is local: it does not travel on the wire.
	CloseAfter Flags = 1 << 16
)

// localFlags never travel on the wire.
const localFlags = CloseAfter

// userFlags are the flags a caller may pass to a send.
const userFlags = AwaitResponse | Synchronous | Idempotent | OneShot | ResponsePart | ResponseLast | CloseAfter

// stateFlags are the trip-state bits.
const stateFlags = OnPeer | BackOnSender

var flagNames = [...]string{
	"AwaitResponse", "Synchronous", "Idempotent", "OneShot", "StartedSend",
	"DoneSend", "Canceled", "Response", "ResponsePart", "ResponseLast",
	"OnPeer", "BackOnSender", "Relayed",
}

// String lists the set flags, separated by '|'.
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if rest := f &^ (1<<len(flagNames) - 1); rest != 0 {
		parts = append(parts, "0x"+strings.ToLower(strconvHex(uint32(rest))))
	}
	return strings.Join(parts, "|")
}

func strconvHex(v uint32) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var b [8]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[i:])
}

// nextState returns the trip-state bits a message carries when sent, given
// the state bits it had when it was received (0 for a fresh message):
// fresh → OnPeer, OnPeer → BackOnSender, BackOnSender → OnPeer|BackOnSender
// ("back on peer"), back on peer → BackOnSender.
func nextState(received Flags) Flags {
	switch received & stateFlags {
	case 0:
		return OnPeer
	case OnPeer:
		return BackOnSender
	case BackOnSender:
		return OnPeer | BackOnSender
	default:
		return BackOnSender
	}
}

// isBack reports whether received state bits mean the message answers a
// request of ours (BackOnSender or back on peer).
func isBack(f Flags) bool { return f&BackOnSender != 0 }
