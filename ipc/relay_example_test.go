package ipc_test

import (
	"context"
	"fmt"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// Join asks a relay node to register the sender's connection under Name.
type Join struct{ Name string }

// Serde lists Join's fields.
func (j *Join) Serde(v *serde.Visitor) { v.String(&j.Name) }

// A relay node forwards "relay-address/name" to the connection registered
// as name. The relay knows only Join, never the payload types: it copies
// their bodies undecoded.
func ExampleConn_RegisterRelayName() {
	start := func(cfg ipc.Config) *ipc.Service {
		s, err := ipc.NewService(cfg)
		if err != nil {
			panic(err)
		}
		if err := s.Start(); err != nil {
			panic(err)
		}
		return s
	}
	// The relay: relaying enabled, and a handler that registers names.
	rp := ipc.NewProtocol()
	ipc.MustRegister(rp, 3, func(ctx ipc.Context, j *Join) {
		if err := ctx.Conn().RegisterRelayName(j.Name); err != nil {
			panic(err)
		}
		_ = ctx.Respond(j)
	})
	relay := start(ipc.Config{Protocol: rp, Listen: "127.0.0.1:0", Relay: ipc.RelayConfig{Enabled: true}})
	defer relay.Stop(context.Background())
	raddr := relay.Addr().String()

	// Bob dials the relay and registers as "bob"; he answers greetings.
	bp := newProtocol(true)
	ipc.MustRegister[Join](bp, 3, nil)
	bob := start(ipc.Config{Protocol: bp})
	defer bob.Stop(context.Background())
	joined := make(chan error, 1)
	_ = ipc.SendRequest(bob, raddr, &Join{Name: "bob"}, 0, func(_, _ *Join, err error) { joined <- err })
	if err := <-joined; err != nil {
		panic(err)
	}

	// Alice greets Bob through the relay (names are case-insensitive).
	ap := newProtocol(false)
	ipc.MustRegister[Join](ap, 3, nil)
	alice := start(ipc.Config{Protocol: ap})
	defer alice.Stop(context.Background())
	reply, err := ipc.Call[Greeting, Reply](context.Background(), alice, raddr+"/Bob", &Greeting{Name: "alice", Count: 1}, 0)
	fmt.Println(reply.Text, err)
	// Output: hello alice!  <nil>
}
