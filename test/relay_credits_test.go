package test

import (
	"fmt"
	"testing"

	"github.com/ipcframe/ipcframe/ipc"
)

// TestRelayFewCredits checks that credits owed back are never held from a
// peer that needs them (docs/relay.md, "Credits and memory": a receiver
// holds owed credits for a later packet only up to the most the peer has
// been seen to have unreturned). A, B and the relay lend 1 or 3 credits
// only, fewer than a stream of 64 KiB packets brings per read, and A
// sends 13 requests of 100 B to 2 MB (relaySizes' first 13) through the
// relay to B, 5 at once: every request completes once with its echo,
// while in both directions every packet of a relayed message waits for
// the credit of an earlier one.
func TestRelayFewCredits(t *testing.T) {
	for _, credits := range []int{1, 3} {
		t.Run(fmt.Sprintf("credits=%d", credits), func(t *testing.T) {
			relayEcho(t, ipc.Config{BufferSize: 64 << 10, RelayCredits: credits}, ipc.Config{RelayCredits: credits}, "b", 13, 5)
		})
	}
}
