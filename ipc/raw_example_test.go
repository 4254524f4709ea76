package ipc_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ipcframe/ipcframe/ipc"
)

// A custom preamble in raw mode: the client's connections start raw and
// send a magic line; the server's start raw, check it, and activate. The
// Greeting sent meanwhile waits for the activation, then travels as usual.
func ExampleConn_SendRaw() {
	magic := []byte("MYAPP/1\n")
	server, err := ipc.NewService(ipc.Config{
		Protocol: newProtocol(true),
		Listen:   "127.0.0.1:0",
		RawStart: ipc.RoleAccepted,
		RawData: func(c ipc.Conn, data []byte) int {
			if len(data) < len(magic) {
				return 0 // wait for the whole line
			}
			if !bytes.Equal(data[:len(magic)], magic) {
				_ = c.Close()
				return 0
			}
			_ = c.Activate() // what follows the line are packets
			return len(magic)
		},
	})
	if err != nil {
		panic(err)
	}
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Stop(context.Background())

	client, err := ipc.NewService(ipc.Config{
		Protocol: newProtocol(false),
		RawStart: ipc.RoleDialed,
		ConnectionStart: func(ci ipc.ConnInfo) {
			_ = ci.Conn.SendRaw(magic, nil)
			_ = ci.Conn.Activate() // written after the raw bytes
		},
	})
	if err != nil {
		panic(err)
	}
	if err := client.Start(); err != nil {
		panic(err)
	}
	defer client.Stop(context.Background())

	reply, err := ipc.Call[Greeting, Reply](context.Background(), client, server.Addr().String(), &Greeting{Name: "raw", Count: 1}, 0)
	fmt.Println(reply.Text, err)
	// Output: hello raw!  <nil>
}

// A client whose pools reach their destinations through a SOCKS5 proxy
// (the proxy resolves the names), except one pool that connects directly.
func ExampleSOCKS5() {
	client, err := ipc.NewService(ipc.Config{
		Protocol: newProtocol(false),
		Proxy:    &ipc.SOCKS5{Addr: "proxy.example:1080", Username: "alice", Password: "secret"},
	})
	if err != nil {
		panic(err)
	}
	if err := client.Start(); err != nil {
		panic(err)
	}
	defer client.Stop(context.Background())
	fmt.Println(client.CreatePool("127.0.0.1:7000", ipc.PoolOptions{Direct: true}))
	// Output: <nil>
}
