package ipc

// Returning a relayed message's window to its source (docs/relay.md,
// "Credits and memory").
//
// The relay keeps a windowed relayed message's window at W0 and returns
// it as the message's destination copies the bytes out: the destination's
// loop counts them (relayMsg.taken), and the source's loop turns them into
// Window grants (reader.consumedRelay, windowGrantStep at a time). The
// source's loop collects them each time it pumps (collectGrantsOnLoop),
// which it does at every read from the source, so while a source sends,
// its grants cost no wake-up of its loop and go in the packet that returns
// its credits. Only once relayGrantWake bytes are taken and not yet
// collected does the destination's loop wake the source's (a mailGrant):
// a source that has used up its window sends nothing more, so its loop
// reads nothing until then.

// relayGrantWake is how many taken bytes of a message, not yet collected by
// its source's loop, make its destination's loop wake it: half of W0. A
// source out of window has W0 bytes ungranted, all taken once its
// destination has copied them, of which the source's reader holds back
// less than windowGrantStep: more than relayGrantWake is then taken, so
// the wake always comes.
const relayGrantWake = windowInitial / 2

// took notes n bytes of rm copied by its destination (destination's loop).
// The first bytes taken of a message also wake its source's loop, once:
// for a request, that is the loop its answer will be written from, and a
// loop woken now is still busy polling when the answer comes, which then
// reaches it without a syscall or an allocation (gnet's task queue
// allocates for a sleeping loop: TestRelayZeroAllocs).
func (rm *relayMsg) took(n int) {
	if !rm.windowed.Load() {
		return
	}
	t := rm.taken.Add(int64(n))
	first := !rm.tookAny
	rm.tookAny = true
	if first || t >= relayGrantWake && t-int64(n) < relayGrantWake {
		rm.src.relay.postGrant(rm)
	}
}

// collectGrantsOnLoop returns the window of the bytes the destinations
// took of the windowed messages arriving here (loop; pump).
func (rc *relayConn) collectGrantsOnLoop() {
	for _, rm := range rc.granting {
		if n := rm.taken.Swap(0); n > 0 {
			rc.c.r.consumedRelay(rm.srcSlot, n)
		}
	}
}

// grantOnLoop returns the window of the bytes of rm its destination took,
// if rm is still arriving (loop; a mailGrant from the destination).
func (rc *relayConn) grantOnLoop(rm *relayMsg) {
	n := rm.taken.Swap(0)
	if rc.in[rm.srcSlot] == rm {
		rc.c.r.consumedRelay(rm.srcSlot, n)
	}
}
