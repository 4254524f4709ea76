package ipc_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// Greeting is a message: a struct whose Serde method lists its fields.
type Greeting struct {
	Name  string
	Count int32
}

// Serde lists Greeting's fields, in wire order, for encoding and decoding.
func (g *Greeting) Serde(v *serde.Visitor) {
	v.String(&g.Name)
	v.Int32(&g.Count)
}

// Reply answers a Greeting.
type Reply struct {
	Text string
}

// Serde lists Reply's fields.
func (r *Reply) Serde(v *serde.Visitor) { v.String(&r.Text) }

// newProtocol registers the example's message types; serverSide adds the
// handler that answers greetings.
func newProtocol(serverSide bool) *ipc.Protocol {
	p := ipc.NewProtocol()
	var h func(ipc.Context, *Greeting)
	if serverSide {
		h = func(ctx ipc.Context, g *Greeting) {
			// Handlers run on an event loop: answer at once or hand the
			// work (and ctx, a small value) to another goroutine.
			_ = ctx.Respond(&Reply{Text: strings.Repeat("hello "+g.Name+"! ", int(g.Count))})
		}
	}
	ipc.MustRegister(p, 1, h)
	ipc.MustRegister[Reply](p, 2, nil)
	return p
}

// A server: a Service with a listener and a handler per message type.
func ExampleNewService() {
	server, err := ipc.NewService(ipc.Config{Protocol: newProtocol(true), Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Stop(context.Background())
	fmt.Println("listening:", server.Addr() != nil)
	// Output: listening: true
}

// A client sends a request by destination name and gets the response, or
// an error, in its callback. The same Service type plays both roles.
func ExampleSendRequest() {
	server, _ := ipc.NewService(ipc.Config{Protocol: newProtocol(true), Listen: "127.0.0.1:0"})
	_ = server.Start()
	defer server.Stop(context.Background())

	client, _ := ipc.NewService(ipc.Config{Protocol: newProtocol(false)})
	_ = client.Start()
	defer client.Stop(context.Background())

	done := make(chan string, 1)
	err := ipc.SendRequest(client, server.Addr().String(), &Greeting{Name: "gopher", Count: 2}, 0,
		func(req *Greeting, resp *Reply, err error) {
			if err != nil {
				done <- err.Error()
				return
			}
			done <- resp.Text
		})
	if err != nil {
		panic(err)
	}
	select {
	case s := <-done:
		fmt.Println(s)
	case <-time.After(10 * time.Second):
		fmt.Println("timeout")
	}
	// Output: hello gopher! hello gopher!
}

// One-way messages complete when written; their handler on the peer runs
// for each message received.
func ExampleService_Send() {
	got := make(chan string, 1)
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, g *Greeting) { got <- g.Name })
	server, _ := ipc.NewService(ipc.Config{Protocol: p, Listen: "127.0.0.1:0"})
	_ = server.Start()
	defer server.Stop(context.Background())

	client, _ := ipc.NewService(ipc.Config{Protocol: newProtocol(false)})
	_ = client.Start()
	defer client.Stop(context.Background())

	sent := make(chan error, 1)
	if err := client.Send(server.Addr().String(), &Greeting{Name: "one-way"}, 0, func(err error) { sent <- err }); err != nil {
		panic(err)
	}
	fmt.Println("sent:", <-sent)
	fmt.Println("received:", <-got)
	// Output:
	// sent: <nil>
	// received: one-way
}
