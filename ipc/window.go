package ipc

import (
	"fmt"

	"github.com/ipcframe/ipcframe/serde"
)

// Extension 1: per-message receive windows (docs/protocol.md §7b).
//
// An endpoint that grants windows announces it with a hello packet (eight
// Update commands, which a peer without the extension skips). A writer that
// received the peer's hello marks each message it starts Windowed and sends
// at most windowInitial body bytes of it plus what the peer grants with
// Window commands; a message out of credit leaves the write queue
// (slotBlocked) until a grant arrives, so it alone waits. A reader checks
// each windowed message against its window (ErrWindowExceeded) and returns
// credit as the bytes are consumed, a quarter of Config.MessageWindow at a
// time, up to MessageWindow unconsumed bytes per message (besideShare
// while small messages arrive beside a large one).
const (
	// windowedFlag is header flag bit 13: the message obeys its window.
	// Hop by hop: the reader clears it before the flags go anywhere.
	windowedFlag Flags = 1 << 13
	// windowInitial is W0, every windowed message's initial window.
	windowInitial = 256 << 10
	// windowGrantStep is the least consumed credit a reader collects
	// before it returns it in a Window command (grantStep).
	windowGrantStep = windowInitial / 4
	// windowCmdMax is the largest Window command: code and three cross
	// integers.
	windowCmdMax = 1 + 3*serde.MaxCrossLen
	// maxCredit caps a writer's credit for one message (2^61 bytes).
	maxCredit = 1 << 61
)

// helloPayload is the payload of the hello packet: eight Update commands.
var helloPayload = [8]byte{cmdUpdate, cmdUpdate, cmdUpdate, cmdUpdate, cmdUpdate, cmdUpdate, cmdUpdate, cmdUpdate}

// helloPacket is the whole hello packet.
var helloPacket = append([]byte{packetTypeData, 0, byte(len(helloPayload)), 0}, helloPayload[:]...)

// isHello reports whether a Data payload is the hello.
func isHello(p []byte) bool { return len(p) == len(helloPayload) && [8]byte(p) == helloPayload }

// appendWindowStart appends a WindowStart command.
func appendWindowStart(b []byte, slot uint32) []byte {
	b = append(b, cmdWindowStart)
	return serde.AppendCross(b, uint64(slot))
}

// peerHello handles the peer's hello (loop): the messages started from now
// on are windowed, and so are those whose body is under way, from their
// next byte on (a WindowStart command goes ahead of it). A message whose
// header is still being written stays unwindowed.
func (w *writer) peerHello() {
	if w.peerWindows {
		return
	}
	w.peerWindows = true
	for i := range w.slots {
		s := &w.slots[i]
		if s.st != nil && s.phase == slotBody && !s.windowed {
			s.windowed, s.credit, s.startPending = true, windowInitial, true
			w.starts = append(w.starts, int32(i))
		}
	}
}

// windowGrant is a Window command to send.
type windowGrant struct {
	slot, unique uint32
	credit       uint64
}

// appendWindow appends a Window command.
func appendWindow(b []byte, g windowGrant) []byte {
	b = append(b, cmdWindow)
	b = serde.AppendCross(b, uint64(g.slot))
	b = serde.AppendCross(b, uint64(g.unique))
	return serde.AppendCross(b, g.credit)
}

// grant adds credit to the windowed message in slot i with sender unique
// unique, if it is still under way, and puts it back in the write queue if
// it was waiting for credit (loop; a Window command arrived).
func (w *writer) grant(slot, unique, credit uint64) {
	if slot >= uint64(len(w.slots)) {
		return
	}
	i := int32(slot)
	s := &w.slots[i]
	if s.st == nil || !s.windowed || uint64(s.unique) != unique {
		return
	}
	switch s.phase {
	case slotHeader, slotBody, slotBlocked, slotParked:
		if testHookCredit != nil {
			testHookCredit(creditArrived, uint64(unique)<<32|slot)
		}
		// Saturating: a peer's grants cannot overflow the credit.
		s.credit = min(s.credit+int64(min(credit, maxCredit)), maxCredit)
		if s.phase == slotBlocked && s.credit > 0 {
			if testHookCredit != nil {
				testHookCredit(creditResumed, uint64(unique)<<32|slot)
			}
			s.phase = slotBody
			w.setLarge(s, s.bytes > smallMessage)
			w.wq.push(i)
		}
	}
}

// windowed reports whether the message arriving in slot i is windowed
// (a relay returns its window as its destination takes it).
func (r *reader) windowed(i uint32) bool {
	s := r.slot(i)
	return s != nil && s.win.on
}

// consumedRelay returns n bytes of the relayed message in slot i, taken by
// its destination, to its window, windowGrantStep at a time. A relay keeps
// a relayed message's window at W0 (it never enlarges it to
// MessageWindow): W0 bounds what one message may make it hold.
func (r *reader) consumedRelay(i uint32, n int64) {
	s := r.slot(i)
	if s == nil || s.phase != rRelay || !s.win.on {
		return
	}
	if s.win.owed += n; s.win.owed < windowGrantStep {
		return
	}
	s.win.left += s.win.owed
	r.ev.grantWindow(windowGrant{i, s.win.unique, uint64(s.win.owed)})
	s.win.owed = 0
}

// block takes slot i, the front of the write queue, out of it until a grant
// arrives.
func (w *writer) block(i int32) {
	if testHookCredit != nil {
		testHookCredit(creditStalled, 0)
	}
	w.wq.pop()
	w.setLarge(&w.slots[i], false)
	w.slots[i].phase = slotBlocked
	w.slots[i].cont = 0
}

// rwindow is a reader slot's window state.
type rwindow struct {
	on     bool   // the message in progress is windowed
	unique uint32 // its sender unique, for the grants
	left   int64  // body bytes the peer may still send
	owed   int64  // bytes consumed and not yet granted back
	// grown: the window has been enlarged from W0 to MessageWindow (with
	// the message's first grant; a small message gets none).
	grown bool
	// The round-trip probe of the last grant beside small messages
	// (besideProbe): probing while it waits for the grant's first byte;
	// probeLeft, the bytes the sender could still send when it was
	// granted; probeGot, the bytes received since; dryRead, the read
	// (reader.reads) that brought the last of probeLeft, 0 before it came.
	probing   bool
	probeLeft int64
	probeGot  int64
	dryRead   uint64
	// aheadLeft, aheadOwed: bytes of the feed's rest counted as received
	// and consumed before they were parsed (grantAhead); takeWindow and
	// consumed take them off the next bytes instead.
	aheadLeft int64
	aheadOwed int64
}

// grantAhead counts the n bytes of input left in the current feed as the
// large message's, received and consumed, so that the grant they earn
// goes out in the mid-feed flush with the small message's response
// instead of in a write of its own after the feed (reader.feed): beside
// small calls a read is about a window of the large message with a
// request at its front. The bytes are in memory already and are decoded
// in this feed; those that turn out not to be the message's (a small
// message, packet headers) are taken off its next bytes, so the credit
// never runs ahead of what arrived by more than a feed. Only beside small
// messages, with one large message arriving, plain (no asynchronous
// sink), and only while they come one to a feed (a share of one window,
// besideShareN): there a caller at a time waits for each response, and
// the grant in the same write saved it a write and a read per call (c=1
// one way: calls 1.26x, p99 0.63x against main). Callers in flight
// together (a share of two windows or more, the c=16 case) keep the grant
// after the feed: granted ahead, the bulk flow took bytes and CPU from
// their calls (calls 0.71-0.79x, p99 1.30-1.33x; docs/benchmarks.md,
// "Writes per small call beside bulk, fifteenth session" and "The grant
// ahead at c=1, fifteenth session").
func (r *reader) grantAhead(n int) {
	if !r.beside || r.large != 1 || n <= 0 || r.besideShareN() > 1 {
		return
	}
	for i, s := range r.slots {
		if s == nil || !s.large || !s.win.on || s.phase != rBody || s.async != nil {
			continue
		}
		k := min(int64(n), s.win.left)
		if k <= 0 {
			return
		}
		s.win.left -= k
		s.win.aheadLeft += k
		s.win.aheadOwed += k
		if testHookCredit != nil {
			testHookCredit(creditAhead, 0)
		}
		r.owe(s, uint32(i), int(k))
		return
	}
}

// startWindow sets up the window of a message whose header just arrived,
// and clears the Windowed bit.
func (r *reader) startWindow(s *rslot, slot uint32) {
	s.win = rwindow{}
	if s.hdr.flags&windowedFlag == 0 {
		return
	}
	s.hdr.flags &^= windowedFlag
	s.win = rwindow{on: true, unique: s.hdr.senderUnique, left: windowInitial}
}

// windowStart makes the message under way in slot windowed from its next
// byte on (a WindowStart command). A slot with no body under way, or whose
// message is windowed already, is left alone.
func (r *reader) windowStart(slot uint32) {
	s := r.slot(slot)
	if s == nil || (s.phase != rBody && s.phase != rRelay) || s.win.on {
		return
	}
	s.win = rwindow{on: true, unique: s.hdr.senderUnique, left: windowInitial}
	if s.phase == rRelay {
		r.rev.relayWindowStart(slot)
		return
	}
	if as := s.async; as != nil && !as.windowed {
		as.windowed = true
		r.asyncPlain -= as.held
	}
}

// takeWindow charges n body bytes of a windowed message to its window.
func (r *reader) takeWindow(s *rslot, slot uint32, n int) error {
	if !s.win.on {
		return nil
	}
	if a := min(s.win.aheadLeft, int64(n)); a > 0 {
		s.win.aheadLeft -= a
		n -= int(a)
	}
	if int64(n) > s.win.left {
		return fmt.Errorf("%w: slot %d sent %d bytes with %d left", ErrWindowExceeded, slot, n, s.win.left)
	}
	s.win.left -= int64(n)
	if s.win.probing {
		r.besideProbe(s, int64(n))
	}
	return nil
}

// consumed returns n consumed bytes of the windowed message in s to its
// sender once enough are owed. Bytes of a finished message are not
// returned. The first grant of a message comes after windowGrantStep
// bytes (a quarter of W0, so that a small message costs no Window command
// and a large one never waits on a step larger than its window) and also
// enlarges the window from W0 to MessageWindow, while the connection's
// asynchronous sinks hold less than earlyGrantBelow; later grants come a
// quarter of MessageWindow at a time. Beside small messages (beside) the
// grants keep the message's window at besideShare.
func (r *reader) consumed(s *rslot, slot uint32, n int) {
	if !s.win.on || s.phase == rIdle {
		return
	}
	if a := min(s.win.aheadOwed, int64(n)); a > 0 {
		s.win.aheadOwed -= a
		n -= int(a)
	}
	r.owe(s, slot, n)
}

// owe adds n consumed bytes to what the message in s is owed and grants
// them back once enough are (consumed).
func (r *reader) owe(s *rslot, slot uint32, n int) {
	s.win.owed += int64(n)
	step := r.grantStep()
	if !s.win.grown {
		step = windowGrantStep
	}
	if s.win.owed < step {
		return
	}
	if !s.win.grown {
		s.win.grown = true
		if extra := int64(r.msgWindow) - windowInitial; extra > 0 && r.asyncHeld < earlyGrantBelow {
			s.win.owed += extra
		}
	}
	credit := s.win.owed
	if r.beside {
		win := r.besideShare()
		credit = min(credit, win-s.win.left)
		if credit < win/2 {
			return // withheld: owed comes back once small messages stop
		}
		r.besidePrev, r.besideMax = r.besideMax, 0
		if !s.win.probing {
			// A grant comes as the bytes the one before allowed begin
			// (half a window apart): probe every other grant.
			s.win.probing, s.win.probeLeft, s.win.probeGot, s.win.dryRead = true, s.win.left, 0, 0
			if s.win.left == 0 {
				s.win.dryRead = r.reads // the grant comes after the window ran out
			}
		}
	}
	s.win.left += credit
	s.win.owed -= credit
	r.ev.grantWindow(windowGrant{slot, s.win.unique, uint64(credit)})
	if testHookCredit != nil {
		testHookCredit(creditGranted, uint64(s.win.unique)<<32|uint64(slot))
	}
}

// The window of a large message beside small ones. While small messages
// arrive beside a large one (reader.beside: the connection's receiving
// pipe is short, pipe.go), the reader grants a windowed message only up to
// besideWindow bytes not yet received (per small message in a feed, up to
// besideShareMax: besideShare, below), half of that at a time, and
// keeps the rest of what it owes; the first grant after the small messages
// stopped returns all of it. Every bulk byte the sender has handed on (its
// buffers, the kernel's, this reader's input) is a byte a small message
// sent now waits behind, whatever the pipe's length: the window bounds
// them all by what the receiver has consumed, so the bulk flow runs at the
// receiver's pace with little queued ahead of the small messages
// (docs/benchmarks.md, "Head-of-line, fourth session").
//
// The grant step is half the window: a grant comes once the sender's bytes
// not yet received have fallen to half of it and returns the other half,
// which the sender writes in one write, in two 64 KiB packets (pumpBatch,
// pipe.go; packetSize, packetsize.go). Beside c=1 calls the receiver, not
// the credit, sets the bulk flow's pace: the sender runs out of credit
// after most grants whatever the step, and grants written as soon as they
// were earned (before the rest of a read was decoded) did not make it
// stall less. What the step decides is how much bulk sits ahead of a small
// message (64–128 KiB; 96–128 KiB with 32 KiB steps) and how many grants,
// writes and packets carry it. Against 32 KiB steps in 4 KiB packets,
// alternated (docs/benchmarks.md, "Credit beside small calls, ninth
// session"): beside c=1 calls the bulk flow moved 0.50 → 0.54× its rate
// alone with echoes and 0.37 → 0.46× one way, the small calls completed
// beside it rose 12–25 % and their p99 fell; at c=16 nothing moved beyond
// the noise. The half step alone, in 4 KiB packets, bought the small calls
// with bulk (c=16: 0.24 → 0.14× its rate alone).
const (
	besideWindow    = 128 << 10
	besideGrantStep = besideWindow / 2
	besideShareMax  = 3
)

// besideShare is the window of a large message beside small ones
// (reader.beside), a fair share between them: besideWindow per small
// message dispatched in one feed beside it, at most besideShareMax of
// them, the most of the last two grant intervals (reader.besideMax,
// besidePrev); the grant step stays half of it.
//
// One small message per feed is a caller at a time (c=1): the window is
// besideWindow, as before. Small messages that arrive several to a read
// come from callers in flight together, whose calls queue behind each
// other on both loops anyway; there a besideWindow alone held the large
// message to a grant round trip per 64 KiB: beside 16 callers the sender
// ran out of credit after every grant (grants = stalls, 12,500 of each in
// 3.5 s one way) and the bulk flow moved 0.28–0.54× its rate alone. With
// up to three windows (384 KiB, grants of 192 KiB, still one pump write
// of the long batch) it moved 0.52–1.15× while the small calls kept
// 0.56–0.67× their idle count and a p99 under 2× idle in five alternated
// rounds (one one-way round of three more fell to 0.46× and 2.57×: the
// slack it spends is thin); four windows, or
// three with quarter steps, pushed the p99 over 2× and, at four, the calls
// down to 0.26–0.51× (docs/benchmarks.md, "Bulk beside 16 callers,
// thirteenth session").
func (r *reader) besideShare() int64 {
	k := r.besideShareN()
	w := int64(k) * besideWindow
	if k > 1 && !r.sendBeside {
		w += r.besideExtra
	}
	return w
}

// besideShareN is the number of besideWindow shares of besideShare: the
// most small messages dispatched in one feed beside a large one over the
// last two grant intervals, at least one, at most besideShareMax.
func (r *reader) besideShareN() int {
	return min(max(1, r.besideMax, r.besidePrev), besideShareMax)
}

// The window beside small messages also covers a grant's round trip.
// A grant beside small messages returns half the window when half of it
// has been consumed: the other half, already granted, is what the reader
// has to consume while the grant travels to the sender, waits for the
// sender's loop to read it, and the bytes it allows travel back. If the
// reader consumes it all first, the bulk flow's pipe runs dry: the sender
// waits out of credit while the reader has nothing of the large message
// to read. Measured beside 16 callers (docs/benchmarks.md, "One-way bulk
// beside 16 callers, fourteenth session"): a grant left the reader's loop
// 4 µs (median) after it was queued, in the write the loop makes after the
// read anyway, and reached the sender's writer 30–60 µs later at the
// median, 80–300 µs at the 90th percentile (440 µs median on a host at
// load 7, the sender's loop off its CPU), while half of a 384 KiB window
// lasts 130–370 µs at the flow's rate; 92–98 % of the round trips ran
// the pipe dry.
//
// So each beside grant probes the round trip in bytes (besideProbe): it
// notes what the sender could still send when it was granted (probeLeft),
// and when the first byte it allows arrives, whether the last of those
// came in an earlier read than that byte (the pipe ran dry: the reader
// read everything the sender was allowed and waited) or in the same one
// (the bytes it allows were there as soon as the reader needed them). A
// dry round trip widens the window by besideWindow/2 (besideExtra), up to
// besideExtraMax; besideCalm round trips in a row that were not dry
// narrow it by as much. Only beside callers in flight together (a share of
// two windows or more): at c=1 the receiver sets the flow's pace and the
// window stays besideWindow (see above). There too 99.7 % of the round
// trips run dry, but on two cores the process is then at 1.8 of them:
// 64 KiB more (a lone caller's window widened like the others) raised the
// bulk flow beside the calls by 4–24 % and cost the calls 13–23 % of
// their count, the sender still out of credit 94 % of the time
// (docs/benchmarks.md, "Bulk beside small calls, fifteenth session").
// The probe counts bytes and reads, no clock: the window a connection
// grows to is its bandwidth-delay product in the reader's own terms, and
// the bulk bytes ahead of a small message stay within about two round
// trips' worth of the flow. Direct
// reads (readinto.go) do not count as reads here: a round trip that ends
// in one counts as not dry.
const (
	besideExtraMax = besideWindow
	besideCalm     = 4
)

// besideProbe notes n bytes received of the windowed message in s while
// the round-trip probe of its last beside grant waits (takeWindow), and
// adapts besideExtra once the grant's first byte has come.
func (r *reader) besideProbe(s *rslot, n int64) {
	w := &s.win
	before := w.probeGot
	w.probeGot += n
	if before < w.probeLeft && w.probeGot == w.probeLeft {
		w.dryRead = r.reads
	}
	if w.probeGot <= w.probeLeft {
		return
	}
	w.probing = false
	dry := before == w.probeLeft && w.dryRead != 0 && w.dryRead != r.reads
	ev := creditWet
	switch {
	case dry:
		r.besideExtra = min(r.besideExtra+besideWindow/2, besideExtraMax)
		r.besideCalmN = 0
		ev = creditDry
	case r.besideCalmN+1 >= besideCalm:
		r.besideExtra = max(r.besideExtra-besideWindow/2, 0)
		r.besideCalmN = 0
	default:
		r.besideCalmN++
	}
	if testHookCredit != nil {
		testHookCredit(ev, uint64(r.besideExtra))
	}
}

// lend notes that s, from the codec pool, now serves the peer's slot for
// this reader; the decoder's stream hook (installed once per state, so
// that lending allocates nothing) finds asynchronous sinks through it.
func (r *reader) lend(s *rslot, slot uint32) {
	s.owner, s.idx = r, slot
	if !s.hooked {
		s.hooked = true
		s.dec.SetStreamHook(func(sink serde.StreamSink) {
			if s.owner != nil {
				s.owner.bindAsync(s, s.idx, sink)
			}
		})
	}
}

// bindAsync makes an AsyncSink, met as the sink of a stream field of the
// message in s, report to this reader the bytes its goroutine takes.
func (r *reader) bindAsync(s *rslot, slot uint32, sink serde.StreamSink) {
	as, ok := sink.(*AsyncSink)
	if !ok || as.bound {
		return
	}
	as.bound, as.slot, as.windowed = true, slot, s.win.on
	s.async = as
	if r.post != nil {
		as.post = r.post
		as.loopFn = func() {
			as.posting.Store(false)
			r.releaseAsync(as, as.released.Swap(0))
			if r.afterRelease != nil {
				r.afterRelease()
			}
		}
	}
}

// hold counts n more bytes held by the asynchronous sink of s.
func (r *reader) hold(s *rslot, n int64) {
	r.asyncHeld += n
	s.async.held += n
	if !s.async.windowed {
		r.asyncPlain += n
	}
}

// releaseAsync counts n bytes the goroutine of as has taken: they are
// consumed, and return as credit if their message is still arriving (loop).
func (r *reader) releaseAsync(as *AsyncSink, n int64) {
	r.asyncHeld -= n
	as.held -= n
	if !as.windowed {
		r.asyncPlain -= n
	}
	if s := r.slot(as.slot); s != nil && s.async == as {
		r.consumed(s, as.slot, int(n))
	}
}

// abortAsync abandons the asynchronous sinks of the messages still
// arriving (loop; the connection closed).
func (r *reader) abortAsync(cause error) {
	for _, s := range r.slots {
		if s != nil && s.async != nil && s.phase != rIdle {
			s.async.abort(cause)
		}
	}
}

// grantStep is how many consumed bytes of a message the reader collects
// before it returns them in a Window command: a quarter of the message
// window (at least windowGrantStep), so that a large window costs few
// commands.
func (r *reader) grantStep() int64 {
	return max(windowGrantStep, int64(r.msgWindow)/4)
}

// Credit events a test counts (testHookCredit).
const (
	creditStalled = iota // a windowed message ran out of credit (writer.block)
	creditGranted        // a reader granted credit (a Window command queued)
	creditArrived        // a writer received a grant for a message under way (writer.grant)
	creditResumed        // that grant put a message out of credit back in the write queue
	creditDry            // a beside grant's round trip ran the pipe dry (besideProbe)
	creditWet            // one did not
	creditAhead          // the rest of a feed was counted ahead (grantAhead)
)

// testHookCredit, if set by a test before its services start, runs on the
// loops at each credit event, with the message's sender unique and slot
// (unique<<32 | slot) for grants.
var testHookCredit func(ev int, msg uint64)
