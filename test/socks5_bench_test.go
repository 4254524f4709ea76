package test

import (
	"context"
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
)

// socks5BenchPeers are the ways BenchmarkSOCKS5* reach the echo server,
// measured in the same run: directly, and through each real proxy.
func socks5BenchPeers(b *testing.B) []struct {
	name  string
	proxy *ipc.SOCKS5
} {
	micro := startMicrosocks(b, socks5Options{})
	dante := startDante(b, socks5Options{})
	return []struct {
		name  string
		proxy *ipc.SOCKS5
	}{
		{"direct", nil},
		{"microsocks", &ipc.SOCKS5{Addr: micro.Addr}},
		{"dante", &ipc.SOCKS5{Addr: dante.Addr}},
	}
}

func benchEchoServer(b *testing.B) string {
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) { _ = ctx.Respond(m) })
	return startService(b, ipc.Config{Protocol: p, Listen: "127.0.0.1:0"}).Addr().String()
}

func benchClient(b *testing.B, proxy *ipc.SOCKS5) *ipc.Service {
	cp := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](cp, 1, nil)
	return startService(b, ipc.Config{Protocol: cp, Proxy: proxy})
}

// BenchmarkSOCKS5Echo: one 1 KiB request at a time over an open
// connection. Through a proxy the engine's path is the same; what differs
// is the proxy's relaying.
//
//	go test -run '^$' -bench 'BenchmarkSOCKS5' -benchtime 2000x ./test/
func BenchmarkSOCKS5Echo(b *testing.B) {
	addr := benchEchoServer(b)
	for _, peer := range socks5BenchPeers(b) {
		b.Run(peer.name, func(b *testing.B) {
			client := benchClient(b, peer.proxy)
			req := testmsg.New(0, 1024)
			ctx := context.Background()
			if _, err := ipc.Call[testmsg.Message, testmsg.Message](ctx, client, addr, req, 0); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := ipc.Call[testmsg.Message, testmsg.Message](ctx, client, addr, req, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSOCKS5Connect: a new connection per operation (dial, the
// proxy's handshake, one echo, the pool closed).
func BenchmarkSOCKS5Connect(b *testing.B) {
	addr := benchEchoServer(b)
	for _, peer := range socks5BenchPeers(b) {
		b.Run(peer.name, func(b *testing.B) {
			client := benchClient(b, peer.proxy)
			req := testmsg.New(0, 100)
			ctx := context.Background()
			closed := make(chan struct{}, 1)
			b.ResetTimer()
			for range b.N {
				if _, err := ipc.Call[testmsg.Message, testmsg.Message](ctx, client, addr, req, 0); err != nil {
					b.Fatal(err)
				}
				if err := client.ClosePool(addr, func() { closed <- struct{}{} }); err != nil {
					b.Fatal(err)
				}
				<-closed
			}
		})
	}
}
