package main

import (
	"context"
	"net"
	"time"

	"github.com/lesismal/arpc"
	alog "github.com/lesismal/arpc/log"
)

// arpcMaxBody raises arpc's message limit (64 MiB - 16 bytes by default) so
// that the 64 MiB bulk workload fits. The limit is only a length check, so
// raising it does not change the small-message path.
const arpcMaxBody = 256 << 20

// arpcSystem runs github.com/lesismal/arpc with its defaults (asynchronous
// batched writes), raw []byte payloads and one connection.
type arpcSystem struct{}

func init() {
	alog.SetLevel(alog.LevelNone)
	register(arpcSystem{})
}

func (arpcSystem) Name() string { return "arpc" }

func (arpcSystem) Serve(addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	svr := arpc.NewServer()
	svr.Handler.SetMaxBodyLen(arpcMaxBody)
	svr.Handler.Handle("/echo", func(ctx *arpc.Context) {
		// Body aliases the request buffer, which stays valid until the
		// handler returns; Write copies it into the response.
		ctx.Write(ctx.Body())
	})
	svr.Handler.Handle("/sink", func(ctx *arpc.Context) {
		ctx.Write(nil)
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		svr.Serve(ln)
	}()
	// Not svr.Stop: it writes the server's running flag, which the accept
	// loop reads, without synchronisation (arpc v1.2.17; the race detector
	// caught it in TestSystems). Closing the listener ends the loop the
	// same way (a non-temporary Accept error), which then stops the
	// clients, and done waits for it.
	stop := func() {
		_ = ln.Close()
		<-done
	}
	return ln.Addr().String(), stop, nil
}

func (arpcSystem) Dial(addr string) (Client, error) {
	h := arpc.DefaultHandler.Clone()
	h.SetMaxBodyLen(arpcMaxBody)
	c, err := arpc.NewClient(func() (net.Conn, error) {
		return net.DialTimeout("tcp", addr, 5*time.Second)
	}, h)
	if err != nil {
		return nil, err
	}
	return arpcClient{c}, nil
}

type arpcClient struct{ c *arpc.Client }

func (a arpcClient) Call(ctx context.Context, payload []byte) ([]byte, error) {
	var resp []byte
	err := a.c.CallWith(ctx, "/echo", payload, &resp)
	return resp, err
}

func (a arpcClient) Sink(ctx context.Context, payload []byte) error {
	return a.c.CallWith(ctx, "/sink", payload, nil)
}

func (a arpcClient) Close() error {
	a.c.Stop()
	return nil
}
