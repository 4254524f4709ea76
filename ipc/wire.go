package ipc

// This file holds the wire format: the packet header, the commands of a
// packet's payload and the message header. docs/protocol.md is the normative
// specification; every function here follows it byte for byte (SolidFrame
// mprpc's framing). The message header is encoded and decoded by serde
// through (*msgHeader).Serde, and the type id that starts a message body by
// msgBody (writer.go), so that the writer and the reader share one codec.
//
// Nothing here keeps state: the writer and the reader call these functions on
// buffers they own.

import (
	"encoding/binary"
	"fmt"

	"github.com/ipcframe/ipcframe/serde"
)

// Packet framing.
const (
	// packetHeaderSize is the size of the header that starts every packet.
	packetHeaderSize = 4

	// Packet types (header byte 0).
	packetTypeData      = 1
	packetTypeKeepAlive = 2

	// Packet flags (header byte 1).
	packetFlagSize64KB   = 1 << 0 // 17th bit of the payload size
	packetFlagCompressed = 1 << 1 // the payload is compressed
	packetFlagAckRequest = 1 << 2 // relay credit request
	packetFlagsKnown     = packetFlagSize64KB | packetFlagCompressed | packetFlagAckRequest

	// maxPacketPayload is the largest payload a packet header can declare.
	maxPacketPayload = 65536
	// minFreePacketData is the room the writer needs to start a new chunk in
	// a packet.
	minFreePacketData = 16
)

// Command codes, the first byte of every command in a Data payload.
const (
	cmdEndMessageFlag = 1 // set in EndMessage (and FullMessage)

	cmdNewMessage    = 2 // slot, u16 len, data: first chunk of a message (its header)
	cmdFullMessage   = 3 // NewMessage|EndFlag: accepted, never written
	cmdMessage       = 4 // slot, u16 len, data: continuation chunk
	cmdEndMessage    = 5 // slot, u16 len, data: last chunk of a message
	cmdCancelMessage = 6 // slot: the sender abandoned the message in slot
	cmdUpdate        = 7 // no operands; ignored (eight of them: the hello, window.go)
	cmdCancelRequest = 8 // index, unique (cross): stop sending that request's answer
	cmdAckdCount     = 9 // u8 count: relay credits returned
	// cmdWindow is extension 1 (window.go): slot, unique, credit (cross).
	cmdWindow = 0x0a
	// cmdWindowStart is extension 1: slot (cross); the message under way
	// in slot obeys a window from here on.
	cmdWindowStart = 0x0b

	// chunkHeaderMax is the largest chunk header: code, slot as a cross
	// integer, u16 length.
	chunkHeaderMax = 1 + serde.MaxCrossLen + 2
	// maxChunkData is the largest chunk data (the u16 length).
	maxChunkData = 0xffff
)

// packetHeader is a decoded packet header.
type packetHeader struct {
	typ   uint8 // packetTypeData or packetTypeKeepAlive
	flags uint8 // packetFlag* bits as on the wire (Size64KB included when parsed)
	size  int   // payload bytes, 0..maxPacketPayload
}

// putPacketHeader writes h to b[:packetHeaderSize]. The Size64KB flag is
// derived from h.size (set for 65536, cleared otherwise), whatever h.flags
// holds. b must have room for the header and h.size must be at most
// maxPacketPayload.
func putPacketHeader(b []byte, h packetHeader) {
	flags := h.flags &^ packetFlagSize64KB
	if h.size>>16 != 0 {
		flags |= packetFlagSize64KB
	}
	b[0] = h.typ
	b[1] = flags
	binary.LittleEndian.PutUint16(b[2:4], uint16(h.size))
}

// parsePacketHeader decodes and validates the packet header at the front of
// b, which must hold at least packetHeaderSize bytes. The payload may be at
// most min(maxPayload, maxPacketPayload) bytes. It runs before the payload is
// buffered, so a bad header closes the connection at once. Every failure
// wraps ErrBadPacketHeader.
func parsePacketHeader(b []byte, maxPayload int) (packetHeader, error) {
	h := packetHeader{
		typ:   b[0],
		flags: b[1],
		size:  int(b[1]&packetFlagSize64KB)<<16 | int(binary.LittleEndian.Uint16(b[2:4])),
	}
	if h.typ != packetTypeData && h.typ != packetTypeKeepAlive {
		return packetHeader{}, fmt.Errorf("%w: type %d", ErrBadPacketHeader, h.typ)
	}
	if h.flags&^packetFlagsKnown != 0 {
		return packetHeader{}, fmt.Errorf("%w: unknown flags %#02x", ErrBadPacketHeader, h.flags&^packetFlagsKnown)
	}
	if maxPayload > maxPacketPayload {
		maxPayload = maxPacketPayload
	}
	if h.size > maxPayload {
		return packetHeader{}, fmt.Errorf("%w: payload size %d above %d", ErrBadPacketHeader, h.size, maxPayload)
	}
	if h.typ == packetTypeKeepAlive && (h.size != 0 || h.flags != 0) {
		return packetHeader{}, fmt.Errorf("%w: keepalive with flags %#02x and size %d", ErrBadPacketHeader, h.flags, h.size)
	}
	return h, nil
}

// putChunkStart writes the code and the slot of a chunk at the front of b and
// reserves its u16 length. It returns the offset of the chunk data. b must
// have room for chunkHeaderMax bytes. The writer then encodes the data in
// place and calls finishChunk.
func putChunkStart(b []byte, code uint8, slot uint32) (dataOff int) {
	b[0] = code
	n := serde.PutCross(b[1:], uint64(slot))
	if n == 0 {
		panic("ipc: putChunkStart: no room for the chunk header")
	}
	b[1+n] = 0
	b[2+n] = 0
	return 1 + n + 2
}

// finishChunk completes a chunk started by putChunkStart at the front of b:
// it rewrites the code (the writer chooses Message or EndMessage once the
// data is encoded) and stores dataLen (at most maxChunkData) as the length.
func finishChunk(b []byte, code uint8, dataLen int) {
	if dataLen < 0 || dataLen > maxChunkData {
		panic(fmt.Sprintf("ipc: finishChunk: chunk length %d out of range", dataLen))
	}
	n, err := serde.CrossPrefixLen(b[1])
	if err != nil {
		panic("ipc: finishChunk: not a chunk start")
	}
	b[0] = code
	binary.LittleEndian.PutUint16(b[1+n:], uint16(dataLen))
}

// appendCancelMessage appends a CancelMessage command for slot.
func appendCancelMessage(b []byte, slot uint32) []byte {
	b = append(b, cmdCancelMessage)
	return serde.AppendCross(b, uint64(slot))
}

// appendCancelRequest appends a CancelRequest command for the request id
// (index, unique).
func appendCancelRequest(b []byte, index, unique uint64) []byte {
	b = append(b, cmdCancelRequest)
	b = serde.AppendCross(b, index)
	return serde.AppendCross(b, unique)
}

// command is one decoded payload command. Which fields are set depends on
// code:
//   - chunks (NewMessage, FullMessage, Message, EndMessage): slot and data
//     (data aliases the payload);
//   - CancelMessage, WindowStart: slot;
//   - CancelRequest: index and unique;
//   - AckdCount: count;
//   - Window: index (the slot), unique and credit;
//   - Update: nothing.
type command struct {
	code          uint8
	slot          uint32
	data          []byte
	index, unique uint64
	credit        uint64
	count         uint8
}

// parseCommand decodes the command at the front of the payload p and returns
// it with its length n. Slots must be below maxSlot. A payload always holds
// whole commands, so a short command is an error, not a wait. Errors:
// ErrBadCommand (unknown code), ErrBadSlot (slot >= maxSlot), ErrBadChunk
// (truncated command or chunk data past the payload), and ErrProtocol
// wrapping serde.ErrBadCross (bad cross integer check bits). Update is
// returned for the caller to ignore.
func parseCommand(p []byte, maxSlot uint32) (cmd command, n int, err error) {
	if len(p) == 0 {
		return command{}, 0, fmt.Errorf("%w: empty command", ErrBadChunk)
	}
	cmd.code = p[0]
	n = 1
	switch cmd.code {
	case cmdNewMessage, cmdFullMessage, cmdMessage, cmdEndMessage, cmdCancelMessage, cmdWindowStart:
		slot, m, err := parseCross(p[n:], cmd.code, "slot")
		if err != nil {
			return command{}, 0, err
		}
		if slot >= uint64(maxSlot) {
			return command{}, 0, fmt.Errorf("%w: command %d slot %d, limit %d", ErrBadSlot, cmd.code, slot, maxSlot)
		}
		cmd.slot = uint32(slot)
		n += m
		if cmd.code == cmdCancelMessage || cmd.code == cmdWindowStart {
			return cmd, n, nil
		}
		if len(p)-n < 2 {
			return command{}, 0, fmt.Errorf("%w: command %d truncated before its length", ErrBadChunk, cmd.code)
		}
		l := int(binary.LittleEndian.Uint16(p[n:]))
		n += 2
		if l > len(p)-n {
			return command{}, 0, fmt.Errorf("%w: chunk length %d, %d bytes left in the payload", ErrBadChunk, l, len(p)-n)
		}
		cmd.data = p[n : n+l : n+l]
		return cmd, n + l, nil
	case cmdUpdate:
		return cmd, n, nil
	case cmdCancelRequest:
		idx, m, err := parseCross(p[n:], cmd.code, "index")
		if err != nil {
			return command{}, 0, err
		}
		n += m
		uniq, m, err := parseCross(p[n:], cmd.code, "unique")
		if err != nil {
			return command{}, 0, err
		}
		cmd.index, cmd.unique = idx, uniq
		return cmd, n + m, nil
	case cmdWindow:
		var vals [3]uint64
		for k, what := range [...]string{"slot", "unique", "credit"} {
			v, m, err := parseCross(p[n:], cmd.code, what)
			if err != nil {
				return command{}, 0, err
			}
			vals[k] = v
			n += m
		}
		cmd.index, cmd.unique, cmd.credit = vals[0], vals[1], vals[2]
		return cmd, n, nil
	case cmdAckdCount:
		if len(p) < 2 {
			return command{}, 0, fmt.Errorf("%w: AckdCount truncated", ErrBadChunk)
		}
		cmd.count = p[1]
		return cmd, 2, nil
	default:
		return command{}, 0, fmt.Errorf("%w: code %d", ErrBadCommand, cmd.code)
	}
}

// parseCross decodes a cross integer operand of command code; a short
// operand is ErrBadChunk, bad check bits ErrProtocol and serde.ErrBadCross.
func parseCross(b []byte, code uint8, what string) (uint64, int, error) {
	v, n, err := serde.ParseCross(b)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: command %d %s: %w", ErrProtocol, code, what, err)
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("%w: command %d truncated in its %s", ErrBadChunk, code, what)
	}
	return v, n, nil
}

// msgHeader is the message header: the bytes a NewMessage chunk (and, if it
// does not fit, the following Message chunks) carries before the body.
type msgHeader struct {
	flags Flags  // all flags, state bits included
	url   string // relay destination; empty for a direct message
	// senderIndex/senderUnique identify the message in the sender's writer
	// (slot + 1, slot unique); index 0 means none.
	senderIndex, senderUnique uint32
	// recipientIndex/recipientUnique are, in a response, the sender ids of
	// the request it answers; 0, 0 otherwise.
	recipientIndex, recipientUnique uint32
}

// Serde lists the header fields in wire order: flags (plain integer), url
// (checked size and bytes), then the four ids (plain integers).
func (h *msgHeader) Serde(v *serde.Visitor) {
	v.Uint32((*uint32)(&h.flags))
	v.String(&h.url)
	v.Uint32(&h.senderIndex)
	v.Uint32(&h.senderUnique)
	v.Uint32(&h.recipientIndex)
	v.Uint32(&h.recipientUnique)
}
