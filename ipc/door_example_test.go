package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
)

// A server protected at the door: at most 10,000 accepted connections,
// each dropped unless it delivers a complete packet within a first-packet
// timeout (the default is 5 s; 200 ms keeps the example short), and its
// connection events logged (at Info: closes by timeouts and protocol
// errors, with the connection's conn, peer and side attributes; a real
// server would log to os.Stderr). A socket that connects and stays silent
// is closed with ErrFirstPacketTimeout and counted.
func Example_protectionAtTheDoor() {
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	closed := make(chan error, 1)
	server, err := ipc.NewService(ipc.Config{
		Protocol:               newProtocol(true),
		Listen:                 "127.0.0.1:0",
		MaxAcceptedConnections: 10_000,
		FirstPacketTimeout:     200 * time.Millisecond,
		Logger:                 logger,
		ConnectionStop:         func(_ ipc.ConnInfo, err error) { closed <- err },
	})
	if err != nil {
		panic(err)
	}
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Stop(context.Background())

	silent, err := net.Dial("tcp", server.Addr().String())
	if err != nil {
		panic(err)
	}
	defer silent.Close()
	fmt.Println("first-packet timeout:", errors.Is(<-closed, ipc.ErrFirstPacketTimeout))
	fmt.Println("counted:", server.Stats().Connections.FirstPacketTimeouts)
	// Output:
	// first-packet timeout: true
	// counted: 1
}
