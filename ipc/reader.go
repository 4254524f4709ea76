package ipc

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/serde"
)

// Reader slot phases.
const (
	rIdle uint8 = iota
	rHeader
	rBody
	rSkip  // the receiver does not want this message: chunks are dropped
	rRelay // the body is forwarded undecoded (relayEvents.relayChunk)
)

// rslot is the receive state of one of the peer's writer slots.
type rslot struct {
	phase uint8
	large bool // more than smallMessage bytes arrived (counted in reader.large)
	bytes int  // chunk bytes received for the message so far
	dec   *serde.Decoder
	hdr   msgHeader
	body  msgBody
	win   rwindow    // window.go
	async *AsyncSink // the message's asynchronous sink, once its stream started
	// owner and idx are the reader and peer slot the state is lent to;
	// hooked is set once the decoder's stream hook is installed (window.go).
	owner  *reader
	idx    uint32
	hooked bool
}

// readerEvents receives what a reader parses. It runs on the connection's
// loop; m belongs to the callee.
type readerEvents interface {
	// onHeader sees each message header as soon as it is decoded; true
	// drops the message's body.
	onHeader(hdr *msgHeader) (skip bool)
	onMessage(hdr *msgHeader, m Message)
	onCancelRequest(index, unique uint64)
	onCancelMessage(slot uint32)
	onKeepAlive()
	// onHello: the peer grants windows (window.go).
	onHello()
	// onWindow: the peer granted credit to our writer slot's message.
	onWindow(slot, unique, credit uint64)
	// grantWindow: send the peer a Window command.
	grantWindow(g windowGrant)
}

// headerAction is what relayEvents.relayHeader decides for a message body.
type headerAction uint8

const (
	hdrDecode headerAction = iota // decode and dispatch it
	hdrSkip                       // drop it
	hdrRelay                      // forward its chunks undecoded
)

// relayEvents receives what a reader sees of relaying and relay credits
// (docs/relay.md). The connection implements it; a readerEvents that does
// not (the tests' harnesses) relays nothing, and AckRequest packets and
// AckdCount commands are then ignored.
type relayEvents interface {
	// relayHeader sees each header that onHeader kept and says what to do
	// with the body: decode it (hdrDecode), drop it (hdrSkip) or forward
	// its chunks to relayChunk (hdrRelay). An error closes the connection.
	relayHeader(slot uint32, hdr *msgHeader) (headerAction, error)
	// relayChunk takes the data of one body chunk of a relayed message;
	// data aliases the packet and is valid during the call only.
	relayChunk(slot uint32, data []byte, end bool) error
	// relayWindowStart: the relayed message in slot became windowed
	// (WindowStart).
	relayWindowStart(slot uint32)
	// packetEnd follows each Data packet's commands; ackRequest is its
	// AckRequest flag.
	packetEnd(ackRequest bool)
	// ackdCount takes an AckdCount command; an error closes the connection.
	ackdCount(n uint8) error
}

// reader parses packets and demultiplexes message chunks by the sender's
// writer slot. It is owned by the connection's loop and never touches a
// socket: feed takes whatever bytes arrived.
//
// A packet header is validated before its payload is waited for, so an
// oversize or malformed header closes the connection at once. Any violation
// returns an error wrapping ErrProtocol; the connection then closes.
type reader struct {
	maxSlots   uint32
	maxPayload int
	typeIDSize int
	codec      compress.Codec
	proto      *Protocol
	reg        *serde.Registry
	limits     serde.Limits
	ev         readerEvents
	rev        relayEvents // ev, if it implements relayEvents; else nil

	// slots is indexed by the peer's writer slot; it grows on demand up
	// to the highest slot seen (below maxSlots). An entry is set only
	// while a message is under way in that slot: it is lent by codecs and
	// given back when the message ends, so an idle connection holds none.
	slots      []*rslot
	codecs     *codecPool // the loop's pool (conn.go), or the reader's own
	budget     recvBudget // the decoders' serde.ValueBudget while lent to this reader
	scratch    []byte     // decompression output, allocated at the first compressed packet
	dispatched bool       // a message was dispatched in the current packet
	// large counts the slots whose message in progress has more than
	// smallMessage bytes; interleaved is set when a small message arrived
	// while large > 0, and read and cleared by the connection (pipe.go).
	large       int
	interleaved bool
	// beside is set by the connection while its receiving pipe is short
	// (small messages arrive beside a large one, pipe.go): windowed
	// messages then get the window besideShare (window.go).
	beside bool
	// besideFeed counts the small messages dispatched beside a large one
	// in the current feed; besideMax and besidePrev are the most in one
	// feed since the last beside grant and in the interval before it: the
	// fair share of a large message's window (besideShare, window.go).
	besideFeed, besideMax, besidePrev int
	// besideSeveral is set when a feed brought more than one small
	// message beside a large one, until the receiving pipe's short spell
	// ends (adaptRecv, pipe.go): callers in flight together (oneCaller,
	// readinto.go).
	besideSeveral bool
	// besideExtra widens the window beside small messages to cover a
	// grant's round trip, besideCalmN counting the round trips in a row
	// that did not run dry since it last changed (besideProbe, window.go);
	// reads counts the reads the
	// connection fed (onData), so that a probe tells whether a grant's
	// bytes came in a later read than the bytes before them.
	besideExtra int64
	besideCalmN int
	reads       uint64
	// sendBeside is set by the connection while its own sending pipe is
	// short (it sends a large message beside small ones, pipe.go): the
	// window then gets no besideExtra (window.go).
	sendBeside bool

	// msgWindow is Config.MessageWindow; helloSeen is set when the peer's
	// hello arrived: this end then windows its messages and accepts Window
	// commands.
	msgWindow int
	helloSeen bool
	// Asynchronous sinks (window.go): bytes they hold, all and those of
	// messages without a window; post runs a function on the loop and
	// afterRelease runs there after released bytes were counted (both set
	// by the connection; nil in socket-free tests).
	asyncHeld    int64
	asyncPlain   int64
	post         func(func()) error
	afterRelease func()
	pktLen       int // payload length of the packet being parsed

	// Reading into values (readinto.go): direct is set by a plain-TCP
	// connection; open is the packet whose data goes straight into a
	// value; plan is the direct read asked for: the open packet's rest
	// and the packets predicted to carry the value's next bytes; run is
	// the sender's turns between messages seen so far.
	direct bool
	open   openChunk
	plan   readPlan
	run    packetRun
	// short is the adaptive short read beside small messages (readinto.go,
	// shortRead): the size asked for gnet's reads before a value's packet,
	// the size asked for the read under way (0: none), and whether a value
	// packet opened since it was asked.
	short       int
	shortAsked  int
	shortOpened bool

	yield func() // runtime.Gosched; tests count the calls
	// flush writes the connection's output in the middle of a feed
	// (conn.flushMidFeed) and reports whether the connection is still
	// open; nil in socket-free tests.
	flush func() bool
}

func newReader(cfg *Config, ev readerEvents) *reader {
	rev, _ := ev.(relayEvents)
	return &reader{
		rev:        rev,
		maxSlots:   uint32(cfg.MaxReaderSlots),
		maxPayload: maxPacketPayload,
		typeIDSize: cfg.TypeIDSize,
		codec:      cfg.Compression,
		proto:      cfg.Protocol,
		reg:        cfg.Registry,
		limits:     cfg.Limits,
		ev:         ev,
		msgWindow:  cfg.MessageWindow,
		yield:      runtime.Gosched,
	}
}

// feed consumes the whole packets at the front of data and returns how many
// bytes it used; an incomplete packet is left for the next call.
func (r *reader) feed(data []byte) (int, error) {
	used, woke := 0, false
	r.besideFeed = 0
	// owed: a message dispatched beside a large one since the last
	// mid-feed flush; flushedAt: where in data that flush was (none yet:
	// the first dispatch of a feed flushes at once).
	owed, flushedAt := false, -midFeedFlushEvery
	ahead := false // the rest of the feed was counted ahead (grantAhead)
	for len(data)-used >= packetHeaderSize {
		b := data[used:]
		h, err := parsePacketHeader(b, r.maxPayload)
		if err != nil {
			return used, err
		}
		if len(b) < packetHeaderSize+h.size {
			break
		}
		payload := b[packetHeaderSize : packetHeaderSize+h.size]
		used += packetHeaderSize + h.size
		if h.typ == packetTypeKeepAlive {
			r.ev.onKeepAlive()
			continue
		}
		if h.flags&packetFlagCompressed != 0 {
			if r.codec == nil {
				return used, fmt.Errorf("%w: compressed packet and no codec configured", ErrCompression)
			}
			if r.scratch == nil {
				r.scratch = make([]byte, maxPacketPayload)
			}
			n, err := r.codec.Decompress(r.scratch, payload)
			if err != nil {
				return used, fmt.Errorf("%w: %w", ErrCompression, err)
			}
			payload = r.scratch[:n]
		}
		if isHello(payload) {
			r.helloSeen = true
			r.ev.onHello()
			continue
		}
		r.pktLen = len(payload)
		if err := r.packet(payload); err != nil {
			return used, err
		}
		if r.rev != nil {
			r.rev.packetEnd(h.flags&packetFlagAckRequest != 0)
		}
		if r.dispatched {
			// A handler or completion ran and may have woken a goroutine
			// (a caller waiting for its response); with much input of a
			// large message left this loop would keep the P for a long
			// while, so let it run. Not without a large message under way:
			// the input is then small messages whose callers the loop
			// wakes by the hundred, and a yield would put the loop behind
			// all of them (reactor/yield.go).
			r.dispatched = false
			if r.large > 0 && len(data)-used >= yieldInput {
				owed = true
			} else {
				woke = true
			}
		}
		if owed && used-flushedAt >= midFeedFlushEvery && r.large > 0 && len(data)-used >= yieldInput {
			// What the dispatches produced (responses, the callers' next
			// requests, credit) goes out before the rest of the input is
			// decoded (flush, pipe.go), once per midFeedFlushEvery bytes
			// of input: the dispatches in between share one write.
			owed, flushedAt = false, used
			if !ahead {
				// The rest of the feed, once (window.go).
				ahead = true
				r.grantAhead(len(data) - used)
			}
			if !r.flushOut() {
				return used, errClosedMidFeed
			}
			r.yield()
			if !r.flushOut() {
				return used, errClosedMidFeed
			}
		}
	}
	if woke || owed {
		if s, ok := r.ev.(largeSender); ok && s.sendingLarge() {
			r.yield() // once, before the pump writes bulk (writer.go, sendingLarge)
		}
	}
	return used, nil
}

// yieldInput is the input left in one feed above which the reader yields
// its P, and flushes the connection's output, after dispatching a message
// while a large message is arriving.
const yieldInput = 32 << 10

// midFeedFlushEvery is how much input a feed decodes between two mid-feed
// flushes: the first message dispatched beside a large one in a feed is
// flushed (and yielded for) at once, later ones wait until this many bytes
// of input have been decoded since, so that the responses and requests of
// many calls in flight share one write instead of one each
// (docs/benchmarks.md, "Small calls at c=16, eighth session").
const midFeedFlushEvery = 32 << 10

// errClosedMidFeed ends a feed whose connection closed while its output
// was flushed (a failed write): the rest of the input is dropped.
var errClosedMidFeed = errors.New("ipc: connection closed during a feed")

// flushOut runs the flush hook, if any, and reports whether the connection
// is still open.
func (r *reader) flushOut() bool { return r.flush == nil || r.flush() }

func (r *reader) packet(p []byte) error {
	for len(p) > 0 {
		cmd, n, err := parseCommand(p, r.maxSlots)
		if err != nil {
			return err
		}
		p = p[n:]
		switch cmd.code {
		case cmdNewMessage, cmdFullMessage, cmdMessage, cmdEndMessage:
			if err := r.chunk(&cmd); err != nil {
				return err
			}
		case cmdCancelMessage:
			if s := r.slot(cmd.slot); s != nil && s.phase != rIdle {
				if s.async != nil {
					s.async.abort(ErrCanceledByPeer)
				}
				r.release(cmd.slot)
				r.ev.onCancelMessage(cmd.slot)
			}
		case cmdCancelRequest:
			r.ev.onCancelRequest(cmd.index, cmd.unique)
		case cmdWindowStart:
			if r.msgWindow <= 0 {
				return fmt.Errorf("%w: WindowStart command, and no windows were announced", ErrBadCommand)
			}
			r.windowStart(cmd.slot)
		case cmdWindow:
			if !r.helloSeen {
				return fmt.Errorf("%w: Window command before the peer's hello", ErrBadCommand)
			}
			r.ev.onWindow(cmd.index, cmd.unique, cmd.credit)
		case cmdAckdCount:
			if r.rev != nil {
				if err := r.rev.ackdCount(cmd.count); err != nil {
					return err
				}
			}
		case cmdUpdate:
			// Reserved: ignored.
		}
	}
	return nil
}

// slot returns the receive state of the peer's slot i, nil if no message
// is under way there.
func (r *reader) slot(i uint32) *rslot {
	if int(i) >= len(r.slots) {
		return nil
	}
	return r.slots[i]
}

// release ends the message of slot i and gives its state back to the pool.
func (r *reader) release(i uint32) {
	s := r.slots[i]
	r.slots[i] = nil
	if s.large {
		r.large--
	}
	s.large, s.bytes, s.async, s.win, s.owner = false, 0, nil, rwindow{}, nil
	s.dec.Reset(nil)
	s.dec.SetValueBudget(nil)
	r.pool().putRslot(s)
}

// releaseSlots ends every message still arriving and gives its state back
// to the pool: its decoder's segments return to the loop's segment cache
// (the connection closed; loop, outside the reader's own calls).
func (r *reader) releaseSlots() {
	for i, s := range r.slots {
		if s != nil {
			r.release(uint32(i))
		}
	}
}

// busy reports whether a message is arriving in some slot.
func (r *reader) busy() bool {
	for _, s := range r.slots {
		if s != nil {
			return true
		}
	}
	return false
}

// pool returns the reader's codec pool, making its own if it has none.
func (r *reader) pool() *codecPool {
	if r.codecs == nil {
		r.codecs = &codecPool{}
		r.codecs.initCodecs(r.reg, r.limits)
	}
	return r.codecs
}

func (r *reader) chunk(cmd *command) error {
	r.noteRun(cmd.slot) // readinto.go
	s := r.slot(cmd.slot)
	if s == nil {
		if cmd.code != cmdNewMessage && cmd.code != cmdFullMessage {
			return fmt.Errorf("%w: continuation on idle slot %d", ErrBadSlot, cmd.slot)
		}
		if int(cmd.slot) >= len(r.slots) {
			// parseCommand bounds cmd.slot by maxSlots.
			r.slots = append(r.slots, make([]*rslot, int(cmd.slot)+1-len(r.slots))...)
		}
		s = r.pool().rslot()
		r.slots[cmd.slot] = s
		r.lend(s, cmd.slot) // window.go
		s.dec.SetValueBudget(&r.budget)
	}
	start := cmd.code == cmdNewMessage || cmd.code == cmdFullMessage
	end := cmd.code == cmdEndMessage // FullMessage is read as NewMessage (docs/protocol.md §3)
	switch {
	case start && s.phase != rIdle:
		return fmt.Errorf("%w: new message on busy slot %d", ErrBadSlot, cmd.slot)
	case !start && s.phase == rIdle:
		return fmt.Errorf("%w: continuation on idle slot %d", ErrBadSlot, cmd.slot)
	case start:
		s.phase = rHeader
		s.bytes = 0
		s.hdr = msgHeader{}
		s.dec.Reset(&s.hdr)
	}
	data := cmd.data
	r.countChunk(s, len(data))
	if s.phase == rRelay {
		// Relayed bytes are bounded by the relay credits (docs/relay.md);
		// a window, if the source uses one, is returned as the
		// destination takes them (relayConn.pullOnLoop).
		if err := r.takeWindow(s, cmd.slot, len(data)); err != nil {
			return err
		}
		if end {
			r.release(cmd.slot)
		}
		return r.rev.relayChunk(cmd.slot, data, end)
	}
	if s.phase == rSkip {
		if err := r.takeWindow(s, cmd.slot, len(data)); err != nil {
			return err
		}
		r.consumed(s, cmd.slot, len(data))
		if end {
			r.release(cmd.slot)
		}
		return nil
	}
	if s.phase == rHeader {
		n, done, err := s.dec.Decode(data)
		if err != nil {
			return fmt.Errorf("%w: header in slot %d: %w", ErrBadMessage, cmd.slot, err)
		}
		data = data[n:]
		if !done {
			if end {
				return fmt.Errorf("%w: message ends inside its header (slot %d)", ErrBadChunk, cmd.slot)
			}
			return nil
		}
		if len(data) > 0 {
			return fmt.Errorf("%w: %d bytes after the header in its chunk (slot %d)", ErrBadChunk, len(data), cmd.slot)
		}
		r.startWindow(s, cmd.slot) // window.go
		if r.ev.onHeader(&s.hdr) {
			s.phase = rSkip
			if end {
				r.release(cmd.slot)
			}
			return nil
		}
		if r.rev != nil {
			act, err := r.rev.relayHeader(cmd.slot, &s.hdr)
			if err != nil {
				return err
			}
			if act == hdrSkip {
				s.phase = rSkip
				if end {
					r.release(cmd.slot)
				}
				return nil
			}
			if act == hdrRelay {
				if end {
					return fmt.Errorf("%w: message in slot %d ends with its header", ErrBadChunk, cmd.slot)
				}
				s.phase = rRelay
				return nil
			}
		}
		s.phase = rBody
		s.body = msgBody{proto: r.proto, wide: r.typeIDSize == 2}
		s.dec.Reset(&s.body)
		if !end {
			return nil
		}
	}
	return r.body(s, cmd.slot, data, 0, end)
}

// countChunk counts n more chunk bytes of the message in s.
func (r *reader) countChunk(s *rslot, n int) {
	if s.bytes += n; !s.large && s.bytes > smallMessage {
		s.large = true
		r.large++
	}
}

// body decodes the next body bytes of the message in slot: data, or,
// with filled > 0, filled bytes already written into the decoder's value
// space (readinto.go). end says the bytes end the message's last chunk.
func (r *reader) body(s *rslot, slot uint32, data []byte, filled int, end bool) error {
	size := len(data) + filled
	if err := r.takeWindow(s, slot, size); err != nil {
		return err
	}
	var before int64
	if s.async != nil {
		before = s.async.queued
	}
	var n int
	var done bool
	var err error
	if filled > 0 {
		n = filled
		done, err = s.dec.Filled(filled)
	} else {
		n, done, err = s.dec.Decode(data)
	}
	var held int64
	if s.async != nil {
		held = s.async.queued - before
		r.hold(s, held)
	}
	if s.body.err != nil {
		return fmt.Errorf("%w: slot %d: %w", ErrProtocol, slot, s.body.err)
	}
	if err != nil {
		return fmt.Errorf("%w: body in slot %d: %w", ErrBadMessage, slot, err)
	}
	switch {
	case done && (n != size || !end):
		return fmt.Errorf("%w: message in slot %d ends before its last chunk", ErrBadChunk, slot)
	case !done && end:
		return fmt.Errorf("%w: message in slot %d incomplete at its last chunk", ErrBadChunk, slot)
	case !done:
		r.consumed(s, slot, size-int(held))
	case done:
		m := s.body.msg
		if !s.large && r.large > 0 {
			r.interleaved = true
			if r.besideFeed++; r.besideFeed > r.besideMax {
				r.besideMax = r.besideFeed
			}
			if r.besideFeed > 1 {
				r.besideSeveral = true
			}
		}
		s.phase = rIdle
		s.body = msgBody{}
		r.dispatched = true
		r.ev.onMessage(&s.hdr, m)
		r.release(slot)
	}
	return nil
}
