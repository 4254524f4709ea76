package ipc

// Packet size toward ipcframe peers.
//
// A C++ SolidFrame peer must hold a whole packet in its receive buffer
// (4 KiB by default), so BufferSize defaults to 4 KiB. Every ipcframe
// reader accepts any packet up to the format's largest (a 65536-byte
// payload) whatever its own BufferSize, and an ipcframe peer says it is
// one: with the window extension's hello (docs/protocol.md §7b). So a
// writer whose BufferSize was left at zero writes the packets that
// continue a large message in packets of up to largePacketSize bytes (or
// WriteBatch, if smaller) once the peer's hello has arrived, and
// BufferSize packets otherwise, before the hello and to peers that send
// none. Relay-bound messages follow the same rule: a relay copies each
// chunk into its message's own buffers and bounds what it holds of a
// source in bytes (RelayConfig.SourceBytes, docs/relay.md).

// largePacketSize is the largest packet, header included, that the writer
// of a service with the default BufferSize sends to a peer that sent the
// window hello: every such peer (an ipcframe endpoint) reads any packet up
// to the format's 64 KiB payload (docs/protocol.md §7b), while a C++
// SolidFrame peer, which sends no hello and must hold a whole packet in its
// receive buffer, keeps getting BufferSize packets. Per 64 MiB, 16 times
// fewer packets mean 16 times fewer packet and chunk headers to write and
// parse, decoder calls and window checks (docs/benchmarks.md, "Large
// messages, third session").
const largePacketSize = 64 << 10

// packetSize is the size limit of the next packet (pump): bigPacket once
// the peer's hello arrived, when the packet continues a large message (one
// that has written more than smallMessage bytes, pipe.go); BufferSize
// otherwise. Small messages thus keep sharing BufferSize packets, which
// the peer dispatches as soon as each has arrived, and a message queued
// beside a large one (insertNew puts it in front) starts in a BufferSize
// packet too. Beside small messages too: until the ninth session a large
// message kept to BufferSize packets while the sending pipe was the short
// one (64 KiB packets then cost echoes beside 1 KiB calls their rate,
// docs/benchmarks.md, "Head-of-line after the merges", before the peer's
// reader bounded what it lets in flight beside small messages); with that
// window's half-window grants (besideGrantStep, window.go) a grant is two
// large packets in one write, and beside c=1 calls both the bulk flow and
// the calls completed rose (docs/benchmarks.md, "Credit beside small
// calls, ninth session").
func (w *writer) packetSize() int {
	if w.peerWindows && w.bigPacket > w.bufSize && w.wq.len() > 0 {
		if s := &w.slots[w.wq.front()]; s.phase == slotBody && s.bytes > smallMessage {
			return w.bigPacket
		}
	}
	return w.bufSize
}
