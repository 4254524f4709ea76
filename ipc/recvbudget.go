package ipc

import "github.com/ipcframe/ipcframe/buffers"

// recvBudget is a connection's serde.ValueBudget: it lets the decoders of
// the connection's incoming messages allocate a large string or []byte
// value's whole array as soon as its declared size is known, so that each
// byte is copied once, from the read buffer into its final place, instead
// of growing in segments until half the value has arrived and then being
// copied again (serde/grow.go).
//
// Trust rule: no value is lent more than the largest value the connection
// has delivered in full (proven), and the bytes lent at one time, over all
// the values the connection is receiving, never pass recvBudgetValues (2)
// times it. A peer therefore makes its receiver hold no more memory ahead
// of its bytes than twice what it has already sent in one value, never
// more than 2×Limits.MaxString; a value that does not fit what is left
// grows in segments, as every value does on a new connection. Two values
// (not one) may be lent at once because a sender with two large messages
// under way interleaves their packets (cmd/bench -mode bulk keeps two
// outstanding): with one loan the second value grew in segments, with the
// segments' copy and fresh memory, and the pair ran at about half the rate
// of a lone value (docs/benchmarks.md, "The lone 64 MiB message, TLS and
// bench bulk, twelfth session"). A lent value that is abandoned
// (CancelMessage, the connection closing, a decode error) takes the
// connection's proof away: the next large value grows in segments again
// until one is delivered in full, so declaring and canceling values cannot
// make the receiver allocate faster than the peer sends bytes. A lent array
// of 1 MiB or more is handed to buffers.Prefault (Lent), which makes its
// missing pages resident on a goroutine of its own at once rather than as
// its bytes arrive: the rule above bounds that memory as it bounds the
// arrays.
type recvBudget struct {
	// owned by the connection's loop (or the lone reader)
	proven int // the largest value delivered in full since the last abandoned loan
	lent   int // bytes lent to values under way
}

// recvBudgetValues is how many values of the proven size may be lent at
// once (see recvBudget).
const recvBudgetValues = 2

// Lend implements serde.ValueBudget.
func (b *recvBudget) Lend(n int) bool {
	if n > b.proven || b.lent+n > recvBudgetValues*b.proven {
		return false
	}
	b.lent += n
	return true
}

// Lent implements serde.LentArrays: a lent array's pages are faulted in on
// another goroutine ahead of the value's bytes (buffers.Prefault), so that
// the loop's reads into it do not take the faults of memory new to the
// process (docs/benchmarks.md, "The plain 64 MiB message and its page
// faults, fourteenth session").
func (b *recvBudget) Lent(a []byte) { buffers.Prefault(a) }

// End implements serde.ValueBudget.
func (b *recvBudget) End(n, got int, lent bool) {
	if lent {
		b.lent -= n
		if got < n {
			b.proven = 0
		}
		return
	}
	if got == n && n > b.proven {
		b.proven = n
	}
}
