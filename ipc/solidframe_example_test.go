package ipc_test

import (
	"fmt"

	"github.com/ipcframe/ipcframe/ipc"
)

// ExampleSolidFrameProfile configures a service that dials C++ SolidFrame
// services and accepts their clients: the profile's keepalive rules, then
// the service's own protocol and listener.
func ExampleSolidFrameProfile() {
	cfg := ipc.SolidFrameProfile()
	cfg.Protocol = newProtocol(true)
	cfg.Listen = "127.0.0.1:0"
	svc, err := ipc.NewService(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.KeepAlive, cfg.InactivityTimeout, cfg.MaxKeepAlives, cfg.TypeIDSize, cfg.BufferSize)
	_ = svc
	// Output: 7m30s 10m0s 9 1 4096
}

// ExampleGroupID registers two independent protocols, each a message
// group, in one Protocol: their types share the service and its
// connections, and a peer that knows only one group registers only its
// types. Group ids need two-byte type ids.
func ExampleGroupID() {
	const chat, files = 0, 1 // the groups
	p := ipc.NewProtocol()
	ipc.MustRegister[Greeting](p, ipc.GroupID(chat, 1), nil)
	ipc.MustRegister[Reply](p, ipc.GroupID(files, 1), nil)
	_, err := ipc.NewService(ipc.Config{Protocol: p, TypeIDSize: 2})
	fmt.Println(err)
	id := ipc.GroupID(files, 1)
	fmt.Printf("wire bytes % x\n", []byte{byte(id), byte(id >> 8)})
	fmt.Println(ipc.SplitGroupID(id))
	// Output:
	// <nil>
	// wire bytes 01 01
	// 1 1
}
