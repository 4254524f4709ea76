package reactor

import (
	"io"
	"net"
	"testing"
)

// BenchmarkPingPong1K: a std-net client does 1 KiB request/response with one
// message in flight against a reactor echo server (loop-side Write).
func BenchmarkPingPong1K(b *testing.B) {
	r := startReactor(b, Config{Loops: 1}, &testHandler{
		data: func(c *Conn, d []byte) int {
			_ = c.Write(d)
			return len(d)
		},
	})
	nc, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	msg := make([]byte, 1024)
	buf := make([]byte, 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nc.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(nc, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendRoundTrip1K: a goroutine Sends 1 KiB to a reactor conn whose peer
// echoes it back (std net); measures the Send → pump hop round trip.
func BenchmarkSendRoundTrip1K(b *testing.B) {
	p := newPeer(b)
	got := make(chan struct{}, 1)
	n := 0
	r := startReactor(b, Config{Loops: 1}, &testHandler{
		data: func(c *Conn, d []byte) int {
			n += len(d)
			if n >= 1024 {
				n -= 1024
				got <- struct{}{}
			}
			return len(d)
		},
	})
	c, err := r.Dial(dialCtx(b), p.addr(), nil)
	if err != nil {
		b.Fatal(err)
	}
	nc := p.accept(b)
	go func() { _, _ = io.Copy(nc, nc) }()
	msg := make([]byte, 1024)
	ctx := dialCtx(b)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
