package ipc

// Sending a large value's own bytes (issue 8).
//
// A []byte or string field is normally copied by the encoder into the
// writer's packet, and then by the kernel from there. When such a value
// fills a whole large packet body (64 KiB packets to ipcframe peers,
// packetsize.go), the pump (conn.go) instead writes the packet header and
// chunk header from its batch buffer and the value's bytes themselves, as
// one writev: the encoder skips them (serde.Encoder.Borrow) and the writer
// hands them back beside the packet (fillBorrow).
//
// Lifetime: the bytes are the user's, and must not be read after the
// message completes (a Recyclable message is reused then). The reactor's
// Write hands them to the socket or copies them before it returns: gnet
// v2's Writev copies whatever the kernel did not take into its outbound
// buffer (elastic ring and list buffers: Write/PushBack copy), and a TLS
// connection encrypts them into records before returning. Completions run
// only after Write returns (pump), so no completion fires while anything
// still refers to the value.
//
// Borrowed only while gnet's outbound buffer is empty (the pump asks
// before each batch): when it holds bytes, Write copies every piece into
// it anyway, so borrowing would save nothing and cost gnet a buffer node
// per piece.
//
// Not borrowed: packets of a connection with compression (a compressed
// packet is a copy anyway), relay-bound chunks (a relay's forwarded chunks
// are its own buffers, not a value; a source's relay-bound messages were
// left out when borrowing was measured), pieces smaller than borrowMin (the end of a value, a window's
// last credit), and everything before the value's length prefix is
// written. Nothing follows borrowed bytes in their packet: the writer ends
// the packet there.

// borrowMin is the smallest packet body worth sending from the value
// itself: below it, the copy costs less than the extra iovec and the
// packet cut short. Default 4 KiB packets therefore never borrow.
const borrowMin = 16 << 10

// borrow returns the next len(room) bytes of slot s's message, its own
// memory, when the value under way covers all of room and borrowing is on
// (fillBorrow); nil otherwise, leaving the encoder as it was.
func (w *writer) borrow(s *wslot, room []byte) []byte {
	if !w.mayBorrow || w.codec != nil || s.phase != slotBody || s.st.credit || s.st.relay != nil ||
		len(room) < borrowMin || s.enc.Borrowable() < len(room) {
		return nil
	}
	return s.enc.Borrow(len(room))
}
