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
