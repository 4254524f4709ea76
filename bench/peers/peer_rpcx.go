package main

import (
	"context"
	"net"

	"github.com/smallnest/rpcx/client"
	rlog "github.com/smallnest/rpcx/log"
	"github.com/smallnest/rpcx/protocol"
	"github.com/smallnest/rpcx/server"
)

// rpcxSystem runs github.com/smallnest/rpcx with SerializeNone (raw bytes),
// handlers registered with AddHandler (no reflection) and one connection
// (a plain client.Client, no XClient pool).
type rpcxSystem struct{}

func init() {
	rlog.SetDummyLogger()
	register(rpcxSystem{})
}

func (rpcxSystem) Name() string { return "rpcx" }

func (rpcxSystem) Serve(addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	s := server.NewServer()
	s.AddHandler("Bench", "Echo", func(ctx *server.Context) error {
		return ctx.Write(ctx.Payload())
	})
	s.AddHandler("Bench", "Sink", func(ctx *server.Context) error {
		return ctx.Write(nil)
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeListener("tcp", ln)
	}()
	stop := func() {
		s.Close()
		<-done
	}
	return ln.Addr().String(), stop, nil
}

func (rpcxSystem) Dial(addr string) (Client, error) {
	opt := client.DefaultOption
	opt.SerializeType = protocol.SerializeNone
	c := client.NewClient(opt)
	if err := c.Connect("tcp", addr); err != nil {
		return nil, err
	}
	return rpcxClient{c}, nil
}

type rpcxClient struct{ c *client.Client }

func (r rpcxClient) Call(ctx context.Context, payload []byte) ([]byte, error) {
	var reply []byte
	err := r.c.Call(ctx, "Bench", "Echo", payload, &reply)
	return reply, err
}

func (r rpcxClient) Sink(ctx context.Context, payload []byte) error {
	var reply []byte
	return r.c.Call(ctx, "Bench", "Sink", payload, &reply)
}

func (r rpcxClient) Close() error { return r.c.Close() }
