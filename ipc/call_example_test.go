package ipc_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
)

// The blocking call: send a request by destination name and wait for its
// response, under a context that cancels it (here after 10 s). Type
// arguments name the request and response types.
func ExampleCall() {
	server, _ := ipc.NewService(ipc.Config{Protocol: newProtocol(true), Listen: "127.0.0.1:0"})
	_ = server.Start()
	defer server.Stop(context.Background())

	client, _ := ipc.NewService(ipc.Config{Protocol: newProtocol(false)})
	_ = client.Start()
	defer client.Stop(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := ipc.Call[Greeting, Reply](ctx, client, server.Addr().String(), &Greeting{Name: "gopher", Count: 2}, 0)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(reply.Text)
	// Output: hello gopher! hello gopher!
}
