package ipc_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// Report carries a generated payload of any size as a stream field. The
// sender's source runs on its own goroutine (ipc.AsyncSource), so its
// cost (here generating and hashing every byte; reading a file in real
// code) is paid beside the event loop, not on it.
type Report struct {
	Src  *ipc.AsyncSource // sending
	Sink *digest          // receiving
}

// Serde lists Report's one field: the stream.
func (r *Report) Serde(v *serde.Visitor) {
	if v.Decoding() {
		r.Sink = &digest{h: sha256.New()}
		v.StreamIn(r.Sink)
		return
	}
	v.StreamOut(r.Src)
}

// digest hashes what it is given (a small sink can run on the loop).
type digest struct {
	h hash.Hash
	n int
}

func (d *digest) Write(p []byte) (int, error) { d.n += len(p); return d.h.Write(p) }
func (d *digest) Close() error                { return nil }

// generator produces n bytes of a pattern and hashes them: a source that
// costs CPU per byte.
type generator struct {
	n, off int
	h      hash.Hash
}

func (g *generator) Read(p []byte) (int, error) {
	if g.off == g.n {
		return 0, io.EOF
	}
	p = p[:min(len(p), g.n-g.off)]
	for i := range p {
		p[i] = byte((g.off + i) % 251)
	}
	g.off += len(p)
	g.h.Write(p)
	return len(p), nil
}

// Summary answers a Report with what arrived.
type Summary struct{ Text string }

// Serde lists Summary's fields.
func (s *Summary) Serde(v *serde.Visitor) { v.String(&s.Text) }

// A stream field read on its own goroutine: the generator fills up to four
// 64 KiB blocks ahead of the event loop, which sends them as they are
// ready; the message pauses, not the loop, when none is.
func ExampleNewAsyncSource() {
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, r *Report) {
		_ = ctx.Respond(&Summary{Text: fmt.Sprintf("%d bytes, sha256 %x…", r.Sink.n, r.Sink.h.Sum(nil)[:4])})
	})
	ipc.MustRegister[Summary](sp, 2, nil)
	server, err := ipc.NewService(ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Stop(context.Background())

	cp := ipc.NewProtocol()
	ipc.MustRegister[Report](cp, 1, nil)
	ipc.MustRegister[Summary](cp, 2, nil)
	client, err := ipc.NewService(ipc.Config{Protocol: cp})
	if err != nil {
		panic(err)
	}
	if err := client.Start(); err != nil {
		panic(err)
	}
	defer client.Stop(context.Background())

	gen := &generator{n: 3 << 20, h: sha256.New()}
	src := ipc.NewAsyncSource(gen)
	done := make(chan string, 1)
	_, err = ipc.SendRequestContext(context.Background(), client, server.Addr().String(), &Report{Src: src}, 0,
		func(_ *Report, s *Summary, err error) {
			if err != nil {
				done <- err.Error()
				return
			}
			done <- s.Text
		})
	if err != nil {
		panic(err)
	}
	fmt.Println(<-done)
	<-src.Done() // the generator is finished with (and would be closed, were it an io.Closer)
	fmt.Printf("sent sha256 %x…, source err %v\n", gen.h.Sum(nil)[:4], src.Err())
	// Output:
	// 3145728 bytes, sha256 a1feacf0…
	// sent sha256 a1feacf0…, source err <nil>
}
