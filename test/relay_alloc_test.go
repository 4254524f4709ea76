package test

import (
	"context"
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
)

// BenchmarkRelayRoundTrip compares a 1000 B request/response direct (A →
// B) and through a relay node (A → relay → B), all three services in this
// process, one call at a time: time and allocations per round trip, all
// goroutines counted. The difference is what the relay adds: its own
// relayMsg per relayed message (one allocation, its stub inside), and the
// reactor's cross-loop wake-ups (gnet's Execute allocates) when the two
// connections of a hop sit on different loops.
func BenchmarkRelayRoundTrip(b *testing.B) {
	relay := startRelay(b, ipc.Config{})
	raddr := relay.Addr().String()
	bp := relayProto(b, func(ctx ipc.Context, m *testmsg.Message) { _ = ctx.Respond(m) })
	dst := startService(b, ipc.Config{Protocol: bp, Listen: "127.0.0.1:0"})
	join(b, dst, raddr, "b")
	a := startService(b, ipc.Config{Protocol: relayProto(b, nil)})
	msg := testmsg.New(1, 1000)
	for _, tc := range []struct{ name, to string }{{"direct", dst.Addr().String()}, {"relay", raddr + "/b"}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ipc.Call[testmsg.Message, testmsg.Message](context.Background(), a, tc.to, msg, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
