package ipc_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// Upload carries a file of any size as a stream field. The sender reads it
// from Src a packet at a time; the receiver hands it to an ipc.AsyncSink,
// whose goroutine writes it to the consumer (here a hash; a file in real
// code) without holding up the event loop.
type Upload struct {
	Src  io.Reader      // sending
	Sink *ipc.AsyncSink // receiving
	sum  *hashSink
}

// Serde lists Upload's one field: the stream.
func (u *Upload) Serde(v *serde.Visitor) {
	if v.Decoding() {
		u.sum = &hashSink{h: sha256.New()}
		u.Sink = ipc.NewAsyncSink(u.sum)
		v.StreamIn(u.Sink)
		return
	}
	v.StreamOut(u.Src)
}

// hashSink is the consumer: it hashes what it is given.
type hashSink struct {
	h hash.Hash
	n int
}

func (s *hashSink) Write(p []byte) (int, error) { s.n += len(p); return s.h.Write(p) }
func (s *hashSink) Close() error                { return nil }

// Receipt answers an Upload once its consumer has taken every byte.
type Receipt struct{ Text string }

// Serde lists Receipt's fields.
func (r *Receipt) Serde(v *serde.Visitor) { v.String(&r.Text) }

// A stream field consumed on its own goroutine: the handler runs when the
// last byte has been decoded and waits for the consumer off the event loop
// before it answers.
func ExampleNewAsyncSink() {
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, u *Upload) {
		go func() {
			<-u.Sink.Done()
			text := fmt.Sprintf("%d bytes, sha256 %x…, err %v", u.sum.n, u.sum.h.Sum(nil)[:4], u.Sink.Err())
			_ = ctx.Respond(&Receipt{Text: text})
		}()
	})
	ipc.MustRegister[Receipt](sp, 2, nil)
	server, err := ipc.NewService(ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Stop(context.Background())

	cp := ipc.NewProtocol()
	ipc.MustRegister[Upload](cp, 1, nil)
	ipc.MustRegister[Receipt](cp, 2, nil)
	client, err := ipc.NewService(ipc.Config{Protocol: cp})
	if err != nil {
		panic(err)
	}
	if err := client.Start(); err != nil {
		panic(err)
	}
	defer client.Stop(context.Background())

	done := make(chan string, 1)
	src := strings.NewReader(strings.Repeat("ipcframe", 1<<17)) // 1 MiB
	_, err = ipc.SendRequestContext(context.Background(), client, server.Addr().String(), &Upload{Src: src}, 0,
		func(_ *Upload, r *Receipt, err error) {
			if err != nil {
				done <- err.Error()
				return
			}
			done <- r.Text
		})
	if err != nil {
		panic(err)
	}
	fmt.Println(<-done)
	// Output: 1048576 bytes, sha256 114a1c5b…, err <nil>
}
